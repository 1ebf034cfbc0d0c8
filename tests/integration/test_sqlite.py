"""The SQLite store (relay/store/sqlite.py, sqlite_engine.py) on a real file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from relay.auth import generate_token, hash_token, new_token_record
from relay.errors import IdempotencyConflict, SchemaError, StoreError
from relay.store import open_store, sqlite_path
from relay.store.base import ListQuery
from relay.store.sqlite.engine import SqliteEngine, known_migrations
from relay.store.sqlite.store import SqliteStore
from tests.store_contract import DialectContract, StoreContract
from tests.support import T0, make_command, make_record, minutes, sqlite_url


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where the test's database file lives (in a folder that does not exist yet)."""
    return tmp_path / "data" / "relay.db"


class TestSqliteStore(StoreContract):
    """SqliteStore behaves like every other store (the `store` fixture of conftest.py)."""


class TestSqliteDialects(DialectContract):
    """SqliteStore serves the seed dialects like every other store."""


def _rows(db: Path, query: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query).fetchall()
    finally:
        conn.close()


async def test_records_survive_closing_and_reopening(db: Path) -> None:
    """Everything acknowledged is still there after the store is closed and opened again."""
    first = SqliteStore(db)
    await first.open()
    records = [
        make_record("api", f"v{i}", stage="prod", finished_at=T0 + minutes(i)) for i in range(5)
    ]
    for record in records:
        await first.record(make_command(record))
    await first.close()

    second = SqliteStore(db)
    await second.open()
    try:
        page = await second.list_records(ListQuery(kind="deployment", component="api"))
        assert [d.id for d in page.items] == [r.id for r in reversed(records)]
        again = await second.get_record("deployment", "api", records[2].id)
        assert again is not None
        assert again.model_dump(exclude={"deliveries", "number"}) == records[2].model_dump(
            exclude={"deliveries", "number"}
        )
    finally:
        await second.close()


async def test_file_uses_wal_with_commits_synced_by_relay(db: Path, store: SqliteStore) -> None:
    """The database runs in WAL mode; the writer commits with synchronous=NORMAL because
    relay syncs the WAL itself before answering (test_sqlite_sync.py)."""
    assert _rows(db, "PRAGMA journal_mode") == [("wal",)]

    def synchronous(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    assert await store.engine.write(synchronous) == 1  # 1 = NORMAL


async def test_concurrent_records_share_commits(store: SqliteStore) -> None:
    """200 simultaneous records all succeed and are written in fewer transactions (group commit)."""
    commits: list[int] = []
    store.engine.commit_hooks.append(lambda: commits.append(1))
    records = [make_record("api", f"v{i}") for i in range(200)]
    results = await asyncio.gather(*(store.record(make_command(r)) for r in records))
    assert [r.answer.body["id"] for r in results] == [r.id for r in records]
    assert 1 <= len(commits) < len(records)
    page = await store.list_records(ListQuery(kind="deployment", component="api", limit=500))
    assert {d.id for d in page.items} == {r.id for r in records}


async def test_a_write_is_visible_to_readers_once_acknowledged(store: SqliteStore) -> None:
    """As soon as `record` returns, a read on another connection finds the record."""
    for i in range(20):
        record = make_record("api", f"v{i}")
        await store.record(make_command(record))
        assert await store.get_record("deployment", "api", record.id) is not None


async def test_idempotency_conflict_does_not_undo_the_rest_of_its_batch(
    store: SqliteStore,
) -> None:
    """A conflicting Idempotency-Key fails alone; the other writes of its commit are kept."""
    await store.record(make_command(make_record("api", "v0"), idempotency=("k", "fp-0")))
    commits: list[int] = []
    store.engine.commit_hooks.append(lambda: commits.append(1))
    others = [make_record("api", f"v{i}") for i in range(1, 6)]
    outcomes = await asyncio.gather(
        store.record(make_command(others[0])),
        store.record(make_command(make_record("api", "bad"), idempotency=("k", "fp-other"))),
        *(store.record(make_command(r)) for r in others[1:]),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], IdempotencyConflict)
    assert not any(isinstance(o, BaseException) for i, o in enumerate(outcomes) if i != 1)
    assert len(commits) == 1  # they really were one transaction
    for record in others:
        assert await store.get_record("deployment", "api", record.id) is not None


