"""Installing a Debian package a test suite needs (PostgreSQL, Chromium), the same way
for each: only as root, only with apt-get, and saying why when it cannot."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def apt_install(package: str, what: str, *, timeout: float = 1200) -> str | None:
    """`apt-get install` `package` (after `apt-get update`); None on success, else why not.

    `what` names it in messages ("PostgreSQL", "Chromium")."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return f"{what} is not installed and installing it needs root (apt-get)"
    if shutil.which("apt-get") is None:
        return f"{what} is not installed and there is no apt-get to install it"
    print(f"installing {what} with apt-get (for its tests)…", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", package],
    ):
        try:
            done = subprocess.run(
                command, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"`{' '.join(command)}` failed: {exc}"
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip()[-800:]
            return f"`{' '.join(command)}` failed ({done.returncode}): {tail}"
    return None
