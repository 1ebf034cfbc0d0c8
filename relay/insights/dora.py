"""The four DORA keys: performance bands and the answer of `GET /insights/dora`.

The bands are those of the 2023 Accelerate State of DevOps Report (DORA, Google Cloud)
performance clusters, read as thresholds between neighbouring clusters:

| key | elite | high | medium | low |
|---|---|---|---|---|
| deployment frequency | ≥ 1 a day (on demand) | ≥ 1 a week | ≥ 1 a month | less |
| change lead time (median) | < 1 day | ≤ 1 week | ≤ 1 month | more |
| change failure rate | ≤ 5 % | ≤ 10 % | ≤ 15 % | more |
| failed deployment recovery time (median) | < 1 hour | < 1 day | ≤ 1 week | more |

What the figures rest on is computed by the store (relay/store/insights_base.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from relay.store.insights_base import DoraFigures
from relay.timeutil import format_wire

Band = Literal["elite", "high", "medium", "low"]
DAY = 86400.0
WEEK = 7 * DAY
MONTH = 30 * DAY


def frequency_band(per_day: float) -> Band:
    """Deployment frequency: on demand (daily or more), weekly, monthly, less."""
    if per_day >= 1:
        return "elite"
    if per_day * 7 >= 1:
        return "high"
    return "medium" if per_day * 30 >= 1 else "low"


def lead_time_band(seconds: float) -> Band:
    """Change lead time (median, commit → successful deployment)."""
    if seconds < DAY:
        return "elite"
    if seconds <= WEEK:
        return "high"
    return "medium" if seconds <= MONTH else "low"


def failure_rate_band(rate: float) -> Band:
    """Change failure rate."""
    if rate <= 0.05:
        return "elite"
    if rate <= 0.10:
        return "high"
    return "medium" if rate <= 0.15 else "low"


def recovery_band(seconds: float) -> Band:
    """Failed deployment recovery time (median)."""
    if seconds < 3600:
        return "elite"
    if seconds < DAY:
        return "high"
    return "medium" if seconds <= WEEK else "low"


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


def dora_answer(
    figures: DoraFigures, component: str | None, stage: str, until: datetime, days: int
) -> dict[str, Any]:
    """The answer of `GET /insights/dora`; a figure with nothing to rest on is null with
    its count 0."""
    f = figures
    per_day = f.successes / days if f.total else None
    rate = f.failed / f.total if f.total else None
    return {
        "component": component,
        "stage": stage,
        "window": {
            "since": format_wire(until - timedelta(days=days)),
            "until": format_wire(until),
            "days": days,
        },
        "deployment_frequency": {
            "count": f.successes,
            "per_day": None if per_day is None else round(per_day, 3),
            "per_week": None if per_day is None else round(per_day * 7, 3),
            "band": None if per_day is None else frequency_band(per_day),
        },
        "lead_time": {
            "count": f.lead_count,
            "median_seconds": _seconds(f.lead_median),
            "p90_seconds": _seconds(f.lead_p90),
            "band": None if f.lead_median is None else lead_time_band(f.lead_median),
        },
        "change_failure_rate": {
            "total": f.total,
            "failed": f.failed,
            "rate": None if rate is None else round(rate, 3),
            "band": None if rate is None else failure_rate_band(rate),
        },
        "recovery_time": {
            "count": f.recovery_count,
            "median_seconds": _seconds(f.recovery_median),
            "band": None if f.recovery_median is None else recovery_band(f.recovery_median),
        },
    }
