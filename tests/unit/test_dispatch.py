"""The delivery loop (relay/delivery/dispatch.py) on the in-memory store with scripted forwarders:
outcomes, retries, ordering, concurrency, circuit breaker, isolation, leases."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from structlog.testing import capture_logs

from forwarders.base import (
    Delivered,
    Event,
    ForwarderConfig,
    PermanentFailure,
    RetryLater,
    SendContext,
    Skipped,
    TargetGone,
)
from relay.auth import Principal
from relay.delivery.circuit import CircuitBreaker, CircuitSnapshot
from relay.delivery.deliveries import DeliveryService
from relay.delivery.dispatch import Dispatcher
from relay.delivery.http import HttpRequest, HttpResponse, MockTransport
from relay.delivery.shared import adopt_shared_state
from relay.delivery.target import Target
from relay.models import Delivery, Deployment
from relay.store.base import Claimed, Completion, DeliveryQuery
from relay.store.memory.store import MemoryStore
from relay.timeutil import utcnow
from tests.delivery_support import ADMIN, eventually
from tests.support import make_command, make_record

Behaviour = Callable[[Event, SendContext], Awaitable[Any]]
Step = Delivered | Skipped | BaseException | Behaviour


class Scripted:
    """A forwarder answering from a script of outcomes (then Delivered), without I/O.

    It remembers every call and how many sends were running at once."""

    type: ClassVar[str] = "scripted"
    Config: ClassVar[type[ForwarderConfig]] = ForwarderConfig

    def __init__(
        self, name: str = "hook", *steps: Step, otherwise: Behaviour | None = None, **config: Any
    ) -> None:
        table: dict[str, Any] = {
            "name": name,
            "type": "scripted",
            "retry": {"schedule": ["0.05s", "0.05s"], "jitter": 0},
        }
        self.config = ForwarderConfig.model_validate({**table, **config})
        self.steps = list(steps)
        self.otherwise = otherwise
        self.calls: list[tuple[Event, SendContext]] = []
        self.active = 0
        self.max_active = 0

    async def send(self, event: Event, context: SendContext) -> Any:
        """Play the next step of the script."""
        self.calls.append((event, context))
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            step = self.steps.pop(0) if self.steps else self.otherwise or Delivered(200, "ok")
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, Delivered | Skipped):
                return step
            return await step(event, context)
        finally:
            self.active -= 1

    @property
    def sent(self) -> list[Any]:
        """The `n` marker of each event sent, in call order."""
        return [event.data.get("n") for event, _ in self.calls]


class KeyedConfig(ForwarderConfig):
    """A scripted forwarder's config with a secret, as every real forwarder's has."""

    key: str = "k3y-s3cr3t"

    def secrets(self) -> list[str]:
        """The key."""
        return [self.key]


def pause(seconds: float, then: Any = None) -> Behaviour:
    """A step that takes `seconds` and then delivers (or returns `then`)."""

    async def step(event: Event, context: SendContext) -> Any:
        await asyncio.sleep(seconds)
        return Delivered(200) if then is None else then

    return step


def no_network(request: HttpRequest) -> HttpResponse:
    """The transport of these tests: scripted forwarders never use it."""
    raise AssertionError(f"unexpected request to {request.url}")


class Harness:
    """A dispatcher over a MemoryStore; records events and reads deliveries back."""

    def __init__(
        self,
        *forwarders: Scripted,
        threshold: int = 5,
        cooldown: float = 30.0,
        lease: float = 60.0,
    ) -> None:
        self.store = MemoryStore()
        self.forwarders = {f.config.name: f for f in forwarders}
        targets = [
            Target(f.config, f, CircuitBreaker(threshold, timedelta(seconds=cooldown)))
            for f in forwarders
        ]
        # A 5 s poll: anything faster in these tests is driven by wake-ups and timers.
        self.dispatcher = Dispatcher(
            self.store, targets, MockTransport(no_network), poll_interval=5.0, lease=lease
        )
        self.service = DeliveryService(self.store, self.dispatcher)
        self.completions: list[Completion] = []
        self.dispatcher.listeners.append(self._listen)
        self.claims = 0
        self._claim = self.store.claim
        self.store.claim = self._counting_claim  # type: ignore[method-assign]

    def _listen(self, completion: Completion, claimed: Claimed) -> None:
        self.completions.append(completion)

    async def _counting_claim(self, *args: Any, **kwargs: Any) -> list[Claimed]:
        self.claims += 1
        return await self._claim(*args, **kwargs)

    async def record(
        self, *names: str, record: Deployment | None = None, n: int | None = None
    ) -> str:
        """Record one event (of `record`'s deployment, or a new one) for forwarders `names`."""
        record = record or make_record(created_at=utcnow())
        command = make_command(record, forwarders=names or tuple(self.forwarders))
        data = {**command.event.data, "n": n}
        command = replace(command, event=replace(command.event, data=data))
        await self.store.record(command)
        self.dispatcher.wake()
        return record.id

    async def deliveries(self, **query: Any) -> list[Delivery]:
        """Deliveries matching `query` (DeliveryQuery fields), with attempts for a deployment."""
        return await self.store.list_deliveries(DeliveryQuery(**query))

    async def one(self, deployment_id: str) -> Delivery:
        """The single delivery of a deployment."""
        (found,) = await self.deliveries(deployment_id=deployment_id)
        return found

    async def until(self, deployment_id: str, status: str) -> Delivery:
        """Wait until the single delivery of a deployment has `status`."""

        async def check() -> Delivery | None:
            found = await self.one(deployment_id)
            return found if found.status == status else None

        return await eventually(check, what=f"delivery {status}")


@pytest.fixture
async def harness() -> AsyncIterator[Callable[..., Harness]]:
    """Build harnesses (started by the test); every one is stopped afterwards."""
    made: list[Harness] = []

    def make(*forwarders: Scripted, **options: Any) -> Harness:
        made.append(Harness(*forwarders, **options))
        return made[-1]

    yield make
    for h in made:
        await h.dispatcher.stop(grace=0.1)


MakeHarness = Callable[..., Harness]


async def _deliver_one(harness: MakeHarness, hook: Scripted, status: str) -> Delivery:
    """Start a dispatcher for `hook` alone, record one deployment and wait until its
    delivery has `status`."""
    h = harness(hook)
    await h.dispatcher.start()
    dep = await h.record()
    return await h.until(dep, status)


async def test_delivers_and_records_one_attempt(harness: MakeHarness) -> None:
    """A due delivery is sent once, marked delivered, with its attempt recorded."""
    hook = Scripted("hook", Delivered(202, "accepted"))
    h = harness(hook)
    await h.dispatcher.start()
    dep = await h.record()
    found = await h.until(dep, "delivered")
    assert found.attempts == 1 and found.delivered_at is not None
    (attempt,) = found.attempt_log or []
    assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "delivered", 202)
    assert attempt.response_excerpt == "accepted"
    assert attempt.duration_ms >= 0
    event, context = hook.calls[0]
    assert context.delivery_id == found.id and context.attempt == 1
    assert event.id == found.event_id and event.data["id"] == dep
    assert [c.status for c in h.completions] == ["delivered"]


