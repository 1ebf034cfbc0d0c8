"""Worker processes (relay/worker.py): how a forwarder's concurrency is shared out,
and how the other processes are started."""

from __future__ import annotations

import sys

import pytest

from relay.worker import Share, child_command


@pytest.mark.parametrize(
    ("total", "count", "parts"),
    [
        (8, 1, [8]),
        (8, 2, [4, 4]),
        (5, 2, [3, 2]),
        (5, 3, [2, 2, 1]),
        (1, 2, [1, 0]),
        (2, 4, [1, 1, 0, 0]),
    ],
)
def test_the_parts_add_up_to_the_configured_concurrency(
    total: int, count: int, parts: list[int]
) -> None:
    """A target never sees more sends at once than one process would start."""
    assert [Share(k, count).of(total) for k in range(count)] == parts


def test_a_share_is_read_from_its_command_line_form() -> None:
    """`k/N` names process k of N."""
    assert Share.parse("1/3") == Share(1, 3)


@pytest.mark.parametrize("text", ["3/3", "-1/2", "1/0", "one/2", "2"])
def test_a_share_outside_the_processes_is_refused(text: str) -> None:
    """An index that is not one of the N processes is an error."""
    with pytest.raises(ValueError):
        Share.parse(text)


def test_another_process_runs_the_same_interpreter_and_config() -> None:
    """Process k is `relay worker` on the same config, told which share it is."""
    argv = child_command("/etc/relay.toml", Share(1, 2))
    assert argv[0] == sys.executable
    assert argv[1:] == [
        *("-m", "relay.cli", "worker", "--share", "1/2", "--config", "/etc/relay.toml")
    ]
    assert "--config" not in child_command(None, Share(1, 2))
