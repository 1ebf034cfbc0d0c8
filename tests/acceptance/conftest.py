"""Fixtures of the acceptance tests: the whole app on a real SQLite file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from tests.support import make_settings

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The SQLite file of the test's relay."""
    return tmp_path / "relay.db"


@pytest.fixture
def make_client(aiohttp_client: AiohttpClient, db_path: Path) -> MakeClient:
    """Start a relay on `db_path` with the test tokens and optional `server` settings."""

    async def make(
        server: dict[str, Any] | None = None, tokens: list[dict[str, Any]] | None = None
    ) -> TestClient[Any, Any]:
        return await aiohttp_client(
            create_app(make_settings(db_path, server=server, tokens=tokens))
        )

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, Any]:
    """A relay with default settings and the test tokens."""
    return await make_client()
