"""Tokens: where a request carries one, how it is checked, what it may do."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from relay.errors import Forbidden
from relay.store.base import Store, TokenRecord
from relay.timeutil import utcnow

TOKEN_PREFIX = "rly_"
# `Authorization: <scheme> T`; a scheme with no token after it is no token at all.
_SCHEMES = frozenset({"bearer", "apikey", "token"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name, scopes and component globs."""

    name: str
    scopes: frozenset[str]
    components: tuple[str, ...]

    def has_scope(self, scope: str) -> bool:
        """`admin` includes every other scope."""
        return scope in self.scopes or "admin" in self.scopes

    def can_access(self, component: str) -> bool:
        """True when a component glob of the token matches `component`."""
        return any(fnmatchcase(component, pattern) for pattern in self.components)

    def require(self, scope: str, component: str | None = None) -> None:
        """Raise Forbidden unless the token has `scope` (and may touch `component`)."""
        if not self.has_scope(scope):
            raise Forbidden(f"this token lacks the {scope!r} scope")
        if component is not None and not self.can_access(component):
            raise Forbidden(f"this token may not access component {component!r}")


def hash_token(token: str) -> str:
    """SHA-256 of a token: tokens are long random strings, so a fast hash is enough."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def generate_token() -> str:
    """A new random token (256 bits)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def extract_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token of a request: Bearer, ApiKey, bare Authorization, then `access_token`."""
    auth = headers.get("Authorization", "").strip()
    if auth:
        scheme, _, rest = auth.partition(" ")
        if scheme.lower() in _SCHEMES:
            if rest.strip():
                return rest.strip()
        elif not rest:
            return auth
    return query.get("access_token") or None


def new_token_record(
    name: str, token: str, scopes: Iterable[str], components: Iterable[str]
) -> TokenRecord:
    """A TokenRecord holding only the hash of `token`."""
    return TokenRecord(
        id=str(uuid.uuid4()),
        name=name,
        token_hash=hash_token(token),
        scopes=tuple(scopes),
        components=tuple(components),
        created_at=utcnow(),
    )


class Authenticator:
    """Checks tokens from the config file first, then those in the store."""

    def __init__(self, store: Store, static: Iterable[TokenRecord] = ()) -> None:
        self._store = store
        self._static = {t.token_hash: t for t in static}

    async def authenticate(self, token: str) -> Principal | None:
        """The principal of a valid, unrevoked token; None otherwise."""
        return await self.authenticate_hash(hash_token(token))

    async def authenticate_hash(self, digest: str) -> Principal | None:
        """The principal of the valid, unrevoked token whose hash is `digest` (a dashboard
        session keeps only the hash); None otherwise."""
        record = self._static.get(digest)
        if record is None:
            record = await self._store.find_token(digest)
        if record is None or not hmac.compare_digest(record.token_hash, digest):
            return None
        return Principal(
            name=record.name, scopes=frozenset(record.scopes), components=record.components
        )
