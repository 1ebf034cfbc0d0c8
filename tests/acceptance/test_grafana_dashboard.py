"""The Grafana dashboard shipped in docs/: valid, importable JSON whose every query names
only series that relay's /metrics exports."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.timeutil import utcnow
from tests.acceptance.api import post_json
from tests.insights_support import post_history, samples
from tests.support import make_settings

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
SERIES = re.compile(r"\brelay_[a-z0-9_]+")


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    found = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    found += [v["query"]["query"] for v in dashboard["templating"]["list"]]
    return found


def test_the_dashboard_is_importable_json_with_the_promised_panels() -> None:
    """It parses, asks for a Prometheus data source on import, and has the panels the
    README promises."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert [i["pluginId"] for i in dashboard["__inputs"]] == ["prometheus"]
    assert dashboard["uid"] and dashboard["title"]
    titles = " | ".join(p["title"] for p in dashboard["panels"]).lower()
    for words in (
        "deployments per day",
        "live versions",
        "change failure rate",
        "lead time",
        "recovery time",
    ):
        assert words in titles, words
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert panel["targets"], panel["title"]


async def test_every_query_names_a_series_relay_exports(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """Each relay_* name in a query is a series of a real scrape (after a history)."""
    settings = make_settings(db_path, sections={"metrics": {"cache_seconds": "0"}})
    client = await aiohttp_client(create_app(settings))

    async def post(component: str, body: dict[str, Any]) -> None:
        response = await post_json(client, f"/components/{component}/deployments", body)
        assert response.status == 201

    await post_history(post, utcnow() - timedelta(days=10))
    exported = {name for name, _ in samples(await (await client.get("/metrics")).text())}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    named = {name for query in queries(dashboard) for name in SERIES.findall(query)}
    assert named, "the dashboard queries no relay series"
    assert named <= exported, sorted(named - exported)


# A selector of a relay series, as the dashboard writes it (`increase(` optional).
SELECTOR = re.compile(r"(?:increase\()?\b(relay_[a-z0-9_]+)\{")
DEDUPLICATED = re.compile(r"max by \(([a-z_, ]+)\) \($")
OWN_LABELS = {"component", "stage", "status", "version", "le"}


def test_panels_count_each_series_once_however_many_instances_are_scraped() -> None:
    """Every instance exports the same store-derived series, so each panel takes the max
    over instances (by the series' own labels) before it sums: scraping two relays must
    not double the deployments a day."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            found = list(SELECTOR.finditer(expr))
            assert found, expr
            for match in found:
                wrapper = DEDUPLICATED.search(expr[: match.start()])
                assert wrapper, f"{panel['title']}: {match.group(1)} summed per instance"
                labels = {label.strip() for label in wrapper.group(1).split(",")}
                assert labels <= OWN_LABELS, f"{panel['title']}: keeps {labels - OWN_LABELS}"
