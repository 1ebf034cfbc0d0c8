"""The retry policy as pure functions: when to try again (relay.delivery.retry.next_attempt), when a
target asked to be called again (forwarders.base.retry_at), and how an answer is
classified (forwarders.base.check_response)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest

from forwarders.base import (
    DEFAULT_SCHEDULE,
    PermanentFailure,
    RetryConfig,
    RetryLater,
    check_response,
    retry_at,
)
from relay.delivery.http import HttpResponse
from relay.delivery.retry import MAX_REQUESTED_DELAY, next_attempt
from relay.timeutil import parse_duration

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def exact(*schedule: str) -> RetryConfig:
    """A schedule without jitter."""
    return RetryConfig.model_validate({"schedule": list(schedule), "jitter": 0})


# -- next_attempt ------------------------------------------------------------------------

DEFAULT_STEPS = [
    (1, 5),
    (2, 5 * 60),
    (3, 30 * 60),
    (4, 2 * 3600),
    (5, 5 * 3600),
    (6, 10 * 3600),
    (7, 14 * 3600),
    (8, 20 * 3600),
    (9, 24 * 3600),
]


@pytest.mark.parametrize(("attempts_made", "nominal"), DEFAULT_STEPS)
def test_default_schedule_step_is_within_twenty_percent(attempts_made: int, nominal: int) -> None:
    """After the n-th failed attempt the default policy waits its n-th delay, ±20 %."""
    config = RetryConfig()
    delays = [
        (next_attempt(config, attempts_made, NOW).at - NOW).total_seconds()  # type: ignore[operator]
        for _ in range(200)
    ]
    assert all(0.8 * nominal <= d <= 1.2 * nominal for d in delays)
    # The jitter really spreads retries on both sides of the nominal delay.
    assert min(delays) < nominal < max(delays)


def test_default_schedule_is_the_documented_one() -> None:
    """The default is 5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h with 20 % jitter."""
    config = RetryConfig()
    assert config.schedule == [float(n) for _, n in DEFAULT_STEPS]
    assert [parse_duration(s) for s in DEFAULT_SCHEDULE] == config.schedule
    assert config.jitter == 0.2


@pytest.mark.parametrize("attempts_made", [10, 11, 50])
def test_dead_after_the_last_step_of_the_default_schedule(attempts_made: int) -> None:
    """Once every step is used (1 try + 9 retries), the delivery is given up."""
    decision = next_attempt(RetryConfig(), attempts_made, NOW)
    assert decision.dead and decision.at is None
    assert str(attempts_made) in decision.reason


@pytest.mark.parametrize(
    ("schedule", "attempts_made", "expected"),
    [
        (["0.2s", "0.2s"], 1, NOW + 0.2 * S),
        (["0.2s", "0.2s"], 2, NOW + 0.2 * S),
        (["0.2s", "0.2s"], 3, None),
        (["1s", "1m", "1h"], 2, NOW + 60 * S),
        (["1s", "1m", "1h"], 3, NOW + 3600 * S),
        (["1s", "1m", "1h"], 4, None),
        ([], 1, None),
    ],
)
def test_custom_schedule_without_jitter_is_exact(
    schedule: list[str], attempts_made: int, expected: datetime | None
) -> None:
    """A configured schedule is followed to the millisecond when jitter is 0."""
    assert next_attempt(exact(*schedule), attempts_made, NOW).at == expected


@pytest.mark.parametrize(
    ("requested", "expected", "why"),
    [
        (NOW + 60 * S, NOW + 60 * S, "later than the schedule: the target wins"),
        (NOW + 2 * S, NOW + 5 * S, "earlier than the schedule: the schedule wins"),
        (NOW - 60 * S, NOW + 5 * S, "in the past: the schedule wins"),
        (NOW + timedelta(hours=48), NOW + MAX_REQUESTED_DELAY, "capped at 24 h"),
        (NOW + timedelta(days=3650), NOW + timedelta(hours=24), "capped at 24 h"),
        (None, NOW + 5 * S, "no wish: the schedule"),
    ],
)
def test_retry_after_later_than_the_schedule_wins_capped_at_a_day(
    requested: datetime | None, expected: datetime, why: str
) -> None:
    """The time the target asked for is honoured when later than the schedule, up to 24 h."""
    decision = next_attempt(exact("5s", "5m"), 1, NOW, requested)
    assert decision.at == expected, why
    assert not decision.dead


def test_retry_after_does_not_extend_an_exhausted_schedule() -> None:
    """A target asking for later cannot keep a delivery alive past its last step."""
    assert next_attempt(exact("5s"), 2, NOW, NOW + 60 * S).dead


def test_max_requested_delay_is_a_day() -> None:
    """The cap on a target's wish is 24 hours."""
    assert timedelta(hours=24) == MAX_REQUESTED_DELAY


# -- retry_at ----------------------------------------------------------------------------

