"""PostgreSQL for the benchmarks: one throwaway server per benchmark, a fresh database
per round.

The server comes from tests/pg_cluster.py (Debian's postgresql installed with apt-get
when missing and running as root; a cluster in a temporary folder, TMPDIR, started as
the `postgres` user on a free loopback port), started durable: fsync, full_page_writes
and synchronous_commit stay on, as in production, so that a 201 of relay on PostgreSQL
means what it means on SQLite (the tests turn them off; a benchmark must not).

    with postgres() as pg:
        if isinstance(pg, str): ...      # why there is no server: skip the PG rows
        url = pg.fresh("ingest_1")      # dropped if it was there, created empty
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from _harness import ROOT, BenchError, filesystem_of

# tests/ is a package of the repository, not of the virtualenv: import it from there.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests import pg_cluster

# Each instance's pool: relay's defaults, written out so that the notes can quote them.
POOL = {"pool_min": 1, "pool_max": 10}


class Postgres:
    """A running server; databases are created and dropped through psql."""

    def __init__(self, cluster: pg_cluster.Cluster) -> None:
        self.cluster = cluster

    def fresh(self, database: str) -> str:
        """The URL of `database`, dropped (with its connections) and created again."""
        self._psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self._psql(f"CREATE DATABASE {database}")
        return self.cluster.admin_url(database)

    def drop(self, database: str) -> None:
        self._psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")

    def settle(self) -> None:
        """Write the round's dirty pages out now (CHECKPOINT), so that the server's
        background writes do not share the disk with the next round, relay's or not."""
        self._psql("CHECKPOINT")

    def scalar(self, database: str, query: str) -> int:
        """The integer one query answers in `database`."""
        return int(self._psql(query, database).strip())

    def analyzed(self, database: str, table: str) -> bool:
        """Whether `table` has planner statistics (autovacuum analyzed it): a fresh
        database has none until autovacuum's next pass (up to a minute away)."""
        query = (
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname = "
            f"'{table}' AND coalesce(last_autoanalyze, last_analyze) IS NOT NULL"
        )
        return self.scalar(database, query) > 0

    def describe(self) -> str:
        """Version, durability settings and filesystem of the server (for the notes)."""
        version = self._psql("SHOW server_version").strip()
        settings = ", ".join(
            f"{name}={self._psql(f'SHOW {name}').strip()}"
            for name in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
        )
        fs = filesystem_of(self.cluster.folder)
        warning = " (tmpfs: fsync costs nothing, point TMPDIR at a disk)" if fs == "tmpfs" else ""
        return f"PostgreSQL {version} ({settings}), data on {fs}{warning}"

    def _psql(self, statement: str, database: str = "postgres") -> str:
        try:
            return self.cluster.psql(statement, database)
        except (RuntimeError, OSError) as exc:
            raise BenchError(f"PostgreSQL: {statement!r} failed: {exc}") from exc


@contextmanager
def postgres() -> Iterator[Postgres | str]:
    """A durable server for the duration of the block, or why there cannot be one."""
    if os.environ.get("RELAY_BENCH_PG") == "0":
        yield "RELAY_BENCH_PG=0 (SQLite rows only)"
        return
    cluster, reason = pg_cluster.provide(fast=False)
    if cluster is None:
        yield reason or "PostgreSQL could not be started"
        return
    try:
        yield Postgres(cluster)
    finally:
        cluster.stop()


def skipped(reason: str) -> str:
    """The note (and the line on stderr) of PostgreSQL rows that could not run."""
    note = f"PostgreSQL rows SKIPPED: {reason}"
    print(note, file=sys.stderr, flush=True)
    return note
