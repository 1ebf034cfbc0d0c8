"""Deploy insights with two `relay serve` processes on one PostgreSQL database: the
deployment series and the DORA keys come from the shared store, so both instances answer
the same, whichever instance recorded what."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from relay.timeutil import utcnow
from tests.acceptance.instance import Instance
from tests.acceptance.pg_support import HEADERS, call, write_config
from tests.insights_support import TOTALS, WEB_DORA, deployment_samples, post_history, totals_of

pytestmark = pytest.mark.slow


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for talking to the subprocesses."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def instances() -> AsyncIterator[list[Instance]]:
    """Every instance a test starts; all stopped afterwards."""
    made: list[Instance] = []
    yield made
    await asyncio.gather(*(i.stop() for i in made))


async def test_two_instances_on_one_postgres_agree_on_metrics_and_dora(
    pg_url: str, tmp_path: Path, http: aiohttp.ClientSession, instances: list[Instance]
) -> None:
    """The history, sent to both instances in turn, gives the same deployment series and
    the same exact DORA figures on each."""
    config = write_config(tmp_path / "relay.toml", pg_url, {})
    with config.open("a", encoding="utf-8") as out:
        out.write('[metrics]\ncache_seconds = "0s"\n')
    for name in ("a", "b"):
        instances.append(await Instance(config, tmp_path / f"{name}.log").start(http))
    urls = itertools.cycle([i.url for i in instances])

    async def post(component: str, body: dict[str, Any]) -> None:
        status, answer = await call(
            http, "POST", f"{next(urls)}/components/{component}/deployments", body
        )
        assert status == 201, answer

    await post_history(post, utcnow() - timedelta(days=10))
    scraped = []
    for instance in instances:
        async with http.get(f"{instance.url}/metrics") as response:
            assert response.status == 200
            scraped.append(await response.text())
    assert totals_of(scraped[0]) == TOTALS
    assert deployment_samples(scraped[0]) == deployment_samples(scraped[1])
    for instance in instances:
        url = f"{instance.url}/insights/dora?component=web&stage=production&window=30d"
        async with http.get(url, headers=HEADERS) as response:
            answer = await response.json()
        answer.pop("window")
        assert answer == WEB_DORA