async def test_a_failed_write_leaves_no_partial_rows_and_spares_its_batch(
    store: SqliteStore,
) -> None:
    """A write that fails halfway (duplicate id) leaves none of its rows; its neighbours commit."""
    existing = make_record("api", "v1")
    await store.record(make_command(existing))
    duplicate = make_record("brand-new-component", "v1").model_copy(update={"id": existing.id})
    neighbour = make_record("api", "v2")
    outcomes = await asyncio.gather(
        store.record(make_command(duplicate)),
        store.record(make_command(neighbour)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], StoreError)
    assert not isinstance(outcomes[1], BaseException)
    # The component row the failed write inserted first was rolled back with it.
    assert await store.component_exists("brand-new-component") is False
    assert await store.get_record("deployment", "api", neighbour.id) is not None


async def test_migrations_apply_once(db: Path) -> None:
    """The first open applies every migration; opening again applies none."""
    known = [version for version, _, _ in known_migrations()]
    engine = SqliteEngine(db)
    assert await engine.open() == known
    await engine.close()
    applied_at = _rows(db, "SELECT version, applied_at FROM schema_migrations ORDER BY version")
    assert [v for v, _ in applied_at] == known

    engine = SqliteEngine(db)
    assert await engine.open() == []
    await engine.close()
    assert _rows(db, "SELECT version, applied_at FROM schema_migrations ORDER BY version") == (
        applied_at
    )


async def test_newer_schema_is_refused(db: Path) -> None:
    """A database migrated by a newer relay refuses to open with SchemaError."""
    store = SqliteStore(db)
    await store.open()
    await store.close()
    newest = max(version for version, _, _ in known_migrations())
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (newest + 1, "from_the_future", "2030-01-01T00:00:00.000000Z"),
        )
    conn.close()

    newer = SqliteStore(db)
    with pytest.raises(SchemaError, match="newer than this relay knows"):
        await newer.open()
    await newer.close()
    # Refusing left the file as it was.
    assert max(v for (v,) in _rows(db, "SELECT version FROM schema_migrations")) == newest + 1


async def test_ping_fails_when_migrations_are_missing(db: Path, store: SqliteStore) -> None:
    """Readiness fails (StoreError) when the schema is not fully migrated."""
    await store.ping()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DELETE FROM schema_migrations")
    conn.close()
    with pytest.raises(StoreError, match="migrations"):
        await store.ping()


async def test_writes_after_close_fail_cleanly(db: Path) -> None:
    """Writing to a closed store raises StoreError instead of hanging."""
    store = SqliteStore(db)
    await store.open()
    await store.close()
    with pytest.raises(StoreError, match="closed"):
        await asyncio.wait_for(store.record(make_command(make_record("api"))), timeout=5)


async def test_tokens_are_stored_as_hashes_only(db: Path) -> None:
    """The tokens table holds a SHA-256 hash, never the token itself."""
    token = generate_token()
    store = SqliteStore(db)
    await store.open()
    await store.add_token(new_token_record("bot", token, ["events:write"], ["*"]))
    await store.close()
    assert _rows(db, "SELECT name, token_hash FROM tokens") == [("bot", hash_token(token))]
    for path in db.parent.iterdir():
        assert token.encode() not in path.read_bytes()


def test_sqlite_urls_name_relative_and_absolute_files() -> None:
    """`sqlite:///rel.db` is relative to the working directory, `sqlite:////abs.db` absolute."""
    assert sqlite_path("sqlite:///data/relay.db") == Path("data/relay.db")
    assert sqlite_path("sqlite:////var/lib/relay.db") == Path("/var/lib/relay.db")
    assert isinstance(open_store(sqlite_url(Path("/tmp/x.db"))), SqliteStore)
