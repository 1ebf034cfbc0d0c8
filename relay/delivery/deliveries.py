"""Use cases of the delivery side: inspect, retry, replay, forwarder health."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from relay.auth import Principal
from relay.delivery.circuit import CircuitSnapshot
from relay.delivery.dispatch import Dispatcher
from relay.delivery.target import Target
from relay.errors import Conflict, NotFound, ValidationFailed
from relay.ids import new_id
from relay.models import Delivery, ForwarderCounts, ForwarderInfo
from relay.store.base import DeliveryQuery, NewDelivery, Store
from relay.store.dashboard_base import DeploymentDeliveries
from relay.timeutil import utcnow

# A deployment's deliveries are listed whole: a few per event and forwarder, plus
# retries' and replays' rows.
PER_DEPLOYMENT_LIMIT = 10_000
# What a search by a token limited to some components reads at most to fill its page.
SEARCH_READ_LIMIT = 5_000


async def resume_forwarder(store: Store, forwarder: str) -> int:
    """Close the forwarder's circuit for every instance and make its pending deliveries
    that wait for a retry due now (none is added: nothing is sent twice); how many were
    brought forward. For an operator who knows the target is back."""
    moved = await store.resume_due(forwarder, utcnow())
    # After the deliveries: a dispatcher that sees the circuit closed finds them due.
    await store.update_circuit(forwarder, lambda _: CircuitSnapshot())
    return moved


@dataclass
class DeliveryService:
    """Deliveries as the API and CLI see them."""

    store: Store
    dispatcher: Dispatcher

    async def of_deployment(self, deployment_id: str) -> list[Delivery]:
        """Every delivery of one deployment with its attempts, in event order."""
        query = DeliveryQuery(deployment_id=deployment_id, limit=PER_DEPLOYMENT_LIMIT)
        return await self.store.list_deliveries(query)

    async def search(self, query: DeliveryQuery, principal: Principal) -> list[Delivery]:
        """Deliveries matching `query`, limited to components the token may see."""
        principal.require("events:read")
        if "*" in principal.components:
            return await self.store.list_deliveries(query)
        # Component globs are not in the query: read further than `limit`, so that what
        # the token may not see does not crowd out what it may.
        wider = replace(query, limit=max(query.limit, min(query.limit * 20, SEARCH_READ_LIMIT)))
        found = await self.store.list_deliveries(wider)
        return [d for d in found if principal.can_access(d.component)][: query.limit]

    async def summaries(
        self, deployment_ids: list[str], principal: Principal
    ) -> list[DeploymentDeliveries]:
        """Delivery summaries of many deployments, those the token may see."""
        principal.require("events:read")
        found = await self.store.delivery_summaries(deployment_ids)
        return [f for f in found if principal.can_access(f.component)]

    async def retry(self, delivery_id: str, principal: Principal) -> Delivery:
        """Send a delivery again now, dead ones included."""
        principal.require("admin")
        found = await self.store.retry_now(delivery_id, utcnow())
        if found is None:
            raise NotFound(f"no delivery {delivery_id!r}")
        self.dispatcher.wake()
        return found

    async def replay(
        self, forwarder: str, since: datetime, until: datetime, principal: Principal
    ) -> int:
        """Deliver again to `forwarder` every event in [since, until) that it matches."""
        principal.require("admin")
        target = self._target(forwarder)
        if not target.config.enabled:
            raise Conflict(f"forwarder {forwarder!r} is disabled in the configuration")
        if until <= since:
            raise ValidationFailed(
                "nothing to replay",
                details=[{"field": "until", "message": "must be later than since"}],
            )
        now = utcnow()
        rows = [
            (event, NewDelivery(id=new_id(), forwarder=forwarder, next_attempt_at=now))
            for event in await self.store.events_between(since, until)
            if target.config.match.accepts(event.type, event.payload)
        ]
        count = await self.store.add_deliveries(rows) if rows else 0
        self.dispatcher.wake()
        return count

    def _target(self, name: str) -> Target:
        target = self.dispatcher.targets.get(name)
        if target is None:
            raise NotFound(f"no forwarder named {name!r}")
        return target

    async def enable(self, name: str, principal: Principal) -> None:
        """Re-enable a forwarder that a target (HTTP 410) disabled."""
        principal.require("admin")
        target = self._target(name)
        await self.store.set_disabled(name, None)
        target.disabled_reason = None
        self.dispatcher.wake()

    async def resume(self, name: str, principal: Principal) -> int:
        """Close a forwarder's circuit and make its waiting deliveries due now (admin)."""
        principal.require("admin")
        target = self._target(name)
        moved = await resume_forwarder(self.store, name)
        target.breaker.resume()
        self.dispatcher.wake()
        return moved

    async def forwarders(self) -> list[ForwarderInfo]:
        """Each configured forwarder with its state, success rate and last error."""
        # As stored: the delivering may happen in other processes (serve --no-dispatch
        # beside relay worker), whose circuits and 410s this process would not know. Read
        # into copies: the dispatcher adopts the stored state at points of its own choosing.
        circuits = await self.store.circuits()
        disabled = await self.store.disabled_forwarders()
        counts = await self.store.forwarder_counts(utcnow() - timedelta(hours=24))
        now = utcnow()
        out = []
        for name, target in self.dispatcher.targets.items():
            c = counts.get(name) or ForwarderCounts()
            breaker = replace(target.breaker)
            breaker.restore(circuits.get(name, CircuitSnapshot()))
            reason = target.disabled_reason or disabled.get(name)
            state: Literal["active", "circuit-open", "disabled"]
            if reason is not None or not target.config.enabled:
                state = "disabled"
            elif breaker.state(now) != "closed":
                state = "circuit-open"
            else:
                state = "active"
            rate = None
            if c.attempts_24h:
                rate = round(1 - c.failures_24h / c.attempts_24h, 4)
            out.append(
                ForwarderInfo(
                    name=name,
                    type=target.config.type,
                    state=state,
                    disabled_reason=reason,
                    success_rate_24h=rate,
                    counts=c,
                )
            )
        return out