async def test_a_forwarders_secrets_are_masked_in_every_stored_outcome(
    harness: MakeHarness,
) -> None:
    """A forwarder's secret never reaches the stored deliveries: not in an error that
    quotes a URL carrying it, nor in what the target answered, failing or not."""
    hook = Scripted(
        "hook",
        RetryLater("could not reach https://h/k3y-s3cr3t", excerpt="bad key k3y-s3cr3t"),
        Delivered(200, "welcome k3y-s3cr3t"),
    )
    hook.config = KeyedConfig.model_validate(hook.config.model_dump())
    h = harness(hook)
    await h.dispatcher.start()
    found = await h.until(await h.record(), "delivered")
    first, second = found.attempt_log or []
    assert (first.error, first.response_excerpt) == ("could not reach https://h/***", "bad key ***")
    assert second.response_excerpt == "welcome ***"
    assert "k3y-s3cr3t" not in found.model_dump_json()


async def test_transient_failures_are_retried_until_delivered(harness: MakeHarness) -> None:
    """Two RetryLater then success: delivered on the third attempt, three attempts kept."""
    hook = Scripted(
        "hook",
        RetryLater("busy", status_code=503),
        RetryLater("busy", status_code=503),
        Delivered(200),
    )
    found = await _deliver_one(harness, hook, "delivered")
    log = found.attempt_log or []
    assert [(a.number, a.outcome, a.status_code) for a in log] == [
        (1, "retry", 503),
        (2, "retry", 503),
        (3, "delivered", 200),
    ]
    assert [context.attempt for _, context in hook.calls] == [1, 2, 3]
    # 0.05 s between tries (the schedule), driven by timers, not by the 5 s poll.
    gaps = [(b.started_at - a.started_at).total_seconds() for a, b in itertools.pairwise(log)]
    assert all(0.05 <= g < 1.0 for g in gaps), gaps


