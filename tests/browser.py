"""A real browser for the browser tests: Debian's `chromium`, driven by Playwright.

Playwright's own browser download is not used: the tests launch the system Chromium by
its path. `python -m tests.browser install` installs Debian's `chromium` package when it
is missing (needs root and apt-get), the way tests/pg_cluster.py installs PostgreSQL.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.apt import apt_install

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Headless, as root in a container, and quiet: with no background networking Chromium
# makes no request of its own, so every request a test sees comes from the page.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def chromium_path() -> str | None:
    """The system Chromium's executable, if there is one."""
    override = os.environ.get("TEST_CHROMIUM")
    if override:
        return override if Path(override).exists() else None
    return next((path for path in CANDIDATES if Path(path).exists()), None)


def install() -> str | None:
    """Install Debian's chromium unless it is there; None on success, else why not."""
    if chromium_path() is not None:
        return None
    reason = apt_install("chromium", "Chromium")
    if reason is not None:
        return reason
    return None if chromium_path() else "apt-get installed chromium but found no executable"


def main(argv: list[str]) -> int:
    """`install` the browser; the tests themselves skip (or fail under CI) and say why."""
    if (argv[0] if argv else "install") != "install":
        print("usage: python -m tests.browser install", file=sys.stderr)
        return 2
    reason = install()
    print(reason or f"Chromium: {chromium_path()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
