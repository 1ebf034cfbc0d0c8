"""The lifecycle side of the in-memory Store (same answers as the SQLite one)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from relay.models import Deployment, Status
from relay.store.base import Cursor, EventRow, NewDelivery, NewEvent
from relay.store.lifecycle_base import (
    OutputTotals,
    ReleaseCommand,
    ReleasePage,
    ReleaseRow,
    TransitionCommand,
    output_bytes,
)
from relay.store.memory.insights import MemoryInsights
from relay.store.memory.outbox import MemoryOutbox


@dataclass(frozen=True)
class OutputRow:
    """One appended line; `seq` numbers every line ever appended, as in SQLite."""

    seq: int
    deployment_id: str
    created_at: datetime
    text: str


class MemoryLifecycle(MemoryInsights, MemoryOutbox):
    """Lifecycle operations over MemoryStore's dicts; mixed into MemoryStore."""

    records: dict[str, tuple[int, Deployment]]
    _seq: int

    def __init__(self) -> None:
        super().__init__()
        self.outputs: list[OutputRow] = []
        self.output_seq = 0
        self.releases: dict[str, ReleaseRow] = {}
        self._release_links: dict[str, list[str]] = {}

    def _successes(self, component: str, stage: str | None) -> list[tuple[int, Deployment]]:
        """Successful deployments of a component and stage, live one first."""
        found = [
            (seq, d)
            for seq, d in self.records.values()
            if d.kind == "deployment"
            and d.status == Status.SUCCESS
            and d.component == component
            and d.stage == stage
        ]
        found.sort(key=lambda item: (item[1].occurred_at, item[0]), reverse=True)
        return found

    def decide_rollback(self, record: Deployment) -> bool:
        """The rollback rule of lifecycle_base.py for a deployment just stored as success."""
        if record.kind != "deployment" or record.status != Status.SUCCESS:
            return False
        history = self._successes(record.component, record.stage)
        if len(history) < 2 or history[0][1].id != record.id:
            return False
        replaced_seq, replaced = history[1]
        if replaced.version == record.version:
            return False
        bar = (replaced.occurred_at, replaced_seq)
        if not any(d.version == record.version and (d.occurred_at, s) < bar for s, d in history):
            return False
        seq, _ = self.records[record.id]
        self.records[record.id] = (seq, record.model_copy(update={"is_rollback": True}))
        self.records[replaced.id] = (
            replaced_seq,
            replaced.model_copy(
                update={
                    "reverted_at": record.finished_at or record.updated_at,
                    "reverted_by": record.triggered_by,
                }
            ),
        )
        return True

    async def _add_event(
        self, event: NewEvent, deployment_id: str | None, deliveries: list[NewDelivery]
    ) -> None:
        self._seq += 1
        row = EventRow(
            id=event.id,
            seq=self._seq,
            type=event.type,
            deployment_id=deployment_id,
            created_at=event.created_at,
            payload=event.data,
        )
        self.event_rows.append(row)
        await self.add_deliveries([(row, d) for d in deliveries])

    async def transition(self, command: TransitionCommand) -> Deployment | None:
        """Apply the change unless the status moved meanwhile."""
        record = command.record
        found = self.records.get(record.id)
        if found is None or found[1].status != command.expected:
            return None
        seq, old = found
        # Rollback facts are the store's to keep, whatever the command carries.
        kept = {k: getattr(old, k) for k in ("is_rollback", "reverted_at", "reverted_by")}
        self.records[record.id] = (seq, record.model_copy(update=kept))
        self.count_finished(old, record)
        command.event.data["is_rollback"] = self.decide_rollback(self.records[record.id][1])
        await self._add_event(command.event, record.id, command.deliveries)
        return self.records[record.id][1]

    async def latest_of_version(
        self, component: str, stage: str | None, version: str
    ) -> Deployment | None:
        """The last recorded deployment of that version, component and stage."""
        matches = [
            (seq, d)
            for seq, d in self.records.values()
            if d.kind == "deployment"
            and (d.component, d.stage, d.version) == (component, stage, version)
        ]
        return max(matches, key=lambda item: item[0])[1] if matches else None

    async def live_ids(
        self, keys: list[tuple[str, str | None]]
    ) -> dict[tuple[str, str | None], str]:
        """The live deployment of each (component, stage)."""
        out = {}
        for component, stage in dict.fromkeys(keys):
            history = self._successes(component, stage)
            if history:
                out[(component, stage)] = history[0][1].id
        return out

    async def deployments_by_ids(self, ids: list[str]) -> dict[str, Deployment]:
        """The existing deployments among `ids`."""
        return {
            i: self.records[i][1]
            for i in ids
            if i in self.records and self.records[i][1].kind == "deployment"
        }

    async def append_output(
        self, deployment_id: str, lines: list[str], at: datetime, limit_bytes: int
    ) -> OutputTotals | None:
        """Append unless the log would pass `limit_bytes`."""
        mine = [o.text for o in self.outputs if o.deployment_id == deployment_id]
        after = OutputTotals(len(mine) + len(lines), output_bytes(mine) + output_bytes(lines))
        if after.bytes > limit_bytes:
            return None
        for line in lines:
            self.output_seq += 1
            self.outputs.append(OutputRow(self.output_seq, deployment_id, at, line))
        return after

    async def read_output(self, deployment_id: str) -> list[str]:
        """Every line of the log, in order."""
        return [o.text for o in self.outputs if o.deployment_id == deployment_id]

    async def record_release(self, command: ReleaseCommand) -> None:
        """Keep the release and record its event."""
        seq = len(self.releases) + 1
        self.releases[command.id] = ReleaseRow(
            id=command.id,
            seq=seq,
            name=command.name,
            code_name=command.code_name,
            notes=command.notes,
            triggered_by=command.triggered_by,
            created_at=command.created_at,
            deployments=[],
        )
        self._release_links[command.id] = list(command.deployment_ids)
        await self._add_event(command.event, None, command.deliveries)

    def _full(self, row: ReleaseRow) -> ReleaseRow:
        links = self._release_links[row.id]
        deployments = [self.records[i][1] for i in links if i in self.records]
        return replace(row, deployments=deployments)

    async def get_release(self, release_id: str) -> ReleaseRow | None:
        """One release with its (current) deployments."""
        row = self.releases.get(release_id)
        return self._full(row) if row else None

    async def list_releases(self, limit: int, after: Cursor | None = None) -> ReleasePage:
        """Newest first by (created_at, seq)."""
        rows = sorted(self.releases.values(), key=lambda r: (r.created_at, r.seq), reverse=True)
        if after is not None:
            rows = [r for r in rows if (r.created_at, r.seq) < (after.occurred_at, after.seq)]
        items = [self._full(r) for r in rows[:limit]]
        more = len(rows) > limit and items
        nxt = Cursor(occurred_at=items[-1].created_at, seq=items[-1].seq) if more else None
        return ReleasePage(items=items, next_cursor=nxt)