async def test_a_success_is_a_debug_line_and_a_failure_an_info_line(
    harness: MakeHarness,
) -> None:
    """At the default level (info) a success writes no log line; a retry does."""
    hook = Scripted("hook", RetryLater("busy", status_code=503), Delivered(200))
    with capture_logs() as logs:
        found = await _deliver_one(harness, hook, "delivered")
    levels = {(e["event"], e["log_level"]) for e in logs if e["event"].startswith("delivery_")}
    assert ("delivery_retry_scheduled", "info") in levels
    assert {level for event, level in levels if event == "delivery_succeeded"} <= {"debug"}
    assert found.attempts == 2


async def test_a_retry_is_scheduled_as_next_attempt_at(harness: MakeHarness) -> None:
    """After a transient failure the delivery stays pending until its next_attempt_at."""
    hook = Scripted("hook", RetryLater("busy"), retry={"schedule": ["1h"], "jitter": 0})
    h = harness(hook)
    await h.dispatcher.start()
    dep = await h.record()
    found = await eventually(lambda: _attempted(h, dep))
    assert found.status == "pending" and found.last_error == "busy"
    assert found.next_attempt_at is not None
    wait = (found.next_attempt_at - utcnow()).total_seconds()
    assert 3500 < wait <= 3600


async def _attempted(h: Harness, dep: str) -> Delivery | None:
    found = await h.one(dep)
    return found if found.attempts else None


async def test_the_targets_requested_time_is_honoured(harness: MakeHarness) -> None:
    """RetryLater(at=...) later than the schedule delays the next attempt until then."""

    async def rate_limited(event: Event, context: SendContext) -> Any:
        raise RetryLater("slow down", at=context.now + timedelta(seconds=0.4), status_code=429)

    hook = Scripted("hook", rate_limited)
    found = await _deliver_one(harness, hook, "delivered")
    first, second = found.attempt_log or []
    assert (second.started_at - first.started_at).total_seconds() >= 0.4


async def test_permanent_failure_is_dead_at_once(harness: MakeHarness) -> None:
    """PermanentFailure: dead after one attempt, error and response excerpt kept."""
    hook = Scripted(
        "hook", PermanentFailure("rejected", status_code=400, excerpt='{"error":"bad field"}')
    )
    found = await _deliver_one(harness, hook, "dead")
    (attempt,) = found.attempt_log or []
    assert (attempt.outcome, attempt.status_code, attempt.error) == ("dead", 400, "rejected")
    assert attempt.response_excerpt == '{"error":"bad field"}'
    assert found.next_attempt_at is None and len(hook.calls) == 1


async def test_an_exhausted_schedule_is_dead(harness: MakeHarness) -> None:
    """Failing every time: 1 try + the 2 retries of the schedule, then dead."""
    hook = Scripted("hook", *[RetryLater("down", status_code=502)] * 5)
    found = await _deliver_one(harness, hook, "dead")
    assert [a.outcome for a in found.attempt_log or []] == ["retry", "retry", "dead"]
    assert len(hook.calls) == 3


