"""Run a wrapped command: pass its output through, hand every line on, forward signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import BinaryIO

from relay.client.console import silence

CHUNK = 65536
# After the command exits, how long its pipes may stay open (a daemon it started can
# hold them for ever) before the last bytes are taken as they are.
DRAIN_GRACE = 5.0
FORWARDED = (signal.SIGINT, signal.SIGTERM)
NOT_FOUND = 127  # the shell's code for a command that cannot be run


@dataclass(frozen=True)
class Outcome:
    """How the command ended: its exit code (shell style) and the signal we forwarded."""

    code: int
    interrupted: int | None


def _pump(source: BinaryIO, sink: BinaryIO, on_line: Callable[[str], None]) -> None:
    """Copy `source` to `sink` chunk by chunk (unbuffered) and call `on_line` per line."""
    partial = b""
    fd = source.fileno()
    passing = True
    while chunk := os.read(fd, CHUNK):
        if passing:
            try:
                sink.write(chunk)
                sink.flush()
            except OSError:  # the console went away (`| head`): keep reading, or the
                passing = False  # command would block on a full pipe
                silence(sink)
        partial += chunk
        *lines, partial = partial.split(b"\n")
        for line in lines:
            on_line(line.removesuffix(b"\r").decode("utf-8", "replace"))
    if partial:
        on_line(partial.decode("utf-8", "replace"))


def run(argv: Sequence[str], on_line: Callable[[str], None]) -> Outcome:
    """Run `argv` to its end; SIGINT/SIGTERM received meanwhile are passed on to it, and
    ignored once it has ended."""
    try:
        child = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        message = f"relay: cannot run {argv[0]!r}: {exc.strerror or exc}"
        print(message, file=sys.stderr, flush=True)
        on_line(message)
        return Outcome(NOT_FOUND, None)
    assert child.stdout is not None and child.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(pipe, sink, on_line), daemon=True)
        for pipe, sink in (
            (child.stdout, sys.stdout.buffer),
            (child.stderr, sys.stderr.buffer),
        )
    ]
    for pump in pumps:
        pump.start()
    received: list[int] = []

    def forward(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        if child.poll() is None:
            child.send_signal(signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    status = child.wait()
    # From here on relay is being told how it ended: a CI's follow-up SIGTERM must not cut
    # that short (each request is bounded by its timeout and retries, the flush by its own).
    for sig in FORWARDED:
        signal.signal(sig, signal.SIG_IGN)
    for pump in pumps:
        pump.join(DRAIN_GRACE)
    for pump, pipe in zip(pumps, (child.stdout, child.stderr), strict=True):
        if not pump.is_alive():  # a pipe a daemon still holds stays open: its pump reads it
            pipe.close()
    code = 128 - status if status < 0 else status  # killed by signal N: 128 + N
    return Outcome(code, received[0] if received else None)
