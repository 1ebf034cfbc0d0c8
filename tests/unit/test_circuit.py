"""The per-forwarder circuit breaker (relay/delivery/circuit.py) as a table of transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from relay.delivery.circuit import CircuitBreaker, CircuitSnapshot

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
FREE = 4  # free concurrency slots offered to `allowance`

# One step: (operation, at second, state after, deliveries allowed after).
# Operations: fail (transient failure), ok (the target answered), claim (a delivery was
# claimed), skip (the forwarder did not call the target), look (nothing happens).
Step = tuple[str, float, str, int]
OPEN_AT_0: list[Step] = [
    ("fail", 0, "closed", FREE),
    ("fail", 0, "closed", FREE),
    ("fail", 0, "open", 0),
]
TRANSITIONS: dict[str, list[Step]] = {
    "closed while failures stay under the threshold": [
        ("fail", 0, "closed", FREE),
        ("fail", 1, "closed", FREE),
    ],
    "opens after threshold consecutive failures": OPEN_AT_0,
    "a success resets the count of consecutive failures": [
        ("fail", 0, "closed", FREE),
        ("fail", 0, "closed", FREE),
        ("ok", 0, "closed", FREE),
        ("fail", 0, "closed", FREE),
        ("fail", 0, "closed", FREE),
    ],
    "stays open, allowing nothing, for the cooldown": [
        *OPEN_AT_0,
        ("look", 5, "open", 0),
        ("look", 9.999, "open", 0),
    ],
    "half-open after the cooldown lets exactly one probe through": [
        *OPEN_AT_0,
        ("look", 10, "half-open", 1),
        ("claim", 10, "half-open", 0),
        ("look", 15, "half-open", 0),
    ],
    "a successful probe closes the circuit": [
        *OPEN_AT_0,
        ("claim", 10, "half-open", 0),
        ("ok", 11, "closed", FREE),
        ("fail", 12, "closed", FREE),
    ],
    "a failed probe re-opens it for twice as long": [
        *OPEN_AT_0,
        ("claim", 10, "half-open", 0),
        ("fail", 11, "open", 0),
        ("look", 30.9, "open", 0),
        ("look", 31, "half-open", 1),
    ],
    "the cooldown doubles up to its maximum": [
        *OPEN_AT_0,
        ("claim", 10, "half-open", 0),
        ("fail", 10, "open", 0),  # 20 s
        ("claim", 30, "half-open", 0),
        ("fail", 30, "open", 0),  # 40 s, capped at 35 s
        ("look", 64.9, "open", 0),
        ("look", 65, "half-open", 1),
    ],
    "failures of sends already in flight do not extend an open circuit": [
        *OPEN_AT_0,
        ("fail", 5, "open", 0),
        ("fail", 9, "open", 0),
        ("look", 10, "half-open", 1),
    ],
    "a permanent failure is an answer: it closes the circuit too": [
        *OPEN_AT_0,
        ("claim", 10, "half-open", 0),
        ("ok", 10, "closed", FREE),
    ],
    "a skipped probe lets another probe go": [
        *OPEN_AT_0,
        ("claim", 10, "half-open", 0),
        ("skip", 10, "half-open", 1),
        ("claim", 10, "half-open", 0),
        ("ok", 10, "closed", FREE),
    ],
}


@pytest.mark.parametrize("steps", TRANSITIONS.values(), ids=list(TRANSITIONS))
def test_transitions(steps: list[Step]) -> None:
    """Each step leaves the breaker in the expected state with the expected allowance."""
    breaker = CircuitBreaker(
        threshold=3, cooldown=timedelta(seconds=10), max_cooldown=timedelta(seconds=35)
    )
    for i, (op, second, state, allowed) in enumerate(steps):
        now = T0 + timedelta(seconds=second)
        if op == "fail":
            breaker.on_failure(now)
        elif op == "ok":
            breaker.on_success()
        elif op == "claim":
            breaker.on_claimed(now)
        elif op == "skip":
            breaker.on_skipped()
        where = f"step {i} ({op} at {second}s)"
        assert breaker.state(now) == state, where
        assert breaker.allowance(now, FREE) == allowed, where


@pytest.mark.parametrize(
    ("failures", "opened"),
    [(1, [False]), (3, [False, False, True]), (5, [False, False, True, False, False])],
)
def test_on_failure_says_when_it_opened_the_circuit(failures: int, opened: list[bool]) -> None:
    """Only the failure that crosses the threshold reports opening (for one log line)."""
    breaker = CircuitBreaker(threshold=3)
    assert [breaker.on_failure(T0) for _ in range(failures)] == opened


def test_half_open_with_no_free_slot_allows_nothing() -> None:
    """A probe still needs a free concurrency slot."""
    breaker = CircuitBreaker(threshold=1, cooldown=timedelta(seconds=1))
    breaker.on_failure(T0)
    later = T0 + timedelta(seconds=2)
    assert breaker.state(later) == "half-open"
    assert breaker.allowance(later, 0) == 0
    assert breaker.allowance(later, 8) == 1


def test_defaults_open_after_five_failures_for_thirty_seconds() -> None:
    """Without configuration: threshold 5, cooldown 30 s."""
    breaker = CircuitBreaker()
    for _ in range(5):
        breaker.on_failure(T0)
    assert breaker.opened_until == T0 + timedelta(seconds=30)


def test_moved_applies_the_rules_to_shared_state_and_leaves_the_breaker_alone() -> None:
    """Another instance's failure count is continued: the shared state opens the circuit
    at the threshold, and the breaker itself only changes when it adopts the result."""
    breaker = CircuitBreaker(threshold=3, cooldown=timedelta(seconds=30))
    shared = CircuitSnapshot(failures=2)
    moved, opened = breaker.moved(shared, "failure", T0)
    assert opened is True
    assert moved == CircuitSnapshot(3, T0 + timedelta(seconds=30), timedelta(seconds=30))
    assert breaker.snapshot() == CircuitSnapshot()
    breaker.restore(moved)
    assert breaker.state(T0) == "open"
    closed, opened = breaker.moved(moved, "success", T0)
    assert (closed, opened) == (CircuitSnapshot(), False)


def test_a_failed_probe_doubles_the_shared_cooldown() -> None:
    """This instance's failed probe re-opens the shared circuit for twice as long."""
    breaker = CircuitBreaker(threshold=1, cooldown=timedelta(seconds=30))
    shared = CircuitSnapshot(1, T0, timedelta(seconds=30))
    breaker.restore(shared)
    breaker.on_claimed(T0)  # half-open: this instance sends the probe
    moved, opened = breaker.moved(shared, "failure", T0)
    assert opened is True and moved.cooldown == timedelta(seconds=60)
    assert moved.opened_until == T0 + timedelta(seconds=60)


