"""Writes the dispatcher's completions in groups.

A send's slot hands its completion over and goes on with the next send: whatever
finished while one group was being written goes into the next store call. A delivery
stays leased (and its lease renewed) until its completion is written, and its
deployment's next event is not claimable before that, so the order of a deployment's
events and at-least-once delivery are those of a completion written one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from relay.store.base import Claimed, Completion, Store

log = structlog.get_logger("relay.dispatch")

Listener = Callable[[Completion, Claimed], None]


class Recorder:
    """Completions waiting to be written, and the one task writing them."""

    def __init__(
        self,
        store: Store,
        held: set[str],
        listeners: list[Listener],
        on_written: Callable[[], None],
    ) -> None:
        self.store = store
        self._held = held  # leases renewed until their completion is written
        self._listeners = listeners
        self._on_written = on_written
        self._pending: list[tuple[Claimed, Completion]] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, claimed: Claimed, completion: Completion) -> None:
        """Queue `completion` for the next write; never waits."""
        self._pending.append((claimed, completion))
        if self._task is None:
            self._task = asyncio.create_task(self._write(), name="relay-completions")

    async def drain(self) -> None:
        """Wait until every completion queued so far is written (or has failed)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    async def _write(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write_batch(batch)
        finally:
            self._task = None

    async def _write_batch(self, batch: list[tuple[Claimed, Completion]]) -> None:
        failed: set[str] = set()
        try:
            await self.store.complete_many([completion for _, completion in batch])
        except Exception:
            failed = await self._one_by_one(batch)
        for claimed, completion in batch:
            self._held.discard(claimed.id)
            if claimed.id in failed:
                continue
            for listener in self._listeners:
                try:
                    listener(completion, claimed)
                except Exception:
                    log.exception("delivery_listener_failed", delivery_id=claimed.id)
        self._on_written()

    async def _one_by_one(self, batch: list[tuple[Claimed, Completion]]) -> set[str]:
        # One completion the store refuses must not cost the others theirs.
        failed: set[str] = set()
        for claimed, completion in batch:
            try:
                await self.store.complete(completion)
            except Exception:
                # The lease runs out and the delivery is claimed again: nothing is lost.
                log.exception("delivery_not_recorded", delivery_id=claimed.id)
                failed.add(claimed.id)
        return failed
