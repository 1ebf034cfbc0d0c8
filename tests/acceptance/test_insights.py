"""Deployment metrics and the DORA keys over HTTP on a real SQLite file: the series and
figures of a known history, exact; unchanged by a restart; cardinality bounded."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.timeutil import utcnow
from tests.acceptance.api import Client, assert_error, get_json, post_json
from tests.insights_support import (
    TOTALS,
    WEB_DORA,
    deployment_samples,
    post_history,
    samples,
    totals_of,
)
from tests.support import WEB_TOKEN, make_settings

NO_CACHE = {"metrics": {"cache_seconds": "0"}}


async def start(aiohttp_client: AiohttpClient, db: Path, **metrics: Any) -> Client:
    """A relay on `db` whose deployment series are read at every scrape."""
    sections = {"metrics": {"cache_seconds": "0", **metrics}}
    return await aiohttp_client(create_app(make_settings(db, sections=sections)))


async def history(client: Client) -> None:
    """The known history, ending about 10 days ago."""

    async def post(component: str, body: dict[str, Any]) -> None:
        response = await post_json(client, f"/components/{component}/deployments", body)
        assert response.status == 201, await response.text()

    await post_history(post, utcnow() - timedelta(days=10))


async def scrape(client: Client) -> str:
    """GET /metrics (no token needed)."""
    response = await client.get("/metrics")
    assert response.status == 200
    return await response.text()


async def test_dora_keys_of_a_known_history_are_exact_with_their_bands(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """The hand-built history gives the worked-out figures, counts and bands."""
    client = await start(aiohttp_client, db_path)
    await history(client)
    answer = await get_json(client, "/insights/dora?component=web&stage=production&window=30d")
    window = answer.pop("window")
    assert answer == WEB_DORA
    assert window["days"] == 30
    assert window["since"].endswith("Z") and window["until"].endswith("Z")
    every = await get_json(client, "/insights/dora?window=30")
    assert (every["component"], every["stage"]) == (None, "production")
    assert every["change_failure_rate"] == {"total": 12, "failed": 4, "rate": 0.333, "band": "low"}
    assert every["lead_time"]["count"] == 5


async def test_dora_figures_with_nothing_to_rest_on_are_null(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """A stage without deployments: every figure null, every count 0."""
    client = await start(aiohttp_client, db_path)
    await history(client)
    answer = await get_json(client, "/insights/dora?component=web&stage=qa&window=1d")
    assert answer["deployment_frequency"] == {
        "count": 0,
        "per_day": None,
        "per_week": None,
        "band": None,
    }
    assert answer["lead_time"] == {
        "count": 0,
        "median_seconds": None,
        "p90_seconds": None,
        "band": None,
    }
    assert answer["change_failure_rate"] == {"total": 0, "failed": 0, "rate": None, "band": None}
    assert answer["recovery_time"] == {"count": 0, "median_seconds": None, "band": None}


async def test_dora_reads_only_what_the_token_may_read(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """A `web-*` token: another component is 403; without a component, only its own count."""
    client = await start(aiohttp_client, db_path)
    await history(client)
    denied = await client.get(
        "/insights/dora?component=web", headers={"Authorization": f"Bearer {WEB_TOKEN}"}
    )
    await assert_error(denied, 403)
    mine = await get_json(client, "/insights/dora", token=WEB_TOKEN)
    assert mine["change_failure_rate"]["total"] == 0  # no web-* component was deployed
    assert (await client.get("/insights/dora")).status == 401


@pytest.mark.parametrize("window", ["0d", "366d", "week", "-1"])
async def test_a_bad_dora_window_answers_422(
    aiohttp_client: AiohttpClient, db_path: Path, window: str
) -> None:
    """`window` is 1 to 365 days."""
    client = await start(aiohttp_client, db_path)
    response = await client.get(
        f"/insights/dora?window={window}", headers={"Authorization": "Bearer some-api-token"}
    )
    await assert_error(response, 422, "validation_error")


async def test_committed_at_is_accepted_from_a_query_string_and_a_form(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """The ReleaseBits form variants carry committed_at too, stored and answered."""
    client = await start(aiohttp_client, db_path)
    headers = {"Authorization": "Bearer some-api-token"}
    query = "version=1&stage=production&committed_at=2026-01-02T03:04:05%2B02:00"
    response = await client.post(f"/components/web/deployments?{query}", headers=headers)
    assert response.status == 201, await response.text()
    form = {"version": "2", "committed_at": "2026-01-02T01:04:05Z"}
    posted = await client.post("/components/web/deployments", data=form, headers=headers)
    assert posted.status == 201
    for answer in (response, posted):
        record_id = (await answer.json())["id"]
        found = await get_json(client, f"/components/web/deployments/{record_id}")
        assert found["committed_at"] == "2026-01-02T01:04:05.000Z"
    bad = await post_json(
        client, "/components/web/deployments", {"version": "3", "committed_at": "soon"}
    )
    await assert_error(bad, 422, "validation_error")


async def test_deployment_series_match_a_known_history_and_survive_a_restart(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """Counters, last times, live versions, durations and DORA series are the store's,
    and a new process on the same file shows the very same series."""
    client = await start(aiohttp_client, db_path)
    await history(client)
    text = await scrape(client)
    assert totals_of(text) == TOTALS
    found = samples(text)
    web = (("component", "web"), ("stage", "production"))
    assert found[("relay_deployment_info", (*web, ("version", "v10")))] == 1.0
    assert (
        found[
            (
                "relay_deployment_info",
                (("component", "api"), ("stage", "production"), ("version", "a1")),
            )
        ]
        == 1.0
    )
    assert not [
        k for k in found if k[0] == "relay_deployment_info" and ("stage", "staging") in k[1]
    ]
    assert found[("relay_deployment_duration_seconds_count", web)] == 14.0
    assert (
        found[("relay_deployment_duration_seconds_bucket", tuple(sorted((*web, ("le", "60.0")))))]
        == 13.0
    )
    assert found[("relay_deployment_duration_seconds_sum", web)] == pytest.approx(445.0)
    assert found[("relay_dora_change_failure_rate", web)] == pytest.approx(4 / 11)
    assert found[("relay_dora_lead_time_median_seconds", web)] == pytest.approx(5400)
    assert found[("relay_dora_recovery_time_median_seconds", web)] == pytest.approx(5400)
    assert found[("relay_dora_deployment_frequency_per_day", web)] == pytest.approx(8 / 30)
    last_ok = found[("relay_deployment_last_success_timestamp_seconds", web)]
    assert found[("relay_deployment_last_timestamp_seconds", web)] == last_ok
    assert found[("relay_deployment_series_left_out", ())] == 0.0
    await client.close()
    again = await start(aiohttp_client, db_path)
    assert deployment_samples(await scrape(again)) == deployment_samples(text)


async def test_at_most_max_series_pairs_are_exported_and_a_gauge_counts_the_rest(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """max_series = 1: only the most recently deployed pair, and 2 left out."""
    client = await start(aiohttp_client, db_path, max_series=1)
    await history(client)
    text = await scrape(client)
    assert set(totals_of(text)) == {k for k in TOTALS if k[:2] == ("web", "production")}
    assert samples(text)[("relay_deployment_series_left_out", ())] == 2.0


async def test_label_values_are_escaped(aiohttp_client: AiohttpClient, db_path: Path) -> None:
    """A stage and version with quotes, backslashes and newlines keep the exposition valid."""
    client = await start(aiohttp_client, db_path)
    odd = 'prod "eu"\\ne'
    await post_json(client, "/components/web/deployments", {"version": 'v"1\\', "stage": odd})
    found = samples(await scrape(client))
    assert (
        found[
            (
                "relay_deployments_total",
                (("component", "web"), ("stage", odd), ("status", "success")),
            )
        ]
        == 1.0
    )
    info = (("component", "web"), ("stage", odd), ("version", 'v"1\\'))
    assert found[("relay_deployment_info", info)] == 1.0


async def test_scrapes_within_cache_seconds_share_one_read(
    aiohttp_client: AiohttpClient, db_path: Path
) -> None:
    """With the default cache, a deployment recorded right after a scrape shows later."""
    settings = make_settings(db_path, sections={"metrics": {"cache_seconds": "1h"}})
    client = await aiohttp_client(create_app(settings))
    assert totals_of(await scrape(client)) == {}
    await post_json(client, "/components/web/deployments", {"version": "1", "stage": "p"})
    assert totals_of(await scrape(client)) == {}  # still the cached read