def test_failed_probes_never_wait_longer_than_the_cap() -> None:
    """Each failed probe doubles the wait, up to max_cooldown and no further."""
    breaker = CircuitBreaker(
        threshold=1, cooldown=timedelta(seconds=10), max_cooldown=timedelta(seconds=60)
    )
    now = T0
    breaker.on_failure(now)
    waits = []
    for _ in range(6):
        assert breaker.opened_until is not None
        waits.append((breaker.opened_until - now).total_seconds())
        now = breaker.opened_until
        breaker.on_claimed(now)
        breaker.on_failure(now)
    assert waits == [10, 20, 40, 60, 60, 60]


def test_a_cooldown_longer_than_the_cap_is_capped_from_the_first_opening() -> None:
    """The cap also bounds the first open period."""
    breaker = CircuitBreaker(
        threshold=1, cooldown=timedelta(seconds=300), max_cooldown=timedelta(seconds=60)
    )
    breaker.on_failure(T0)
    assert breaker.opened_until == T0 + timedelta(seconds=60)


def test_resume_closes_an_open_circuit_and_forgets_the_probe() -> None:
    """An operator's resume closes the circuit at once: every free slot may claim."""
    breaker = CircuitBreaker(threshold=1, cooldown=timedelta(seconds=10))
    breaker.on_failure(T0)
    later = T0 + timedelta(seconds=11)
    breaker.on_claimed(later)
    assert breaker.allowance(later, FREE) == 0
    breaker.resume()
    assert breaker.state(later) == "closed"
    assert breaker.allowance(later, FREE) == FREE
