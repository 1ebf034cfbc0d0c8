"""The console of a CI job, which may go away (`relay deploy run … | head`)."""

from __future__ import annotations

import contextlib
import os
from typing import BinaryIO, TextIO


def silence(stream: BinaryIO | TextIO) -> None:
    """Point a console stream whose reader went away at /dev/null, so that nothing
    (interpreter shutdown included) fails writing to it again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
