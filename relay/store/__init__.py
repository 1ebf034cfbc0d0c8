"""Storage: the Store protocol and its backends, chosen by `storage.url`."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from relay.errors import ConfigError
from relay.store.base import Store

__all__ = ["Store", "open_store", "sqlite_path"]


def sqlite_path(url: str) -> Path:
    """The file of a `sqlite:///relative.db` or `sqlite:////abs/path.db` URL."""
    if not url.startswith("sqlite:///"):
        raise ConfigError(f"not a SQLite URL: {url.split(':', 1)[0]}://…")
    rest = url[len("sqlite:///") :]
    if not rest:
        raise ConfigError("the SQLite URL names no file")
    return Path(rest)


def open_store(url: str, *, pool_min: int = 1, pool_max: int = 10) -> Store:
    """A Store for `url` (not yet opened); the pool sizes apply to PostgreSQL."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        try:
            from relay.store.postgres.store import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                "PostgreSQL storage needs the asyncpg driver: pip install 'relay[postgres]'"
            ) from exc
        return PostgresStore(url, pool_min=pool_min, pool_max=pool_max)
    if scheme == "sqlite":
        from relay.store.sqlite.store import SqliteStore

        return SqliteStore(sqlite_path(url))
    if scheme in ("memory", ""):
        from relay.store.memory.store import MemoryStore

        return MemoryStore()
    raise ConfigError(
        f"unsupported storage URL scheme {scheme!r}; "
        "use sqlite:///path.db or postgresql://user:password@host:port/database"
    )
