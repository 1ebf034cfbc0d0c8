"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from relay.delivery.http import AiohttpTransport
from relay.delivery.netguard import parse_networks
from relay.store.sqlite.store import SqliteStore
from tests.support import ALLOW_LOOPBACK


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """The real HTTP transport (loopback allowed), closed after the test."""
    real = AiohttpTransport(allow_networks=parse_networks(ALLOW_LOOPBACK["allow_networks"]))
    yield real
    await real.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The test's SQLite database file."""
    return tmp_path / "relay.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SqliteStore]:
    """An opened SqliteStore on a fresh file (at `db`), closed after the test."""
    store = SqliteStore(db)
    await store.open()
    yield store
    await store.close()
