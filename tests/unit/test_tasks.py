"""Stopping background tasks (relay/tasks.py)."""

from __future__ import annotations

import asyncio

from relay.tasks import cancel_and_wait


async def test_a_running_task_is_finished_when_the_call_returns() -> None:
    """The task is cancelled and done; its CancelledError does not reach the caller."""
    task = asyncio.create_task(asyncio.sleep(60))
    await cancel_and_wait(task)
    assert task.done() and task.cancelled()


async def test_no_task_is_nothing_to_stop() -> None:
    """None (a task never started) is accepted."""
    await cancel_and_wait(None)
