"""Lease owners that name their process.

A delivery's lease says who is sending it. SQLite is shared by the processes of one
machine (`relay serve`, `relay worker`, CLI commands), so an owner id carries the host
and process id: a process opening the file can then free the leases of a process
that died (at once, rather than when they run out) without touching those of a
process that is still sending.
"""

from __future__ import annotations

import os
import socket
import uuid


def new_owner() -> str:
    """A lease owner id for this process: `host:pid:random`."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def owner_gone(owner: str) -> bool:
    """True when `owner` is known not to run any more: a process of this host that has
    exited, or an id without a process in it (written by an older relay)."""
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return True
    host, pid = parts[0], int(parts[1])
    if host != socket.gethostname():
        return False  # another machine's process: only its lease's end frees it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # it runs, as another user
    return False