async def test_skipped_is_final_and_not_an_error(harness: MakeHarness) -> None:
    """Skipped (the event does not apply to the target) ends the delivery without retry."""
    hook = Scripted("hook", Skipped("no stage"))
    found = await _deliver_one(harness, hook, "skipped")
    assert [a.outcome for a in found.attempt_log or []] == ["skipped"]


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (ValueError("boom"), "forwarder error: ValueError"),
        (KeyError("x"), "forwarder error: KeyError"),
    ],
)
async def test_a_crashing_forwarder_is_a_retry(
    harness: MakeHarness, step: BaseException, error: str
) -> None:
    """An unexpected exception in send() is recorded as a transient failure, then retried."""
    hook = Scripted("hook", step)
    found = await _deliver_one(harness, hook, "delivered")
    first, second = found.attempt_log or []
    assert (first.outcome, first.error) == ("retry", error)
    assert second.outcome == "delivered"


async def test_a_send_returning_no_outcome_is_an_attempt_not_a_silent_loop(
    harness: MakeHarness,
) -> None:
    """A plugin returning None instead of an outcome gets a failed attempt and a retry."""

    async def returns_none(event: Event, context: SendContext) -> Any:
        return None

    hook = Scripted("hook", returns_none)
    found = await _deliver_one(harness, hook, "delivered")
    first, second = found.attempt_log or []
    assert (first.outcome, first.error) == ("retry", "forwarder error: TypeError")
    assert second.outcome == "delivered"


async def test_a_whole_send_is_bounded_in_time(harness: MakeHarness) -> None:
    """A send that never returns is cut off (3 x timeout + 1 s) and retried."""
    hook = Scripted("hook", pause(3600), timeout="0.05s")
    found = await _deliver_one(harness, hook, "delivered")
    first, _ = found.attempt_log or []
    assert first.outcome == "retry" and first.error == "no answer within 0.05s"
    assert 1.1 <= first.duration_ms / 1000 < 2


async def test_events_of_one_deployment_are_sent_in_order(harness: MakeHarness) -> None:
    """However sends interleave and fail, a deployment's events reach a forwarder in order."""

    first_running = asyncio.Event()

    async def first_event_fails_twice(event: Event, context: SendContext) -> Any:
        # Nothing may overtake event 0 while it waits for its retries.
        n = event.data["n"]
        if n == 0 and context.attempt <= 2:
            raise RetryLater("busy")
        if n == 1:
            first_running.set()
        if n == 101:  # waits for a send of the other deployment: they must overlap
            await asyncio.wait_for(first_running.wait(), timeout=5)
        await asyncio.sleep(0.001 * (n % 7))
        return Delivered(200)

    hook = Scripted(
        "hook",
        otherwise=first_event_fails_twice,
        concurrency=8,
        retry={"schedule": ["0.02s"] * 3, "jitter": 0},
    )
    h = harness(hook)
    first = make_record("api", "v1", created_at=utcnow())
    other = make_record("web", "v9", created_at=utcnow())
    for n in range(10):
        await h.record(record=first, n=n)
        await h.record(record=other, n=100 + n)
    await h.dispatcher.start()
    await eventually(lambda: _all_settled(h), what="every delivery settled")
    by_first = [n for n in hook.sent if n is not None and n < 100]
    by_other = [n for n in hook.sent if n is not None and n >= 100]
    assert by_first == [0, 0, 0, *range(1, 10)]
    assert by_other == list(range(100, 110))
    # Two deployments do go in parallel.
    assert hook.max_active == 2


async def _all_settled(h: Harness) -> bool:
    found = await h.deliveries(limit=1000)
    return bool(found) and all(d.status != "pending" for d in found)


async def test_concurrency_limit_per_forwarder(harness: MakeHarness) -> None:
    """No more than `concurrency` sends of one forwarder run at once."""
    hook = Scripted("hook", *[pause(0.05)] * 12, concurrency=3)
    h = harness(hook)
    for _ in range(12):
        await h.record()
    await h.dispatcher.start()
    await eventually(lambda: _all_settled(h), timeout=5)
    assert hook.max_active == 3
    assert len(hook.calls) == 12


