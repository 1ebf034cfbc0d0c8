"""scripts/soak.py in a shortened form: retention keeps the SQLite database bounded."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def test_twelve_seconds_of_deployments_keep_the_database_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With 3 s retention, the database and row counts stop growing after the warm-up."""
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "soak", soak)  # its dataclass looks itself up there
    spec.loader.exec_module(soak)
    out = io.StringIO()
    code = soak.main(["--duration", "12", "--rate", "40", "--warmup", "5"], out=out)
    report = out.getvalue()
    figures = dict(line.split(None, 1) for line in report.splitlines() if line[:1].isalpha())
    assert code == 0, report
    assert int(figures["posted"]) > 300, report
    assert figures["failed"] == "0", report
    # Retention really pruned: far fewer events are kept than were posted.
    assert int(figures["events"].strip("()").split(", ")[1]) < int(figures["posted"]) / 2, report
