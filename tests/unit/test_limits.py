"""Unit tests of the abuse-limit logic (token bucket, per-client counter)."""

from __future__ import annotations

from relay.api.limits import ConnectionCounter, RateLimiter, retry_after


def test_burst_is_allowed_then_refused() -> None:
    """A token may send `burst` requests at once; the next one must wait."""
    limiter = RateLimiter(rate=10, burst=3)
    assert [limiter.take("ci", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("ci", 0.0) > 0


def test_tokens_come_back_at_the_rate() -> None:
    """After 1/rate seconds one more request is allowed, and the wait shrinks meanwhile."""
    limiter = RateLimiter(rate=2, burst=1)
    assert limiter.take("ci", 0.0) == 0.0
    assert limiter.take("ci", 0.0) == 0.5
    assert limiter.take("ci", 0.25) == 0.25
    assert limiter.take("ci", 0.5) == 0.0


def test_tokens_are_limited_separately() -> None:
    """One token over its limit does not slow another."""
    limiter = RateLimiter(rate=1, burst=1)
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0
    assert limiter.take("b", 0.0) == 0.0


def test_refill_never_exceeds_burst() -> None:
    """A long idle time gives back at most `burst` requests."""
    limiter = RateLimiter(rate=100, burst=2)
    limiter.take("ci", 0.0)
    assert [limiter.take("ci", 1000.0) == 0.0 for _ in range(3)] == [True, True, False]


def test_zero_rate_disables_the_limit() -> None:
    """`requests_per_second = 0` lets every request through."""
    limiter = RateLimiter(rate=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.take("ci", 0.0) == 0.0 for _ in range(1000))


def test_idle_buckets_are_forgotten() -> None:
    """Buckets of tokens idle for a full refill period are dropped (bounded memory)."""
    limiter = RateLimiter(rate=10, burst=10)
    for i in range(100):
        limiter.take(f"t{i}", 0.0)
    limiter.take("late", 5.0)
    assert len(limiter) == 1


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    """`Retry-After` rounds up and never says 0."""
    assert retry_after(0.01) == 1
    assert retry_after(1.0) == 1
    assert retry_after(1.2) == 2


def test_connection_cap_per_client() -> None:
    """Past the cap a client is refused until one of its requests ends; others are not."""
    counter = ConnectionCounter(limit=2)
    assert counter.acquire("10.0.0.1") and counter.acquire("10.0.0.1")
    assert not counter.acquire("10.0.0.1")
    assert counter.acquire("10.0.0.2")
    counter.release("10.0.0.1")
    assert counter.acquire("10.0.0.1")
    assert counter.open_for("10.0.0.1") == 2


def test_released_clients_leave_no_entry() -> None:
    """A client with nothing in progress is not remembered."""
    counter = ConnectionCounter(limit=0)
    assert all(counter.acquire("c") for _ in range(500))
    for _ in range(500):
        counter.release("c")
    assert counter.open_for("c") == 0 and not counter._open