def _slow_writes(h: Harness, seconds: float) -> None:
    """Make every write of outcomes (one or several) take `seconds` longer."""
    one, many = h.store.complete, h.store.complete_many

    async def slow_one(completion: Completion) -> None:
        await asyncio.sleep(seconds)
        await one(completion)

    async def slow_many(completions: Any) -> None:
        await asyncio.sleep(seconds)
        await many(completions)

    h.store.complete = slow_one  # type: ignore[method-assign]
    h.store.complete_many = slow_many  # type: ignore[method-assign]


async def test_a_slot_sends_on_while_its_outcome_is_written(harness: MakeHarness) -> None:
    """A slow database does not hold the next send back: with one slot, three deployments
    are sent while the first outcome is still being written, and none is sent twice."""
    hook = Scripted("hook", concurrency=1)
    h = harness(hook, lease=0.15)
    _slow_writes(h, 0.4)
    deps = [await h.record() for _ in range(3)]
    await h.dispatcher.start()
    await eventually(lambda: len(hook.calls) == 3, timeout=0.3)
    for dep in deps:
        found = await h.until(dep, "delivered")
        assert found.attempts == 1
    await asyncio.sleep(0.3)  # the leases were kept while the writes were slow
    assert len(hook.calls) == 3


async def test_stop_writes_every_outcome_before_freeing_leases(harness: MakeHarness) -> None:
    """stop() returns only once the outcomes of finished sends are recorded."""
    hook = Scripted("hook")
    h = harness(hook)
    _slow_writes(h, 0.2)
    dep = await h.record()
    await h.dispatcher.start()
    await eventually(lambda: len(hook.calls) == 1)
    await h.dispatcher.stop(grace=1)
    assert (await h.one(dep)).status == "delivered"


async def test_an_outcome_the_store_refuses_costs_no_other_its_record(
    harness: MakeHarness,
) -> None:
    """When a group write fails, every outcome is written on its own: only the refused
    one is lost (and sent again once its lease runs out)."""
    hook = Scripted("hook", concurrency=2)
    h = harness(hook, lease=0.3)
    bad, good = await h.record(), await h.record()
    bad_id = (await h.one(bad)).id
    complete = h.store.complete
    refused = 0

    async def refuse_bad(completion: Completion) -> None:
        nonlocal refused
        if completion.delivery_id == bad_id and refused == 0:
            refused += 1
            raise RuntimeError("refused")
        await complete(completion)

    async def fail_groups(completions: Any) -> None:
        raise RuntimeError("group write failed")

    h.store.complete = refuse_bad  # type: ignore[method-assign]
    h.store.complete_many = fail_groups  # type: ignore[method-assign]
    with capture_logs() as logs:
        await h.dispatcher.start()
        assert (await h.until(good, "delivered")).attempts == 1
        assert (await h.one(bad)).status == "pending"
        await asyncio.sleep(0.35)  # its lease runs out
        h.dispatcher.wake()
        assert (await h.until(bad, "delivered")).attempts == 1
    assert [e["delivery_id"] for e in logs if e["event"] == "delivery_not_recorded"] == [bad_id]
    assert len(hook.calls) == 3  # the refused one went again


async def test_a_slow_forwarder_does_not_delay_another(harness: MakeHarness) -> None:
    """While one target takes a second per send, the other's deliveries complete at once."""
    slow = Scripted("slow", *[pause(1.0)] * 5, concurrency=1)
    fast = Scripted("fast")
    h = harness(slow, fast)
    await h.dispatcher.start()
    started = time.monotonic()
    deps = [await h.record() for _ in range(5)]
    for dep in deps:
        await _wait_status(h, dep, "fast", "delivered")
    assert time.monotonic() - started < 0.5
    assert len(slow.calls) == 1  # still busy with the first one


async def _status(h: Harness, dep: str, forwarder: str) -> str | None:
    for d in await h.deliveries(deployment_id=dep):
        if d.forwarder == forwarder:
            return d.status
    return None


def _failing_hook(*failures: RetryLater, concurrency: int) -> Scripted:
    """A "hook" forwarder answering `failures` first (retries due every 10 ms), then success."""
    return Scripted(
        "hook", *failures, concurrency=concurrency, retry={"schedule": ["0.01s"] * 20, "jitter": 0}
    )


