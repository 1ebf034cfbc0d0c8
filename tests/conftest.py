"""Fixtures every test folder shares."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without RELAY_* variables and with structlog's default set-up."""
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)
    structlog.reset_defaults()
    yield
    # `relay.cli.main` configures structlog to write to the stream of that moment
    # (pytest's capture): never let a later test write to it.
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL database for the whole run (tests/pg_cluster.py).

    `TEST_POSTGRES_URL` points the tests at an existing server instead. When PostgreSQL
    cannot be installed the PostgreSQL tests are skipped, saying why; under CI they fail."""
    from tests import pg_cluster

    url = os.environ.get("TEST_POSTGRES_URL")
    if url:
        yield url
        return
    cluster, reason = pg_cluster.provide()
    if cluster is None:
        message = f"PostgreSQL tests cannot run: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true requires them)", pytrace=False)
        pytest.skip(message)
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
async def pg_url(postgres_server: str) -> AsyncIterator[str]:
    """A PostgreSQL URL whose tables live in a fresh, empty schema (dropped afterwards)."""
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(postgres_server)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield f"{postgres_server}?search_path={schema}"
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """A headless system Chromium driven by Playwright (tests/browser.py), closed after the
    test. Skipped, saying why, where it cannot run; under CI it fails instead."""
    from tests.browser import LAUNCH_ARGS, chromium_path

    path = chromium_path()
    reason = "" if path else "no Chromium (run `python -m tests.browser install`)"
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        reason = reason or "Playwright is not installed (the dev extra installs it)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run: {reason} (CI=true requires them)")
        pytest.skip(f"browser tests cannot run: {reason}")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=path, args=LAUNCH_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()
