"""A throwaway PostgreSQL server for the tests (and anyone who wants one for a while).

`provide()` finds the PostgreSQL binaries, installing Debian's `postgresql` package with
apt-get when they are missing (as root), then creates a cluster in a fresh temporary
folder, starts it on a free loopback port as the `postgres` user (PostgreSQL refuses to
run as root) with password authentication, and creates the database `relay_test`.
`Cluster.stop()` stops it and deletes the folder.

    python -m tests.pg_cluster install   # make sure the binaries are there (make test)
    python -m tests.pg_cluster run       # start one, print its URL, stop on Ctrl-C
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.apt import apt_install

DATABASE = "relay_test"
USER = "postgres"
# Debian: don't create and start a default cluster when the package is installed.
CREATECLUSTER_CONF = Path("/etc/postgresql-common/createcluster.conf")
# Throwaway data: durability settings off, so that tests spend no time in fsync.
FAST = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def find_bindir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres, if PostgreSQL is installed."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        folder = Path(on_path).resolve().parent
        if (folder / "initdb").exists() and (folder / "postgres").exists():
            return folder
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    return found[-1] if found else None


def install() -> str | None:
    """Install PostgreSQL unless it is there; None on success, else why it cannot be."""
    if find_bindir() is not None:
        return None
    if hasattr(os, "geteuid") and os.geteuid() == 0 and not CREATECLUSTER_CONF.exists():
        # Only the binaries: each test run makes a throwaway cluster of its own.
        CREATECLUSTER_CONF.parent.mkdir(parents=True, exist_ok=True)
        CREATECLUSTER_CONF.write_text("create_main_cluster = false\n")
    reason = apt_install("postgresql", "PostgreSQL", timeout=900)
    if reason is not None:
        return reason
    if find_bindir() is None:
        return "apt-get installed postgresql but no initdb/pg_ctl was found"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(command: list[str]) -> list[str]:
    """Run as the `postgres` user when we are root (PostgreSQL refuses to run as root)."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return ["runuser", "-u", USER, "--", *command]
    return command


@dataclass
class Cluster:
    """One running PostgreSQL server in `folder`, listening on 127.0.0.1:`port`."""

    bindir: Path
    folder: Path
    port: int
    password: str

    @property
    def url(self) -> str:
        """The URL of the `relay_test` database (password included)."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}"

    def admin_url(self, database: str = "postgres") -> str:
        """The URL of another database of this server."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, statement: str, database: str = "postgres") -> str:
        """Run one SQL statement with psql; its output."""
        done = subprocess.run(
            [
                *(str(self.bindir / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"),
                *("-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database),
                *("-c", statement),
            ],
            env={**os.environ, "PGPASSWORD": self.password},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        subprocess.run(
            _as_postgres(
                [str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"), "stop", "-m", "fast"]
            ),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


def start(bindir: Path, *, fast: bool = True) -> Cluster:
    """Create and start a cluster in a new temporary folder; RuntimeError on failure."""
    folder = Path(tempfile.mkdtemp(prefix="relay-pg-"))
    password = secrets.token_hex(12)
    (folder / "pwfile").write_text(password + "\n")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        shutil.chown(folder, USER, USER)
        shutil.chown(folder / "pwfile", USER, USER)
    cluster = Cluster(bindir, folder, _free_port(), password)
    data, log = folder / "data", folder / "server.log"
    settings = ["listen_addresses=127.0.0.1", f"port={cluster.port}"]
    settings += [f"unix_socket_directories={folder}", "max_connections=300"]
    settings += list(FAST) if fast else []
    steps = [
        [
            *(str(bindir / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8", "--locale=C"),
            *("--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={folder / 'pwfile'}"),
        ],
        [
            *(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60"),
            *("-o", " ".join(f"-c {s}" for s in settings), "start"),
        ],
    ]
    for step in steps:
        done = subprocess.run(
            _as_postgres(step), capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            server_log = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            cluster.stop()
            raise RuntimeError(
                f"{Path(step[0]).name} failed: {done.stdout}{done.stderr}{server_log}".strip()
            )
    try:
        cluster.psql(f"CREATE DATABASE {DATABASE}")
    except RuntimeError:
        cluster.stop()
        raise
    return cluster


def provide(*, fast: bool = True) -> tuple[Cluster | None, str]:
    """A running cluster, or None and the reason why there cannot be one."""
    reason = install()
    if reason is not None:
        return None, reason
    bindir = find_bindir()
    assert bindir is not None
    try:
        return start(bindir, fast=fast), ""
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        return None, f"could not start a PostgreSQL server: {exc}"


def main(argv: list[str]) -> int:
    """`install` the binaries, or `run` a durable server until interrupted."""
    action = argv[0] if argv else "install"
    if action == "install":
        reason = install()
        print(reason or f"PostgreSQL binaries: {find_bindir()}")
        return 0  # the tests themselves skip (or fail under CI) and say why
    if action == "run":
        cluster, reason = provide(fast=False)
        if cluster is None:
            print(reason, file=sys.stderr)
            return 1
        print(cluster.url, flush=True)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
        finally:
            cluster.stop()
        return 0
    print("usage: python -m tests.pg_cluster [install|run]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