async def test_circuit_opens_and_spends_no_attempts_while_open(harness: MakeHarness) -> None:
    """After `threshold` consecutive failures nothing is sent until the cooldown ends."""
    hook = _failing_hook(*[RetryLater("down", status_code=503)] * 50, concurrency=1)
    h = harness(hook, threshold=3, cooldown=60)
    await h.dispatcher.start()
    for _ in range(4):
        await h.record()
    await eventually(lambda: len(hook.calls) >= 3)
    await asyncio.sleep(0.3)  # retries fall due every 10 ms: none may be attempted
    assert len(hook.calls) == 3
    attempts = sum(d.attempts for d in await h.deliveries())
    assert attempts == 3
    (info,) = await h.service.forwarders()
    assert info.state == "circuit-open"
    assert all(d.status == "pending" for d in await h.deliveries())


async def test_half_open_probe_closes_the_circuit(harness: MakeHarness) -> None:
    """After the cooldown one probe goes; its success lets every pending delivery through."""
    hook = _failing_hook(*[RetryLater("down")] * 2, concurrency=4)
    h = harness(hook, threshold=2, cooldown=0.3)
    await h.dispatcher.start()
    # Taken before the failures: the circuit opens after it, so the probe can come no
    # sooner than a cooldown later (polling for the failures would see them late).
    opened = time.monotonic()
    for _ in range(2):
        await h.record()
    await eventually(lambda: len(hook.calls) == 2)
    for _ in range(3):
        await h.record()
    await eventually(lambda: _all_settled(h), timeout=5)
    assert time.monotonic() - opened >= 0.25
    assert len(hook.calls) == 7  # 2 failures, 1 probe, 4 more: no attempt was wasted
    assert all(d.status == "delivered" for d in await h.deliveries())
    (info,) = await h.service.forwarders()
    assert info.state == "active"


async def test_a_skipped_probe_does_not_wedge_the_circuit(harness: MakeHarness) -> None:
    """A probe the forwarder skips (never calling the target) lets the next probe go."""

    async def skip_event_1(event: Event, context: SendContext) -> Any:
        return Skipped("not for this target") if event.data["n"] == 1 else Delivered(200)

    # Event 0 opens the circuit (0.1 s) and retries at 0.3 s: event 1 is the probe.
    hook = Scripted(
        "hook",
        RetryLater("down"),
        otherwise=skip_event_1,
        retry={"schedule": ["0.3s"], "jitter": 0},
    )
    h = harness(hook, threshold=1, cooldown=0.1)
    await h.dispatcher.start()
    failing = await h.record(n=0)
    await eventually(lambda: len(hook.calls) == 1)
    skipped = await h.record(n=1)
    await h.until(skipped, "skipped")
    await h.until(failing, "delivered")


async def test_target_gone_disables_the_forwarder_until_enabled(harness: MakeHarness) -> None:
    """TargetGone (HTTP 410): dead, forwarder disabled durably, the rest waits for enable."""
    hook = Scripted("hook", TargetGone("gone", status_code=410))
    other = Scripted("other")
    h = harness(hook, other)
    await h.dispatcher.start()
    first = await h.record()
    await _wait_status(h, first, "hook", "dead")
    later = await h.record()
    await _wait_status(h, later, "other", "delivered")
    await asyncio.sleep(0.1)
    assert await _status(h, later, "hook") == "pending"
    assert await _status(h, later, "other") == "delivered"
    assert "hook" in await h.store.disabled_forwarders()
    states = {i.name: i.state for i in await h.service.forwarders()}
    assert states == {"hook": "disabled", "other": "active"}

    await h.service.enable("hook", ADMIN)
    assert await _wait_status(h, later, "hook", "delivered") == "delivered"
    assert await h.store.disabled_forwarders() == {}


