"""Lines of a wrapped command, sent to the deployment's output log in the background.

`add` never blocks and never does I/O: a sender thread takes what has accumulated every
`interval` (or sooner, once a batch is full) and POSTs it. A failed batch is kept and
sent again, so the log stays in order; lines past `max_pending` (relay unreachable for a
long time) are dropped from the middle, never from the tail, and the gap is marked."""

from __future__ import annotations

import threading
import time
from collections import deque

from relay.client.transport import ClientError, Transient, Transport

BATCH_BYTES = 256 * 1024  # well under relay's default 1 MiB body limit
MAX_PENDING_BYTES = 16 * 1024 * 1024
INTERVAL = 0.5
PAUSE_AFTER_FAILURE = 2.0


class OutputLog:
    """The output log of one deployment, fed line by line."""

    def __init__(
        self,
        transport: Transport,
        path: str,
        *,
        interval: float = INTERVAL,
        max_pending: int = MAX_PENDING_BYTES,
    ) -> None:
        self.transport = transport
        self.path = path
        self.interval = interval
        self.max_pending = max_pending
        self.sent_lines = 0  # lines of the log after our last append, as relay counted them
        self.failure: str | None = None  # the last error, for the final warning
        self._pending: deque[str] = deque()
        self._pending_bytes = 0
        self._dropped = 0
        self._inflight: list[str] = []
        self._dropped_in_batch = 0
        self._closing = False
        self._refused = False  # relay refused for good (e.g. 413, the log is full)
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="relay-output", daemon=True)
        self._thread.start()

    def add(self, line: str) -> None:
        """Queue one line (without its newline)."""
        with self._wake:
            self._pending.append(line)
            self._pending_bytes += len(line) + 1
            while self._pending_bytes > self.max_pending and len(self._pending) > 1:
                self._pending_bytes -= len(self._pending.popleft()) + 1  # oldest, never the tail
                self._dropped += 1
            if self._pending_bytes >= BATCH_BYTES:
                self._wake.notify()

    def close(self, timeout: float) -> bool:
        """Send what is left (waiting at most `timeout` s); True when every line was sent."""
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(timeout)
        return self.unsent == 0 and not self._refused

    @property
    def unsent(self) -> int:
        """Lines not (yet) in relay's log."""
        with self._wake:
            return len(self._pending) + self._dropped + len(self._inflight)

    def _take(self) -> list[str]:
        """Move the next batch from the queue to `_inflight` (the caller holds the lock)."""
        batch: list[str] = []
        size = 0
        if self._dropped:
            batch.append(f"[relay: {self._dropped} lines were not sent]")
            self._dropped_in_batch, self._dropped = self._dropped, 0
        while self._pending:
            line = self._pending[0]
            if batch and size + len(line) + 1 > BATCH_BYTES:
                break
            batch.append(self._pending.popleft())
            self._pending_bytes -= len(line) + 1
            size += len(line) + 1
        self._inflight = batch
        return batch

    def _settle(self, sent: bool) -> None:
        """Forget the batch in flight, or put it back in front of the queue."""
        with self._wake:
            batch, self._inflight = self._inflight, []
            dropped, self._dropped_in_batch = self._dropped_in_batch, 0
            if sent:
                return
            if dropped:
                batch = batch[1:]  # the marker is made again from the count
                self._dropped += dropped
            self._pending.extendleft(reversed(batch))
            self._pending_bytes += sum(len(line) + 1 for line in batch)

    def _run(self) -> None:
        while True:
            with self._wake:
                if not self._pending and not self._dropped:
                    if self._closing:
                        return
                    self._wake.wait(self.interval)
                    continue
                if not self._closing and self._pending_bytes < BATCH_BYTES:
                    self._wake.wait(self.interval)  # let a batch gather
                batch = self._take()
            sent = self._send(batch)
            self._settle(sent)
            if not sent:
                if self._refused or self._closing:
                    return  # nothing more will get through before the command exits
                time.sleep(PAUSE_AFTER_FAILURE)

    def _send(self, batch: list[str]) -> bool:
        """POST one batch; True when it is in the log."""
        text = "".join(f"{line}\n" for line in batch)
        try:
            answer = self.transport.request("POST", self.path, text=text, retry_applied=False)
        except Transient as exc:
            if exc.maybe_applied and self._landed(len(batch)):
                self.failure = None
                return True
            self.failure = str(exc)
            return False
        except ClientError as exc:
            self.failure = str(exc)
            self._refused = True
            return False
        if isinstance(answer.body, dict) and isinstance(answer.body.get("lines"), int):
            self.sent_lines = answer.body["lines"]
        else:
            self.sent_lines += len(batch)
        self.failure = None
        return True

    def _landed(self, count: int) -> bool:
        """After an answer that never came: did relay append the batch anyway?"""
        try:
            answer = self.transport.request("GET", self.path)
        except ClientError:
            return False
        if not isinstance(answer.body, str):
            return False
        lines = answer.body.count("\n")
        if lines >= self.sent_lines + count:
            self.sent_lines = lines
            return True
        return False
