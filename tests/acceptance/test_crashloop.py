"""bench/crashloop.py in a shortened form: kill -9 under load loses no acknowledged event."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "crashloop.py"


def test_three_kill_9_cycles_lose_no_acknowledged_event(capsys: pytest.CaptureFixture[str]) -> None:
    """Events answered 201 before any of three kill -9s are all stored and delivered."""
    spec = importlib.util.spec_from_file_location("crashloop", SCRIPT)
    assert spec is not None and spec.loader is not None
    crashloop = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crashloop)
    code = crashloop.main(["--cycles", "3", "--seed", "6"])
    report = capsys.readouterr().out
    figures = dict(line.split() for line in report.splitlines())
    assert code == 0, report
    assert int(figures["events_acknowledged"]) > 0, report
    assert figures["lost"] == "0", report
