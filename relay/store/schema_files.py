"""The migration files shipped with relay, and the refusal of a schema newer than they are
(shared by sqlite/engine.py and postgres/engine.py; each backend applies them its own way)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from relay.errors import SchemaError

# (version, name, sql) of one migration file, e.g. (3, "0003_lifecycle", "CREATE …").
Migration = tuple[int, str, str]


def read_migrations(folder: Path) -> list[Migration]:
    """(version, name, sql) of every NNNN_name.sql file in `folder`, in order."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        version = int(path.name.split("_", 1)[0])
        found.append((version, path.stem, path.read_text(encoding="utf-8")))
    return found


def refuse_newer(applied: Iterable[int], known: list[Migration]) -> None:
    """Raise SchemaError when the database has a migration newer than any in `known`: an
    older relay must not write to a schema it does not understand."""
    newest = max((v for v, _, _ in known), default=0)
    latest = max(applied, default=0)
    if latest > newest:
        raise SchemaError(
            f"the database schema is version {latest}, newer than this relay "
            f"knows ({newest}); upgrade relay"
        )