RESET_EPOCH = NOW + 90 * S
HTTP_DATE = email.utils.format_datetime(NOW + 120 * S, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, NOW + 2 * S),
        ({"Retry-After": "120"}, NOW + 120 * S),
        ({"Retry-After": " 30 "}, NOW + 30 * S),
        ({"retry-after": "7"}, NOW + 7 * S),
        ({"Retry-After": "0"}, NOW),
        ({"Retry-After": HTTP_DATE}, NOW + 120 * S),
        ({"Retry-After": "Wed, 01 May 2024 14:00:00 +0200"}, NOW),
        ({"X-Sentry-Rate-Limit-Reset": str(RESET_EPOCH.timestamp())}, RESET_EPOCH),
        ({"X-Sentry-Rate-Limit-Reset": "1714564860"}, NOW + 60 * S),
        ({"Retry-After": "10", "X-Sentry-Rate-Limit-Reset": "1714564860"}, NOW + 60 * S),
        ({"Retry-After": "100", "X-Sentry-Rate-Limit-Reset": "1714564860"}, NOW + 100 * S),
        ({"Retry-After": "soon", "X-Sentry-Rate-Limit-Reset": "1714564860"}, NOW + 60 * S),
        ({}, None),
    ],
)
def test_retry_at_reads_the_targets_wish(headers: dict[str, str], expected: datetime) -> None:
    """Retry-After (seconds or HTTP date) and X-Sentry-Rate-Limit-Reset; the later wins."""
    assert retry_at(HttpResponse(429, headers), NOW) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "soon"},
        {"Retry-After": ""},
        {"Retry-After": "-5"},
        {"Retry-After": "1.5s"},
        {"Retry-After": "Mon, 99 Foo 2020 99:99:99 GMT"},
        {"Retry-After": "\x00\xff"},
        {"X-Sentry-Rate-Limit-Reset": "tomorrow"},
        {"X-Sentry-Rate-Limit-Reset": "nan"},
        {"X-Sentry-Rate-Limit-Reset": "inf"},
        {"X-Sentry-Rate-Limit-Reset": "1e300"},
        {"X-Sentry-Rate-Limit-Reset": ""},
    ],
)
def test_retry_at_ignores_garbage(headers: dict[str, str]) -> None:
    """A header relay cannot read is ignored: the schedule decides."""
    assert retry_at(HttpResponse(503, headers), NOW) is None


def test_retry_at_survives_an_absurd_retry_after() -> None:
    """A Retry-After of billions of seconds does not crash the classification."""
    assert retry_at(HttpResponse(429, {"Retry-After": "99999999999999"}), NOW) is not None


# -- check_response ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    """Any 2xx answer means the target took the event."""
    assert check_response(HttpResponse(status), NOW) is None


@pytest.mark.parametrize("status", [408, 429, 500, 501, 502, 503, 504, 507, 520, 599])
def test_408_429_and_5xx_are_retried(status: int) -> None:
    """Timeouts, rate limits and server errors are transient: retry later."""
    response = HttpResponse(status, {"Retry-After": "3"}, b'{"error": "busy"}')
    with pytest.raises(RetryLater) as info:
        check_response(response, NOW, what="grafana")
    assert type(info.value) is RetryLater
    assert info.value.status_code == status
    assert info.value.excerpt == '{"error": "busy"}'
    assert info.value.at == NOW + 3 * S
    assert f"grafana answered HTTP {status}" in info.value.reason


@pytest.mark.parametrize("status", [300, 301, 302, 303, 304, 307, 308])
def test_3xx_is_a_permanent_failure(status: int) -> None:
    """Redirects are never followed: the configuration must be fixed."""
    with pytest.raises(PermanentFailure) as info:
        check_response(HttpResponse(status, {"Location": "https://elsewhere/"}), NOW)
    assert info.value.status_code == status
    assert "redirect" in info.value.reason


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 410, 413, 415, 422])
def test_other_4xx_is_a_permanent_failure(status: int) -> None:
    """A client error will not go away by retrying: dead at once, with the excerpt."""
    with pytest.raises(PermanentFailure) as info:
        check_response(HttpResponse(status, {}, b'{"message": "invalid field"}'), NOW)
    assert not isinstance(info.value, RetryLater)
    assert info.value.status_code == status
    assert info.value.excerpt == '{"message": "invalid field"}'


def test_a_forwarder_may_retry_more_statuses() -> None:
    """A target-specific retry set (e.g. 409 while a release is being created) is honoured."""
    with pytest.raises(RetryLater):
        check_response(HttpResponse(409), NOW, retry_statuses=frozenset({409}))


def test_the_excerpt_is_bounded() -> None:
    """Only the start of a huge error page is kept with the attempt."""
    with pytest.raises(PermanentFailure) as info:
        check_response(HttpResponse(400, {}, b"x" * 100_000), NOW)
    assert len(info.value.excerpt) == 2048
