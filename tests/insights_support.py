"""A hand-built deployment history sent over HTTP, and what DORA and /metrics must say
about it (the same history as tests/insights_contract.py, relative to now)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from relay.timeutil import format_wire

H = timedelta(hours=1)
Post = Callable[[str, dict[str, Any]], Awaitable[None]]


def _at(when: datetime) -> str:
    return format_wire(when)


async def post_history(post: Post, base: datetime) -> None:
    """Send the history, oldest first (rollback facts are decided in arrival order).

    web/production, in a 30-day window ending after `base` + 101 h: 8 successes, 3
    failures and a rolled-back success (4 failed of 11), lead times 7200, 3600, 86400 and
    600 s, recoveries 1800, 10800, 7200 and 3600 s; before the window one success and one
    failure; a cancelled and an in-progress deployment; api/production one success (lead
    100 s); web/staging one failure. Two deployments have durations: 45 s and 400 s."""
    old = base - timedelta(days=40)

    def body(version: str, at: datetime, **more: Any) -> dict[str, Any]:
        lead = more.pop("lead", None)
        took = more.pop("took", None)
        out: dict[str, Any] = {"version": version, "stage": "production", **more}
        if more.get("status") is None:
            out["finished_at"] = _at(at)
        if lead is not None:
            out["committed_at"] = _at(at - lead)
        out["started_at"] = _at(at - (took or timedelta(0)))
        return out

    steps: list[tuple[str, dict[str, Any]]] = [
        ("web", body("v0", old, lead=H)),
        ("web", body("v0b", old + H, result="failure")),
        ("web", body("v1", base + H, lead=2 * H, took=timedelta(seconds=45))),
        ("web", body("v2", base + 5 * H, result="failure")),
        ("web", body("v2", base + 5.5 * H, lead=H, took=timedelta(seconds=400))),
        ("web", body("v4", base + 24 * H)),
        ("web", body("v5", base + 48 * H, lead=24 * H)),
        ("web", body("v6", base + 72 * H, result="crashed-error")),
        ("web", body("v7", base + 73 * H, result="timeout-error")),
        ("web", body("v8", base + 75 * H, lead=timedelta(seconds=600))),
        ("web", body("v9", base + 80 * H, result="aborted")),
        ("web", body("v9b", base + 81 * H, status="building")),
        ("web", body("v10", base + 96 * H)),
        ("web", body("v11", base + 100 * H)),
        ("web", body("v10", base + 101 * H)),  # a rollback: v11 is reverted
        ("api", body("a1", base + 10 * H, lead=timedelta(seconds=100))),
        ("web", body("s1", base + 3 * H, result="failure", stage="staging")),
    ]
    for component, data in steps:
        await post(component, data)


WEB_DORA: dict[str, Any] = {
    "component": "web",
    "stage": "production",
    "deployment_frequency": {"count": 8, "per_day": 0.267, "per_week": 1.867, "band": "high"},
    "lead_time": {"count": 4, "median_seconds": 5400, "p90_seconds": 86400, "band": "elite"},
    "change_failure_rate": {"total": 11, "failed": 4, "rate": 0.364, "band": "low"},
    "recovery_time": {"count": 4, "median_seconds": 5400, "band": "high"},
}

TOTALS = {
    ("web", "production", "success"): 9.0,
    ("web", "production", "build-error"): 2.0,
    ("web", "production", "crashed-error"): 1.0,
    ("web", "production", "timeout-error"): 1.0,
    ("web", "production", "aborted"): 1.0,
    ("web", "staging", "build-error"): 1.0,
    ("api", "production", "success"): 1.0,
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition: (name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def deployment_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The store-derived samples only (relay_deployment*, relay_dora_*)."""
    return {
        key: value
        for key, value in samples(text).items()
        if key[0].startswith(("relay_deployment", "relay_dora_"))
    }


def totals_of(text: str) -> dict[tuple[str, str, str], float]:
    """relay_deployments_total by (component, stage, status)."""
    return {
        (labels["component"], labels["stage"], labels["status"]): value
        for (name, pairs), value in samples(text).items()
        if name == "relay_deployments_total" and (labels := dict(pairs))
    }
