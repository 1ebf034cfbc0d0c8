"""The client's last line of defence: a fault of its own (any exception, not only the ones
it expects) never blocks a --soft deploy, nor changes the exit code of a command that ran.
Our own functions are replaced to raise; the wrapped command is real."""

from __future__ import annotations

from typing import Any

import pytest

from relay.client import actions
from relay.client.commands import build_parser

COMMAND = ["--", "sh", "-c", "exit 5"]


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("a fault of the client")


def _run(*flags: str) -> int:
    args = build_parser().parse_args(["deploy", "run", "-C", "web", "--version", "1", *flags])
    args.command = args.command[1:]
    return actions.dispatch(args)


def test_a_fault_before_the_command_runs_it_unreported_under_soft(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--soft: the command still runs, its code is the answer, one warning says why."""
    monkeypatch.setattr(actions, "gather", _boom)
    assert _run("--url", "http://127.0.0.1:9", "--soft", *COMMAND) == 5
    err = capsys.readouterr().err
    assert err.startswith("relay: warning: unexpected RuntimeError")
    assert "running the command without reporting it" in err


def test_a_fault_before_the_command_without_soft_still_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --soft the fault is not hidden (nothing ran yet)."""
    monkeypatch.setattr(actions, "gather", _boom)
    with pytest.raises(RuntimeError):
        _run("--url", "http://127.0.0.1:9", *COMMAND)


def test_a_fault_after_the_command_keeps_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the command has run, a fault while finishing the report only warns."""
    monkeypatch.setattr(actions, "end", _boom)
    assert _run("--dry-run", "--no-facts", *COMMAND) == 5
    assert "relay: warning: the deployment could not be finished" in capsys.readouterr().err
