"""/readyz says not ready while writes cannot succeed: after a failed fsync (until relay
restarts) and while the disk holding the database is full (until space is freed)."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from relay.store.sqlite.store import SqliteStore
from tests.acceptance.test_storage_faults import fill, post, small_disk
from tests.support import make_settings

__all__ = ["small_disk"]  # the fixture, shared with test_storage_faults


async def readiness(client: TestClient[Any, Any]) -> tuple[int, Any]:
    """Status and body of /readyz."""
    async with client.get("/readyz") as response:
        return response.status, await response.json()


class FailingSync:
    """fdatasync that fails with EIO once told to (a dying disk)."""

    def __init__(self) -> None:
        self.failing = False

    def __call__(self, fd: int) -> None:
        if self.failing:
            raise OSError(errno.EIO, "Input/output error")
        os.fdatasync(fd)


async def test_a_failed_fsync_makes_relay_not_ready(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """Once an fsync failed every write answers 503, and /readyz says so too."""
    db = tmp_path / "relay.db"
    sync = FailingSync()
    client = await aiohttp_client(create_app(make_settings(db), SqliteStore(db, sync=sync)))
    assert (await readiness(client))[0] == 200
    sync.failing = True
    assert (await post(client, "1.0.0"))[0] == 503
    status, body = await readiness(client)
    assert status == 503
    assert "fsync failed" in body["reason"]


async def test_a_full_disk_makes_relay_not_ready_until_space_is_freed(
    aiohttp_client: AiohttpClient, small_disk: Path
) -> None:
    """With the database's disk full /readyz is 503 naming it; freeing space makes it ready."""
    client = await aiohttp_client(create_app(make_settings(small_disk / "relay.db")))
    assert (await readiness(client))[0] == 200
    filler = fill(small_disk)
    status, body = await readiness(client)
    assert status == 503
    assert "disk holding the database is full" in body["reason"]
    filler.unlink()
    assert (await readiness(client))[0] == 200