async def test_a_disable_not_yet_stored_outlives_a_refresh_of_shared_state(
    harness: MakeHarness,
) -> None:
    """While a 410's disable is still being written, the shared state read back from
    the store (which does not have it yet) does not enable the forwarder again: no
    further event is sent to the target that said it is gone."""
    hook = Scripted("hook", TargetGone("gone", status_code=410))
    h = harness(hook)
    written = asyncio.Event()
    store_disabled = h.store.set_disabled

    async def slow_set_disabled(name: str, reason: str | None) -> None:
        await written.wait()
        await store_disabled(name, reason)

    h.store.set_disabled = slow_set_disabled  # type: ignore[method-assign]
    await h.dispatcher.start()
    first = await h.record()
    await _wait_status(h, first, "hook", "dead")
    await adopt_shared_state(h.store, h.dispatcher.targets)  # the store has no disable yet
    later = await h.record()
    await asyncio.sleep(0.2)
    assert len(hook.calls) == 1 and await _status(h, later, "hook") == "pending"
    written.set()
    await eventually(lambda: h.dispatcher.targets["hook"].disabling == 0)
    await adopt_shared_state(h.store, h.dispatcher.targets)
    assert h.dispatcher.targets["hook"].disabled_reason == "gone"


async def test_forwarder_states_are_those_stored_when_another_process_delivers(
    harness: MakeHarness,
) -> None:
    """GET /forwarders in a process that does not deliver (serve --no-dispatch) shows the
    disables and open circuits that the delivering processes stored."""
    h = harness(Scripted("hook"), Scripted("other"), Scripted("third"))  # never started
    await h.store.set_disabled("hook", "gone")
    opened = CircuitSnapshot(failures=5, opened_until=utcnow() + timedelta(minutes=1))
    await h.store.update_circuit("other", lambda _: opened)
    states = {i.name: i.state for i in await h.service.forwarders()}
    assert states == {"hook": "disabled", "other": "circuit-open", "third": "active"}


async def _wait_status(h: Harness, dep: str, forwarder: str, status: str) -> str:
    async def check() -> str | None:
        found = await _status(h, dep, forwarder)
        return found if found == status else None

    return await eventually(check, what=f"{forwarder} {status}")


async def test_a_forwarder_disabled_in_the_store_stays_idle(harness: MakeHarness) -> None:
    """On start the dispatcher loads disabled forwarders and claims none of their work."""
    hook = Scripted("hook")
    h = harness(hook)
    await h.store.set_disabled("hook", "gone")
    dep = await h.record()
    await h.dispatcher.start()
    await asyncio.sleep(0.2)
    assert hook.calls == []
    assert (await h.one(dep)).status == "pending"


async def test_no_busy_loop_while_waiting(harness: MakeHarness) -> None:
    """With sends in flight and a disabled forwarder's work pending, the loop sleeps."""
    slow = Scripted("slow", pause(1.0))
    idle = Scripted("idle")
    h = harness(slow, idle)
    await h.store.set_disabled("idle", "gone")
    await h.record()
    await h.dispatcher.start()
    await eventually(lambda: slow.active == 1)
    before = h.claims
    await asyncio.sleep(0.3)
    # The send in flight and the disabled forwarder's due delivery wake nothing up.
    assert h.claims - before <= 2


async def test_a_claim_outlives_a_slow_send(harness: MakeHarness) -> None:
    """A send longer than the configured lease is never claimed (and sent) a second time."""
    hook = Scripted("hook", pause(0.4), timeout="1s")
    h = harness(hook, lease=0.1)
    await h.dispatcher.start()
    slow = await h.record()
    await eventually(lambda: hook.active == 1)
    await asyncio.sleep(0.15)  # past the configured lease: a new event wakes the loop
    quick = await h.record()
    await h.until(quick, "delivered")
    found = await h.until(slow, "delivered")
    assert len(hook.calls) == 2 and found.attempts == 1


async def test_state_survives_retries_and_shared_state_reaches_later_events(
    harness: MakeHarness,
) -> None:
    """Per-delivery `state` is kept across retries; `shared` is seen by the next event."""

    async def first_try(event: Event, context: SendContext) -> Any:
        context.state["step"] = "release-created"
        context.shared["release_id"] = 42
        raise RetryLater("deploy step failed")

    async def second_try(event: Event, context: SendContext) -> Any:
        assert context.state == {"step": "release-created"}
        return Delivered(201)

    async def next_event(event: Event, context: SendContext) -> Any:
        assert context.state == {}
        assert context.shared == {"release_id": 42}
        return Delivered(200)

    hook = Scripted("hook", first_try, second_try, next_event)
    h = harness(hook)
    record = make_record(created_at=utcnow())
    await h.record(record=record, n=0)
    await h.record(record=record, n=1)
    await h.dispatcher.start()
    await eventually(lambda: _all_settled(h))
    assert [d.status for d in await h.deliveries(deployment_id=record.id)] == [
        "delivered",
        "delivered",
    ]


