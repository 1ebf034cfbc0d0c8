"""When the background checkpoint is enough, and when the writer has to finish it
(relay/store/sqlite/checkpoint.py: Checkpointer)."""

from __future__ import annotations

import asyncio

from relay.store.sqlite.checkpoint import CATCH_UP_FRAMES, Checkpointer, Progress


class Fake:
    """A store whose commit count and checkpoint answers the test sets."""

    def __init__(self, progress: Progress) -> None:
        self.commits = 0
        self.progress = progress
        self.checkpoints = 0
        self.catch_ups = 0

    async def checkpoint(self) -> Progress:
        self.checkpoints += 1
        return self.progress

    async def catch_up(self) -> None:
        self.catch_ups += 1


async def _run(fake: Fake, commits: int, idle: float = 0.0) -> None:
    checkpointer = Checkpointer(lambda: fake.commits, fake.checkpoint, fake.catch_up, 0.01)
    checkpointer.start()
    try:
        for _ in range(commits):
            fake.commits += 1
            await asyncio.sleep(0.03)
        await asyncio.sleep(idle)
    finally:
        await checkpointer.close()


async def test_a_complete_background_checkpoint_leaves_the_writer_alone() -> None:
    """A checkpoint that copied the whole (short) WAL needs no help from the writer."""
    fake = Fake((0, CATCH_UP_FRAMES // 2, CATCH_UP_FRAMES // 2))
    await _run(fake, 5)
    assert fake.checkpoints >= 3
    assert fake.catch_ups == 0


async def test_a_short_wal_left_behind_waits_for_the_next_checkpoint() -> None:
    """A few frames the writer added meanwhile are left to the next background round."""
    fake = Fake((0, 500, 480))
    await _run(fake, 5)
    assert fake.checkpoints >= 3
    assert fake.catch_ups == 0


async def test_a_long_wal_is_finished_by_the_writer() -> None:
    """A WAL of CATCH_UP_FRAMES or more did not start over since the last checkpoint
    (the writer never paused): the writer's own checkpoint follows, even when the
    background one copied every frame it saw."""
    fake = Fake((0, CATCH_UP_FRAMES, CATCH_UP_FRAMES))
    await _run(fake, 5)
    assert fake.checkpoints >= 3
    assert fake.catch_ups == fake.checkpoints


async def test_nothing_is_checkpointed_while_nothing_is_committed() -> None:
    """An idle store is not checkpointed over and over."""
    fake = Fake((0, 0, 0))
    await _run(fake, 0, idle=0.1)
    assert fake.checkpoints == 0
