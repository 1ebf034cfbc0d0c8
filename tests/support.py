"""Constants and builders shared by the test folders (not fixtures: plain functions)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from relay.models import Deployment, Kind, Status
from relay.settings import Settings, build_settings
from relay.store.base import (
    IdempotencyRequest,
    NewDelivery,
    NewEvent,
    RecordCommand,
    StoredAnswer,
)

# The token of the ReleaseBits documentation's examples (config/relay.toml's default too).
CI_TOKEN = "some-api-token"
READ_TOKEN = "read-only-token-0001"
WRITE_TOKEN = "write-only-token-0001"
WEB_TOKEN = "web-components-token-01"
ADMIN_TOKEN = "admin-token-000000001"

# The test receivers listen on 127.0.0.1, which the SSRF guard refuses unless allowed.
ALLOW_LOOPBACK: dict[str, Any] = {"allow_networks": ["127.0.0.0/8", "::1/128"]}
TOKENS: list[dict[str, Any]] = [
    {"name": "ci", "token": CI_TOKEN, "scopes": ["events:write", "events:read"]},
    {"name": "reader", "token": READ_TOKEN, "scopes": ["events:read"]},
    {"name": "writer", "token": WRITE_TOKEN, "scopes": ["events:write"]},
    {
        "name": "web",
        "token": WEB_TOKEN,
        "scopes": ["events:write", "events:read"],
        "components": ["web-*"],
    },
    {"name": "root", "token": ADMIN_TOKEN, "scopes": ["admin"]},
]
ALL_TOKENS = (CI_TOKEN, READ_TOKEN, WRITE_TOKEN, WEB_TOKEN, ADMIN_TOKEN)

T0 = datetime(2018, 5, 27, 13, 15, 30, 311000, tzinfo=UTC)

# Every field of the ReleaseBits documentation's JSON example, as JSON gives it (read-only:
# copy before changing it).
RELEASEBITS_FIELDS: dict[str, Any] = {
    "version": "v1.2.3",
    "result": "success",
    "stage": "staging",
    "host": "host.example.com",
    "code_name": "Funky Fünke",
    "started_at": "2018-05-27T13:15:30.311Z",
    "finished_at": "2018-05-27T13:15:31.191Z",
    "meta_data": {"user_id": "metauser", "foo": "bar"},
    "commit_sha": "b927e3797fc56fb8bc093d59ee7a624dafddadd2",
    "tag": "tag1.2.3",
    "branch": "release",
}


def sqlite_url(path: Path) -> str:
    """The storage URL of a SQLite file (absolute paths give `sqlite:////...`)."""
    return f"sqlite:///{path}"


def make_settings(
    db: Path | None,
    *,
    tokens: list[dict[str, Any]] | None = None,
    server: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    sections: dict[str, Any] | None = None,
) -> Settings:
    """Settings for a relay on the SQLite file `db` (in memory when None) with test tokens
    (and more `[storage]` keys, e.g. `retention`, and other sections, e.g. `badges`)."""
    return build_settings(
        {
            "server": server or {},
            "storage": {
                "url": sqlite_url(db) if db is not None else "memory://",
                **(storage or {}),
            },
            "tokens": TOKENS if tokens is None else tokens,
            "logging": {"format": "json"},
            "security": ALLOW_LOOPBACK,
            **(sections or {}),
        }
    )


def make_record(
    component: str = "api",
    version: str = "v1",
    *,
    kind: Kind = "deployment",
    stage: str | None = None,
    result: str | None = "success",
    status: Status = Status.SUCCESS,
    finished_at: datetime | None = None,
    created_at: datetime | None = None,
    meta_data: dict[str, Any] | None = None,
) -> Deployment:
    """A Deployment as the service would build it."""
    created = created_at or T0
    return Deployment(
        id=str(uuid.uuid4()),
        kind=kind,
        component=component,
        version=version,
        result=result,
        status=status,
        stage=stage,
        finished_at=finished_at,
        meta_data=meta_data or {},
        triggered_by="ci",
        created_at=created,
        updated_at=created,
    )


def make_command(
    record: Deployment,
    *,
    idempotency: tuple[str, str] | None = None,
    forwarders: Iterable[str] = (),
) -> RecordCommand:
    """The RecordCommand that stores `record` (with an idempotency key and outbox rows)."""
    event = NewEvent(
        id=str(uuid.uuid4()),
        type=f"{record.kind}.created",
        created_at=record.created_at,
        data=record.model_dump(mode="json", exclude={"deliveries"}),
    )
    idem = None
    if idempotency is not None:
        key, fingerprint = idempotency
        idem = IdempotencyRequest(scope="ci", key=key, fingerprint=fingerprint)
    location = f"/components/{record.component}/{record.kind}s/{record.id}"
    return RecordCommand(
        record=record,
        event=event,
        answer=StoredAnswer(201, {"id": record.id}, location),
        deliveries=[
            NewDelivery(id=str(uuid.uuid4()), forwarder=name, next_attempt_at=record.created_at)
            for name in forwarders
        ],
        idempotency=idem,
    )


def minutes(n: float) -> timedelta:
    """A timedelta of `n` minutes."""
    return timedelta(minutes=n)


def exited_pid() -> int:
    """The pid of a process that has run and exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
