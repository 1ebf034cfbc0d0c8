"""Fixtures every test folder shares."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without RELAY_* variables and with structlog's default set-up."""
    for name in list(os.environ):
        if name.startswith("RELAY_"):
            monkeypatch.delenv(name)
    structlog.reset_defaults()
    yield
    # `relay.cli.main` configures structlog to write to the stream of that moment
    # (pytest's capture): never let a later test write to it.
    structlog.reset_defaults()
