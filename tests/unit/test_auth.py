"""Token extraction, hashing, scopes and verification (relay/auth.py)."""

from __future__ import annotations

import pytest

from relay.auth import (
    TOKEN_PREFIX,
    Authenticator,
    Principal,
    extract_token,
    generate_token,
    hash_token,
    new_token_record,
)
from relay.errors import Forbidden
from relay.store.memory.store import MemoryStore


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ({"Authorization": "Bearer T0k3n"}, {}, "T0k3n"),
        ({"Authorization": "bearer T0k3n"}, {}, "T0k3n"),
        ({"Authorization": "ApiKey T0k3n"}, {}, "T0k3n"),
        ({"Authorization": "Token T0k3n"}, {}, "T0k3n"),
        ({"Authorization": "T0k3n"}, {}, "T0k3n"),
        ({"Authorization": "  Bearer   T0k3n  "}, {}, "T0k3n"),
        ({}, {"access_token": "T0k3n"}, "T0k3n"),
        ({"Authorization": "Bearer header"}, {"access_token": "query"}, "header"),
        ({"Authorization": "Bearer"}, {"access_token": "query"}, "query"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, {"access_token": "query"}, "query"),
        ({}, {}, None),
        ({"Authorization": ""}, {"access_token": ""}, None),
        ({"Authorization": "Bearer   "}, {}, None),
    ],
)
def test_extract_token(
    headers: dict[str, str], query: dict[str, str], expected: str | None
) -> None:
    """Bearer, ApiKey, bare Authorization, then ?access_token — in that order."""
    assert extract_token(headers, query) == expected


def test_hash_is_sha256_hex() -> None:
    """Tokens are stored as their SHA-256 hex digest (a known test vector)."""
    assert hash_token("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_generated_tokens_are_long_random_and_prefixed() -> None:
    """Generated tokens start with rly_, carry 256 bits and never repeat."""
    tokens = {generate_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(t.startswith(TOKEN_PREFIX) and len(t) >= len(TOKEN_PREFIX) + 43 for t in tokens)


def test_token_record_keeps_only_the_hash() -> None:
    """A new token record holds the hash, never the token."""
    record = new_token_record("ci", "my-secret-token", ["events:write"], ["web-*"])
    assert record.token_hash == hash_token("my-secret-token")
    assert "my-secret-token" not in repr(record)
    assert (record.scopes, record.components, record.revoked_at) == (
        ("events:write",),
        ("web-*",),
        None,
    )


def _principal(scopes: set[str], components: tuple[str, ...] = ("*",)) -> Principal:
    return Principal(name="t", scopes=frozenset(scopes), components=components)


def test_admin_includes_every_scope() -> None:
    """An admin token may write and read."""
    admin = _principal({"admin"})
    assert admin.has_scope("events:write") and admin.has_scope("events:read")


def test_missing_scope_is_forbidden() -> None:
    """A read-only token may not write: Forbidden names the scope."""
    with pytest.raises(Forbidden, match="events:write"):
        _principal({"events:read"}).require("events:write", "api")


@pytest.mark.parametrize(
    ("patterns", "component", "allowed"),
    [
        (("*",), "anything", True),
        (("web-*",), "web-frontend", True),
        (("web-*",), "api", False),
        (("api", "web-?"), "web-1", True),
        (("api",), "api-2", False),
    ],
)
def test_component_globs(patterns: tuple[str, ...], component: str, allowed: bool) -> None:
    """A token reaches only the components its globs match."""
    principal = _principal({"events:write"}, patterns)
    assert principal.can_access(component) is allowed
    if allowed:
        principal.require("events:write", component)
    else:
        with pytest.raises(Forbidden, match=component):
            principal.require("events:write", component)


async def test_authenticator_checks_config_tokens_then_store() -> None:
    """Config tokens and stored tokens both authenticate; unknown ones do not."""
    store = MemoryStore()
    await store.add_token(new_token_record("db-token", "stored-token-123", ["events:read"], ["*"]))
    auth = Authenticator(
        store, [new_token_record("ci", "config-token-123", ["events:write"], ["api"])]
    )
    from_config = await auth.authenticate("config-token-123")
    assert from_config == Principal("ci", frozenset({"events:write"}), ("api",))
    from_store = await auth.authenticate("stored-token-123")
    assert from_store is not None and from_store.name == "db-token"
    assert await auth.authenticate("unknown-token-123") is None


async def test_revoked_token_no_longer_authenticates() -> None:
    """A token revoked in the store is refused from the next request on."""
    store = MemoryStore()
    await store.add_token(new_token_record("bot", "stored-token-123", ["events:read"], ["*"]))
    auth = Authenticator(store)
    assert await auth.authenticate("stored-token-123") is not None
    await store.revoke_token("bot")
    assert await auth.authenticate("stored-token-123") is None
