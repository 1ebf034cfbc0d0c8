"""Group commit for PostgreSQL: payloads queued while one batch is being written go
together in the next one, in a single transaction of a few multi-row statements.

Each caller gets its own answer (or its own error) once that transaction has committed,
so a request is acknowledged only after its rows are durable, and a busy relay writes
hundreds of rows per round trip instead of one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from relay.errors import StoreError, StoreUnavailable

P = TypeVar("P")
# What a batch writer answers per payload: (True, result) or (False, exception).
Outcome = tuple[bool, Any]
Writer = Callable[[list[P]], Awaitable[list[Outcome]]]


class Batcher(Generic[P]):
    """Runs `write` on everything queued, one batch at a time, at most `batch_max` each.

    When a whole batch fails for a reason that is not the database being unreachable
    (one bad payload), its payloads are written again one by one so that only the bad
    one fails."""

    def __init__(self, write: Writer[P], *, batch_max: int = 512) -> None:
        self._write = write
        self._batch_max = batch_max
        self._queue: list[tuple[P, asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, payload: P) -> Any:
        """Write `payload` in the next batch; its result once the batch has committed."""
        if self._closed:
            raise StoreError("the store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((payload, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain(), name="relay-pg-group-commit")
        return await future

    async def close(self) -> None:
        """Finish what is queued (each caller gets its answer); refuse anything new."""
        self._closed = True
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._batch_max]
                del self._queue[: self._batch_max]
                outcomes = await self._outcomes([payload for payload, _ in batch])
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue  # the caller gave up (e.g. its client went away)
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._task = None

    async def _outcomes(self, payloads: list[P]) -> list[Outcome]:
        try:
            return await self._write(payloads)
        except StoreUnavailable as exc:
            return [(False, exc)] * len(payloads)
        except Exception as exc:
            if len(payloads) == 1:
                return [(False, exc)]
        return [(await self._outcomes([payload]))[0] for payload in payloads]
