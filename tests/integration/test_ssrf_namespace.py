"""End-to-end SSRF checks in a network namespace of their own, with only loopback up:
whatever the guard does, no packet can leave this machine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@cache
def namespace_problem() -> str | None:
    """Why a network namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is not installed"
    probe = subprocess.run(
        ["unshare", "--net", "sh", "-c", "ip link set lo up"],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if probe.returncode == 0 else f"no network namespace: {probe.stderr.strip()}"


@pytest.mark.slow
def test_disguised_loopback_hosts_are_refused_before_connecting() -> None:
    """`2130706433`, `127.1`, `0x7f.1`, NAT64 and 6to4 forms of 127.0.0.1 are refused as
    such by relay's transport, and no request reaches a loopback listener."""
    if (problem := namespace_problem()) is not None:
        pytest.skip(problem)
    run = subprocess.run(
        [
            "unshare",
            "--net",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" -m tests.ssrf_probe',
            sys.executable,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["hits"] == 0
    for host, outcome in report["outcomes"].items():
        assert outcome.startswith("refused: "), f"{host}: {outcome}"
