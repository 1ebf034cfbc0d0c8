"""Storage faults: a full disk or a database file that cannot be written makes ingest
answer 503 with a clear JSON error and write nothing, and relay recovers on its own once
the fault clears; a corrupted or newer-than-known database refuses to start.

Tests run as root, where file permissions do not stop writes, so the faults are real
kernel errors instead: a tiny tmpfs mounted for the database and then filled (ENOSPC),
and `chattr +i` on the database and its WAL (EPERM, what a read-only volume looks like
to SQLite). Each test is skipped with the reason when the sandbox refuses the tool."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from relay.app import create_app
from tests.acceptance.server import run_relay, write_config
from tests.support import CI_TOKEN, make_settings

AUTH = {"Authorization": f"Bearer {CI_TOKEN}"}


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    """Run a system command, capturing its output."""
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted for the test (skipped when mounting is not allowed)."""
    where = tmp_path / "disk"
    where.mkdir()
    done = run("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield where
    run("umount", "-l", str(where))  # lazy: the store may still hold its files


async def post(client: TestClient[Any, Any], version: str) -> tuple[int, Any]:
    """POST one deployment; its status and JSON body."""
    body = {"version": version, "stage": "production", "result": "success"}
    async with client.post("/components/api/deployments", json=body, headers=AUTH) as r:
        return r.status, await r.json()


async def stored(client: TestClient[Any, Any]) -> list[str]:
    """The versions of the stored deployments."""
    async with client.get("/components/api/deployments", headers=AUTH) as r:
        assert r.status == 200
        return sorted(d["version"] for d in await r.json())


def fill(disk: Path) -> Path:
    """Write a filler file until the filesystem has no space left."""
    filler = disk / "filler"
    # Unbuffered, in ever smaller pieces down to one byte: full to the last byte, and no
    # buffered rest for close() to fail on.
    with filler.open("wb", buffering=0) as out:
        chunk = 65536
        while chunk:
            try:
                out.write(b"\0" * chunk)
            except OSError:
                chunk //= 2
    return filler


async def test_a_full_disk_answers_503_writes_nothing_and_recovers(
    aiohttp_client: AiohttpClient, small_disk: Path
) -> None:
    """Ingest on a full disk is a 503 naming the cause; freeing space makes it work again."""
    client = await aiohttp_client(create_app(make_settings(small_disk / "relay.db")))
    assert (await post(client, "1.0.0"))[0] == 201
    filler = fill(small_disk)

    status, body = await post(client, "1.0.1")
    assert status == 503, body
    assert body["error"]["code"] == "store_unavailable"
    assert "disk holding the database is full" in body["error"]["message"]
    assert await stored(client) == ["1.0.0"]

    filler.unlink()
    assert (await post(client, "1.0.2"))[0] == 201
    assert await stored(client) == ["1.0.0", "1.0.2"]


async def test_an_unwritable_database_answers_503_writes_nothing_and_recovers(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """Ingest on an unwritable file is a 503 saying so; once writable it works again."""
    db = tmp_path / "relay.db"
    client = await aiohttp_client(create_app(make_settings(db)))
    assert (await post(client, "1.0.0"))[0] == 201
    # Not the -shm file: SQLite maps it into memory and a refused write there is SIGBUS.
    files = [str(db), f"{db}-wal"]
    locked = run("chattr", "+i", *files)
    if locked.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {locked.stderr.strip()}")
    try:
        status, body = await post(client, "1.0.1")
        assert status == 503, body
        assert body["error"]["code"] == "store_unavailable"
        assert "cannot be written" in body["error"]["message"]
    finally:
        run("chattr", "-i", *files)
    assert await stored(client) == ["1.0.0"]
    assert (await post(client, "1.0.2"))[0] == 201
    assert await stored(client) == ["1.0.0", "1.0.2"]


def test_a_corrupted_database_refuses_to_start(tmp_path: Path) -> None:
    """`relay serve` on a file that is not a database exits non-zero and says why."""
    db = tmp_path / "relay.db"
    db.write_bytes(b"this is not a SQLite database, just garbage " * 200)
    config = write_config(tmp_path / "relay.toml", db, [{"name": "ci", "token": CI_TOKEN}])
    done = run_relay("serve", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert done.returncode != 0
    assert "error: the database file is corrupted" in done.stderr, done.stderr


def test_a_newer_schema_refuses_to_start(tmp_path: Path) -> None:
    """`relay serve` on a database migrated by a newer relay exits non-zero and says why."""
    db = tmp_path / "relay.db"
    config = write_config(tmp_path / "relay.toml", db, [{"name": "ci", "token": CI_TOKEN}])
    assert run_relay("migrate", "--config", str(config), cwd=tmp_path).returncode == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE schema_migrations SET version = 9999 WHERE version = 1")
    conn.close()
    done = run_relay("serve", "--config", str(config), "--port", "0", cwd=tmp_path)
    assert done.returncode != 0
    assert "newer than this relay knows" in done.stderr, done.stderr