async def test_stop_finishes_sends_and_frees_leases(harness: MakeHarness) -> None:
    """stop() lets sends finish within the grace period; unfinished ones are released."""
    hook = Scripted("hook", pause(10))
    h = harness(hook)
    await h.dispatcher.start()
    dep = await h.record()
    await eventually(lambda: hook.active == 1)
    await h.dispatcher.stop(grace=0.05)
    (row,) = h.store.rows.values()
    assert row.owner is None and row.locked_until is None
    assert (await h.one(dep)).status == "pending"  # claimable again by the next process


async def test_stop_sends_nothing_that_waited_and_frees_it(harness: MakeHarness) -> None:
    """Deliveries claimed ahead of a free slot are not sent once stop() has begun: the
    send in flight finishes, the others are pending and free for the next process."""
    hook = Scripted("hook", pause(0.2), concurrency=1)
    h = harness(hook)
    for _ in range(3):
        await h.record()
    await h.dispatcher.start()
    await eventually(lambda: hook.active == 1)
    await h.dispatcher.stop(grace=5)
    assert len(hook.calls) == 1
    rows = list(h.store.rows.values())
    assert all(r.owner is None and r.locked_until is None for r in rows)
    assert sorted(r.status for r in rows) == ["delivered", "pending", "pending"]


@pytest.mark.parametrize("yields", range(4))
async def test_stop_ends_the_loop_even_when_woken_at_that_moment(
    harness: MakeHarness, yields: int
) -> None:
    """A wake-up racing with stop() (a send just finished) never keeps the loop alive."""
    h = harness(Scripted("hook"))
    await h.dispatcher.start()
    await asyncio.sleep(0.01)
    h.dispatcher.wake()
    for _ in range(yields):
        await asyncio.sleep(0)
    started = time.monotonic()
    async with asyncio.timeout(3):
        await h.dispatcher.stop(grace=0.1)
    assert time.monotonic() - started < 1


async def test_retry_now_during_a_send_does_not_send_twice_at_once(harness: MakeHarness) -> None:
    """Asking to retry a delivery whose send is in flight never starts a second, parallel send."""
    hook = Scripted("hook", pause(0.3))
    h = harness(hook)
    await h.dispatcher.start()
    dep = await h.record()
    await eventually(lambda: hook.active == 1)
    await h.service.retry((await h.one(dep)).id, ADMIN)
    await asyncio.sleep(0.1)
    assert len(hook.calls) == 1 and hook.max_active == 1
    found = await h.until(dep, "delivered")
    assert found.attempts == 1


async def test_a_deployments_deliveries_are_listed_whole(harness: MakeHarness) -> None:
    """A deployment with more deliveries than a search page (100) lists every one."""
    h = harness()
    record = make_record(created_at=utcnow())
    names = tuple(f"hook{i}" for i in range(120))
    await h.store.record(make_command(record, forwarders=names))
    assert len(await h.service.of_deployment(record.id)) == 120


async def test_a_search_by_a_component_limited_token_fills_its_page(harness: MakeHarness) -> None:
    """A token that may read only `web` gets a full page of web's deliveries, however many
    newer deliveries of components it may not see there are."""
    h = harness()
    start = utcnow()
    for i in range(3):
        record = make_record("web", f"w{i}", created_at=start + timedelta(seconds=i))
        await h.store.record(make_command(record, forwarders=("hook",)))
    for i in range(10):
        record = make_record("api", f"a{i}", created_at=start + timedelta(seconds=10 + i))
        await h.store.record(make_command(record, forwarders=("hook",)))
    web = Principal(name="web-ci", scopes=frozenset({"events:read"}), components=("web",))
    found = await h.service.search(DeliveryQuery(limit=2), web)
    assert [d.component for d in found] == ["web", "web"]
