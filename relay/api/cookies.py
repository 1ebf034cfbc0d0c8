"""Dashboard sessions on the wire: the cookie, who it signs in, and the cross-site guard.

The cookie holds a random secret; the store keeps only its hash. State-changing calls
made with the cookie must carry the session's CSRF token in `X-CSRF-Token` (a value a
page of another site cannot read) and, when the browser sends one, an `Origin` of this
server: SameSite=Strict already keeps the cookie off cross-site requests, and these
checks hold even where it would not.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from aiohttp import web

from relay.api.forwarded import origin
from relay.api.keys import AUTH, SETTINGS, STORE
from relay.auth import Principal
from relay.errors import Forbidden
from relay.timeutil import utcnow

SESSION_COOKIE = "relay_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_SECRET = 200


def session_hash(secret: str) -> str:
    """What the store keeps of a session secret."""
    return hashlib.sha256(b"session\0" + secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    """The CSRF token of a session: derived from its secret, so nothing more is stored."""
    return hashlib.sha256(b"csrf\0" + secret.encode()).hexdigest()


def session_secret(request: web.Request) -> str | None:
    """The session secret the request's cookie carries, if it looks like one."""
    secret = request.cookies.get(SESSION_COOKIE, "")
    return secret if 0 < len(secret) <= MAX_SECRET else None


async def cookie_principal(request: web.Request) -> Principal | None:
    """Who the session cookie signs in: None without a cookie, or when the session ended,
    expired, or its token was revoked."""
    secret = session_secret(request)
    if secret is None:
        return None
    found = await request.app[STORE].find_session(session_hash(secret), utcnow())
    if found is None:
        return None
    return await request.app[AUTH].authenticate_hash(found.token_hash)


def own_origins(request: web.Request) -> set[str]:
    """The origins this server answers as: the request's host (as a trusted proxy
    forwarded it), and `public_url`'s."""
    seen = origin(request, request.app[SETTINGS].server)
    origins = {f"{seen.scheme}://{seen.host}"}
    public_url = request.app[SETTINGS].server.public_url
    if public_url:
        parts = urlsplit(public_url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def check_same_site(request: web.Request, secret: str) -> None:
    """Refuse (403) a state-changing call made with the cookie from another site."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(secret).encode()):
        raise Forbidden(f"a call made with the session cookie needs its {CSRF_HEADER} header")
    origin = request.headers.get("Origin")
    if origin is not None and origin not in own_origins(request):
        raise Forbidden("cross-site request refused")


def is_https(request: web.Request) -> bool:
    """True when the browser reaches relay over https (directly, through a trusted proxy
    that says so, or as `public_url` says)."""
    server = request.app[SETTINGS].server
    return origin(request, server).scheme == "https" or (server.public_url or "").startswith(
        "https://"
    )
