"""The delivery loop: claim due deliveries, send them, record what happened."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime, timedelta

import structlog

from forwarders.base import (
    Delivered,
    Event,
    ForwarderConfig,
    ForwarderError,
    RetryLater,
    SendContext,
    Skipped,
    TargetGone,
)
from forwarders.common import masked
from relay.delivery.circuit import Signal
from relay.delivery.http import Transport
from relay.delivery.record import Listener, Recorder, settle
from relay.delivery.shared import adopt_shared_state, renew_leases, share_circuit
from relay.delivery.target import Target
from relay.store.base import Claimed, Completion, Store
from relay.store.leases import new_owner
from relay.tasks import cancel_and_wait
from relay.timeutil import utcnow

log = structlog.get_logger("relay.dispatch")
# How often (seconds) the circuit and disabled state that other instances may have
# changed is read back from the store.
SHARED_REFRESH = 0.5
# Deliveries a forwarder keeps claimed beyond its free slots: a claim transaction costs
# about as much for 2 rows as for 32, so claims are not split thin when a forwarder's
# concurrency is small or shared between worker processes. At most AHEAD_PER_SLOT per
# slot, so that one process does not hold a small backlog that others could send.
CLAIM_AHEAD = 32
AHEAD_PER_SLOT = 8


def send_bound(config: ForwarderConfig) -> float:
    """The longest a whole (multi-step) send of this forwarder may take, in seconds."""
    return config.timeout * 3 + 1


class Dispatcher:
    """Runs every target's deliveries with its own concurrency limit and timeout."""

    def __init__(
        self,
        store: Store,
        targets: list[Target],
        transport: Transport,
        *,
        poll_interval: float = 5.0,
        lease: float = 60.0,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.targets = {t.config.name: t for t in targets}
        self.transport = transport
        self.poll_interval = poll_interval
        self.lease = lease
        self.owner = owner or new_owner()
        self.listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        # Claimed deliveries whose send is in flight: their leases are renewed.
        self._held: set[str] = set()
        self._recorder = Recorder(store, self._held, self.listeners, self.wake)
        self._refreshed_at = float("-inf")
        self._stopping = False
        # Bound once, with the logging configured by now: the module's lazy logger binds
        # anew on every call, which costs more than a filtered-out debug line should.
        self._success_log = log.bind()

    def wake(self) -> None:
        """Look for due deliveries now (called after a commit that added some)."""
        self._wake.set()

    async def start(self) -> None:
        """Load durable forwarder state and start the loop."""
        self._stopping = False
        for name, reason in (await self.store.disabled_forwarders()).items():
            if name in self.targets:
                self.targets[name].disabled_reason = reason
        self._task = asyncio.create_task(self._run(), name="relay-dispatcher")
        self._renewer = asyncio.create_task(
            renew_leases(self.store, self.owner, self._held, self.lease), name="relay-lease-renewal"
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop claiming, let sends in flight finish up to `grace` seconds, free leases."""
        self._stopping = True  # what waits claimed is not sent: its lease is freed below
        await cancel_and_wait(self._task)
        self._task = None
        if self._sends:
            _, pending = await asyncio.wait(self._sends, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._recorder.drain()
        # Only now: sends finishing in the grace keep their leases.
        await cancel_and_wait(self._renewer)
        self._renewer = None
        await self.store.release_claims(self.owner)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            started = utcnow()
            try:
                claimed = await self._claim_round(started)
            except Exception:
                log.exception("dispatch_round_failed")
                claimed = 0
            if claimed:
                continue
            await self._sleep(started)

    async def _sleep(self, round_at: datetime) -> None:
        # What was due at `round_at` and not claimed is in flight, blocked behind an
        # earlier event, or held by a full, open or disabled forwarder: what frees it
        # calls wake(). Only later times may set the timer, or the loop would spin.
        now = utcnow()
        timeout = self.poll_interval
        with contextlib.suppress(Exception):
            due = await self.store.next_due(after=round_at)
            if due is not None:
                timeout = min(timeout, max(0.0, (due - now).total_seconds()))
        for target in self.targets.values():
            until = target.breaker.opened_until
            if until is not None and until > round_at:
                timeout = min(timeout, max(0.0, (until - now).total_seconds()))
        # Not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives as
        # the wake-up does, and stop() would then wait for this loop forever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(timeout, 0.005)):
                await self._wake.wait()

    async def _claim_round(self, now: datetime) -> int:
        if time.monotonic() - self._refreshed_at >= SHARED_REFRESH:
            self._refreshed_at = time.monotonic()
            await adopt_shared_state(self.store, self.targets)
        for target in self.targets.values():  # what the circuit or a switch held back
            self._start_ready(target, now)
        wanted = [(t, self._allowance(t, now)) for t in self.targets.values()]
        wanted = [(t, n) for t, n in wanted if n > 0]
        if not wanted:
            return 0
        # Renewed while the send is in flight (see _renew_leases).
        lease_until = now + timedelta(seconds=self.lease)
        # All forwarders' claims at once: with group commit they share one transaction.
        results = await asyncio.gather(
            *(self.store.claim(t.config.name, n, now, lease_until, self.owner) for t, n in wanted),
            return_exceptions=True,
        )
        total = 0
        for (target, _), claims in zip(wanted, results, strict=True):
            if isinstance(claims, BaseException):
                # Its leases (if any were taken) run out and the deliveries come back.
                log.error("claim_failed", forwarder=target.config.name, error=str(claims))
                continue
            total += len(claims)
            target.ready.extend(claims)
            self._held.update(c.id for c in claims)
        for target in self.targets.values():
            self._start_ready(target, now)
        return total

    def _start_ready(self, target: Target, now: datetime) -> None:
        while (claimed := self._next(target, now)) is not None:
            task = asyncio.create_task(self._sender(target, claimed))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)

    def _next(self, target: Target, now: datetime) -> Claimed | None:
        """The next claimed delivery of `target` that may be sent now (then in flight)."""
        if not target.ready or self._stopping or not target.may_start(now):
            return None
        target.breaker.on_claimed(now)
        target.in_flight += 1
        return target.ready.popleft()

    @staticmethod
    def _allowance(target: Target, now: datetime) -> int:
        if not target.active:
            return 0
        if target.slots == 0:
            return 0
        free = target.slots - target.in_flight - len(target.ready)
        if target.breaker.state(now) == "closed":
            # Some more wait claimed, so a slot never waits for a claim; claimed in
            # batches of at least half of that, not one by one.
            ahead = max(target.slots, min(CLAIM_AHEAD, AHEAD_PER_SLOT * target.slots))
            free += ahead
            if free < ahead // 2:
                return 0
        return target.breaker.allowance(now, free)

    async def _sender(self, target: Target, first: Claimed) -> None:
        """Send `first`, then in the same task whatever else of `target` may go next: one
        task per busy slot, not one per delivery."""
        claimed: Claimed | None = first
        while claimed is not None:
            signal: Signal | None = None
            recorded = False
            try:
                completion, signal = await self._attempt(target, claimed)
                self._recorder.add(claimed, completion)  # written in the next group
                recorded = True
            except Exception:
                # The lease runs out and the delivery is claimed again: nothing is lost.
                log.exception("delivery_not_recorded", delivery_id=claimed.id)
            finally:
                try:
                    await share_circuit(self.store, target, signal)
                finally:
                    if not recorded:
                        self._held.discard(claimed.id)
                    target.in_flight -= 1
            now = utcnow()
            claimed = self._next(target, now)
            self._start_ready(target, now)  # e.g. a probe's success opened every slot
        self.wake()

    async def _attempt(self, target: Target, claimed: Claimed) -> tuple[Completion, Signal | None]:
        config = target.config
        event = Event(
            claimed.event_id, claimed.event_type, claimed.event_created_at, claimed.payload
        )
        number = claimed.attempts + 1
        started = utcnow()
        context = SendContext(
            delivery_id=claimed.id,
            attempt=number,
            transport=self.transport,
            timeout=config.timeout,
            now=started,
            state=dict(claimed.state),
            shared=dict(claimed.shared),
        )
        clock = time.perf_counter()
        outcome: Delivered | Skipped | ForwarderError
        try:
            if target.one_request:
                outcome = await target.forwarder.send(event, context)
            else:
                # The forwarder times each request; this bounds a whole multi-step send.
                async with asyncio.timeout(send_bound(config)):
                    outcome = await target.forwarder.send(event, context)
            if not isinstance(outcome, Delivered | Skipped):
                raise TypeError(f"send() returned {type(outcome).__name__}, not an outcome")
        except ForwarderError as exc:
            outcome = exc
        except TimeoutError:
            outcome = RetryLater(f"no answer within {config.timeout:g}s")
        except Exception as exc:
            log.exception("forwarder_crashed", forwarder=config.name, delivery_id=claimed.id)
            outcome = RetryLater(f"forwarder error: {type(exc).__name__}")
        duration_ms = round((time.perf_counter() - clock) * 1000, 2)
        if target.secrets:
            outcome = masked(outcome, target.secrets)
        if isinstance(outcome, TargetGone):
            self._disable(target, outcome.reason)
        return settle(
            target.config, claimed, context, outcome, started, duration_ms, self._success_log
        )

    def _disable(self, target: Target, reason: str) -> None:
        target.disabled_reason = reason
        target.disables += 1
        target.disabling += 1
        # Tracked like a send, so that stop() waits for it to be durable.
        task = asyncio.create_task(self._store_disabled(target, reason))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        log.warning("forwarder_disabled", forwarder=target.config.name, reason=reason)

    async def _store_disabled(self, target: Target, reason: str) -> None:
        try:
            await self.store.set_disabled(target.config.name, reason)
        except Exception as exc:
            # The next refresh reads the forwarder as enabled again; its next 410
            # disables it again.
            log.error("forwarder_disable_not_stored", forwarder=target.config.name, error=str(exc))
        finally:
            target.disabling -= 1
