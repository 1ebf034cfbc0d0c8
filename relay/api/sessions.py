"""Dashboard sign-in: a token sent once in `Authorization` becomes a session cookie.

The token never reaches a URL or the browser's storage: the sign-in page sends it in the
header of `POST /session`, and from then on the browser holds only an HttpOnly cookie
whose secret the store keeps as a hash (relay/store/dashboard_base.py).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import structlog
from aiohttp import web
from pydantic import BaseModel, Field

from relay.api.cookies import (
    SESSION_COOKIE,
    cookie_principal,
    csrf_token,
    is_https,
    session_hash,
    session_secret,
)
from relay.api.keys import STORE
from relay.api.middleware import public
from relay.api.records import json_answer, principal_of
from relay.api.routes import Route
from relay.auth import Principal, extract_token, hash_token
from relay.errors import ValidationFailed
from relay.models import UtcDatetime
from relay.store.dashboard_base import SessionRecord
from relay.timeutil import utcnow

SESSION_TTL = timedelta(hours=12)
log = structlog.get_logger("relay.http")


class SessionInfo(BaseModel):
    """Who the dashboard session signs in, and what the page needs to act for it."""

    signed_in: bool
    name: str | None = None
    scopes: list[str] = Field(default_factory=list)
    components: list[str] = Field(default_factory=list, description="Component globs.")
    admin: bool = False
    csrf_token: str | None = Field(
        default=None, description="Send it as X-CSRF-Token with state-changing calls."
    )
    expires_at: UtcDatetime | None = Field(
        default=None, description="When the session ends (in the sign-in answer)."
    )


def _info(principal: Principal, secret: str, expires_in: timedelta | None) -> SessionInfo:
    return SessionInfo(
        signed_in=True,
        name=principal.name,
        scopes=sorted(principal.scopes),
        components=list(principal.components),
        admin=principal.has_scope("admin"),
        csrf_token=csrf_token(secret),
        expires_at=utcnow() + expires_in if expires_in else None,
    )


async def sign_in(request: web.Request) -> web.Response:
    """Open a dashboard session for the token in `Authorization`; sets an HttpOnly,
    SameSite=Strict cookie (Secure over https) that expires."""
    token = extract_token(request.headers, {})
    if token is None:
        raise ValidationFailed(
            "sign in with the token in the Authorization header",
            details=[{"field": "Authorization", "message": "required"}],
        )
    principal = principal_of(request)
    # Every view and the live feed read: a token that cannot would get an empty page.
    principal.require("events:read")
    store, now = request.app[STORE], utcnow()
    await store.delete_expired_sessions(now)
    secret = secrets.token_urlsafe(32)
    await store.add_session(
        SessionRecord(session_hash(secret), hash_token(token), now, now + SESSION_TTL)
    )
    log.info("session_opened", token_name=principal.name)
    response = json_answer(_info(principal, secret, SESSION_TTL).model_dump(mode="json"), 201)
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )
    return response


@public
async def current_session(request: web.Request) -> web.Response:
    """The dashboard session of the cookie (`signed_in: false` without one: never a 401,
    so that a page can ask before signing in)."""
    secret = session_secret(request)
    principal = await cookie_principal(request) if secret is not None else None
    if secret is None or principal is None:
        return json_answer(SessionInfo(signed_in=False).model_dump(mode="json"))
    return json_answer(_info(principal, secret, None).model_dump(mode="json"))


async def sign_out(request: web.Request) -> web.Response:
    """End the cookie's session on the server (every instance), and drop the cookie."""
    secret = session_secret(request)
    if secret is not None:
        await request.app[STORE].delete_session(session_hash(secret))
        log.info("session_closed", token_name=principal_of(request).name)
    response = json_answer(SessionInfo(signed_in=False).model_dump(mode="json"))
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


def routes() -> list[Route]:
    """Routes of this module."""
    return [
        Route("POST", "/session", sign_in, "Sign in (dashboard)", "dashboard",
              response=SessionInfo, status=201),
        Route("GET", "/session", current_session, "The dashboard session", "dashboard",
              response=SessionInfo, public=True),
        Route("DELETE", "/session", sign_out, "Sign out (dashboard)", "dashboard",
              response=SessionInfo),
    ]  # fmt: skip
