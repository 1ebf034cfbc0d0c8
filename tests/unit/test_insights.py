"""Pure parts of deploy insights: DORA bands at their boundaries, the answer's shape,
badge texts and keys (relay/insights/dora.py, badges.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from relay.insights.badges import (
    BadgeSpec,
    badge_key,
    deployment_badge,
    entity_tag,
    is_public,
    key_opens,
    not_modified,
)
from relay.insights.dora import (
    dora_answer,
    failure_rate_band,
    frequency_band,
    lead_time_band,
    recovery_band,
)
from relay.models import Status
from relay.store.insights_base import DoraFigures, median, p90
from tests.support import make_record

DAY, WEEK = 86400, 7 * 86400


@pytest.mark.parametrize(
    ("per_day", "band"),
    [
        (3, "elite"),
        (1, "elite"),
        (0.99, "high"),
        (1 / 7, "high"),
        (0.1, "medium"),
        (1 / 30, "medium"),
        (0.03, "low"),
        (0, "low"),
    ],
)
def test_deployment_frequency_bands(per_day: float, band: str) -> None:
    """Daily or more is elite, weekly high, monthly medium, less low."""
    assert frequency_band(per_day) == band


@pytest.mark.parametrize(
    ("seconds", "band"),
    [
        (3600, "elite"),
        (DAY - 1, "elite"),
        (DAY, "high"),
        (WEEK, "high"),
        (WEEK + 1, "medium"),
        (30 * DAY, "medium"),
        (30 * DAY + 1, "low"),
    ],
)
def test_lead_time_bands(seconds: float, band: str) -> None:
    """Under a day elite, a week high, a month medium, longer low."""
    assert lead_time_band(seconds) == band


@pytest.mark.parametrize(
    ("rate", "band"),
    [
        (0, "elite"),
        (0.05, "elite"),
        (0.051, "high"),
        (0.10, "high"),
        (0.15, "medium"),
        (0.151, "low"),
        (1, "low"),
    ],
)
def test_change_failure_rate_bands(rate: float, band: str) -> None:
    """5 % elite, 10 % high, 15 % medium, more low."""
    assert failure_rate_band(rate) == band


@pytest.mark.parametrize(
    ("seconds", "band"),
    [
        (60, "elite"),
        (3599, "elite"),
        (3600, "high"),
        (DAY - 1, "high"),
        (DAY, "medium"),
        (WEEK, "medium"),
        (WEEK + 1, "low"),
    ],
)
def test_recovery_time_bands(seconds: float, band: str) -> None:
    """Under an hour elite, a day high, a week medium, longer low."""
    assert recovery_band(seconds) == band


def test_median_and_p90_follow_the_documented_rules() -> None:
    """Median: the middle (mean of two when even); p90: nearest rank."""
    assert (median([]), p90([])) == (None, None)
    assert median([5.0, 1.0, 3.0]) == 3.0
    assert median([600.0, 3600.0, 7200.0, 86400.0]) == 5400.0
    assert p90([600.0, 3600.0, 7200.0, 86400.0]) == 86400.0
    assert p90([float(i) for i in range(1, 11)]) == 9.0


def test_the_dora_answer_has_the_issue_shape() -> None:
    """Keys, rounding and window as documented; an example near the issue's."""
    figures = DoraFigures(None, "production", 36, 36, 3, 30, 5400.4, 86400.0, 3, 1800.0)
    until = datetime(2026, 3, 31, tzinfo=UTC)
    answer = dora_answer(figures, "web", "production", until, 30)
    assert answer == {
        "component": "web",
        "stage": "production",
        "window": {
            "since": "2026-03-01T00:00:00.000Z",
            "until": "2026-03-31T00:00:00.000Z",
            "days": 30,
        },
        "deployment_frequency": {"count": 36, "per_day": 1.2, "per_week": 8.4, "band": "elite"},
        "lead_time": {"count": 30, "median_seconds": 5400, "p90_seconds": 86400, "band": "elite"},
        "change_failure_rate": {"total": 36, "failed": 3, "rate": 0.083, "band": "high"},
        "recovery_time": {"count": 3, "median_seconds": 1800, "band": "elite"},
    }


def test_badge_keys_are_per_component_and_per_secret() -> None:
    """A key opens its component only, and only under the secret it came from."""
    key = badge_key("s1", "web")
    assert key_opens("s1", "web", key)
    assert not key_opens("s1", "api", key)
    assert not key_opens("s2", "web", key)
    assert len(key) == 32 and key != badge_key("s1", "api")


def test_public_globs_and_etags() -> None:
    """Globs match whole names; If-None-Match lists and weak tags are understood."""
    assert is_public("web-app", ("web-*",)) and not is_public("api", ("web-*",))
    assert not is_public("web-app", ())
    tag = entity_tag(b"x")
    assert not_modified(f'"other", W/{tag}', tag)
    assert not_modified("*", tag)
    assert not not_modified(None, tag) and not not_modified('"other"', tag)


def test_a_failed_first_deployment_has_no_live_version_in_its_badge() -> None:
    """Nothing live yet: the badge says only what failed."""
    failed = make_record("web", "1.0", status=Status.BUILD_ERROR)
    assert deployment_badge(failed, None, "prod") == BadgeSpec("prod", "1.0 failed", "failure")


async def test_a_scrape_reads_deployments_with_and_without_a_stage() -> None:
    """Pairs with no stage (label "") and with one are exported side by side."""
    from relay.insights.deployment_metrics import MetricsConfig, take_snapshot
    from relay.store.memory.store import MemoryStore
    from tests.support import make_command

    store = MemoryStore()
    for stage in (None, "prod"):
        await store.record(make_command(make_record("web", "1", stage=stage)))
    snap = await take_snapshot(store, MetricsConfig(), datetime.now(UTC))
    assert snap.live == {("web", ""): "1", ("web", "prod"): "1"}


def test_a_configured_badge_secret_is_redacted_from_logs() -> None:
    """badges.secret is among the values log redaction hides."""
    from relay.settings import build_settings

    settings = build_settings({"badges": {"secret": "badge-secret-value-123"}})
    assert "badge-secret-value-123" in settings.secrets()


@pytest.mark.parametrize("secret", ["hunter2", "fifteen-chars-x", ""])
def test_a_badge_secret_too_short_to_resist_guessing_is_refused(secret: str) -> None:
    """Badge keys are public (in README files) and each is an HMAC under the secret: a
    short secret could be found from one key offline, and with it every component's key."""
    from relay.errors import ConfigError
    from relay.settings import build_settings

    with pytest.raises(ConfigError) as raised:
        build_settings({"badges": {"secret": secret}})
    message = str(raised.value.details)
    assert "badges.secret" in message and "16 characters" in message
    assert not secret or secret not in message
    assert build_settings({"badges": {"secret": "s" * 16}}).badges.secret is not None
