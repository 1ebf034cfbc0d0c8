"""Use cases of deploy insights: read a badge (and decide who may), rotate the badge key
secret, answer the DORA keys. Settings come in as values (BadgeConfig): this layer does
not read relay.settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from relay.auth import Principal
from relay.errors import ConfigError, Forbidden, Unauthenticated
from relay.insights.badges import (
    BadgeSpec,
    build_badge,
    deployment_badge,
    is_public,
    key_opens,
)
from relay.insights.dora import dora_answer
from relay.models import Kind
from relay.store.base import ListQuery, Store
from relay.store.insights_base import DoraQuery
from relay.timeutil import utcnow

SECRET_NAME = "badges"


@dataclass(frozen=True)
class BadgeConfig:
    """`[badges]` settings, passed in by the app."""

    public: tuple[str, ...] = ()
    secret: str | None = None
    max_age: int = 60


@dataclass(frozen=True)
class BadgeRequest:
    """Which badge: of a component's deployments to a stage (any stage when None), or of
    its builds; the label (default: the stage, or the kind)."""

    component: str
    kind: Kind = "deployment"
    stage: str | None = None
    label: str | None = None


class InsightsService:
    """Badges and the DORA keys, read from the store."""

    def __init__(self, store: Store, config: BadgeConfig) -> None:
        self.store, self.config = store, config

    async def badge_secret(self) -> str:
        """`badges.secret` when configured; otherwise the one kept in the store (made on
        first use, the same for every instance and after every restart)."""
        if self.config.secret:
            return self.config.secret
        return await self.store.secret(SECRET_NAME, secrets.token_urlsafe(32))

    async def rotate(self) -> None:
        """A new stored secret: every badge URL given out so far stops working."""
        if self.config.secret:
            raise ConfigError(
                "badges.secret is set in the configuration: change it there to rotate"
            )
        await self.store.replace_secret(SECRET_NAME, secrets.token_urlsafe(32))

    async def admit(self, component: str, key: str | None, principal: Principal | None) -> str:
        """Who may see this component's badges: "public", "key" or "token"; raises
        Unauthenticated or Forbidden otherwise. A badge key opens only its component."""
        if is_public(component, self.config.public):
            return "public"
        if key:
            if key_opens(await self.badge_secret(), component, key):
                return "key"
            raise Forbidden("this badge key does not open this component's badges")
        if principal is None:
            raise Unauthenticated(
                "this badge is not public: add its badge key (`relay badges url`) or a token"
            )
        principal.require("events:read", component)
        return "token"

    async def badge(self, request: BadgeRequest) -> BadgeSpec:
        """What the badge says now."""
        build = request.kind == "build"
        label = request.label or (None if build else request.stage) or request.kind
        stage = None if build else request.stage  # builds have no stage
        latest = await self.store.list_records(
            ListQuery(kind=request.kind, component=request.component, stage=stage, limit=1)
        )
        record = latest.items[0] if latest.items else None
        if build:
            return build_badge(record, label)
        live = None
        if record is not None:
            ids = await self.store.live_ids([(record.component, record.stage)])
            found = await self.store.deployments_by_ids(list(ids.values()))
            live = next((d.version for d in found.values()), None)
        return deployment_badge(record, live, label)

    async def dora(
        self,
        principal: Principal,
        component: str | None,
        stage: str,
        days: int,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """The four keys over the last `days` days, for `component` or every component
        the token may read."""
        principal.require("events:read", component)
        components: tuple[str, ...] | None = (component,) if component else None
        if component is None and "*" not in principal.components:
            rows = await self.store.list_components()
            components = tuple(r.slug for r in rows if principal.can_access(r.slug))
        until = now or utcnow()
        query = DoraQuery(until - timedelta(days=days), until, stage, components)
        (figures,) = await self.store.dora(query)
        return dora_answer(figures, component, stage, until, days)
