"""What a benchmark reads about its server processes from /proc: CPU time and memory of a
process together with its descendants (`relay worker --processes N` forks)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return text[text.rindex(")") + 2 :].split()


def family(pid: int) -> list[int]:
    """`pid` and every live descendant of it."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by `pids` and their live descendants."""
    total = 0
    for pid in {p for root in pids for p in family(root)}:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def rss_bytes(pids: list[int]) -> int:
    """Resident memory now of `pids` and their live descendants, added up."""
    total = 0
    for pid in {p for root in pids for p in family(root)}:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[21]) * PAGE
    return total
