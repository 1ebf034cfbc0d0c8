"""The event loop of the long-running commands: uvloop by default where it is installed,
the standard library's on request, and a clear error when uvloop is required but missing."""

from __future__ import annotations

import asyncio
import sys

import pytest

from relay.cli import _loop_factory, _run_loop
from relay.errors import ConfigError
from relay.settings import build_settings


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_relay_on_uvloop_when_installed() -> None:
    """The default (auto) runs the command's coroutine on a uvloop loop."""
    settings = build_settings({})
    assert settings.server.event_loop == "auto"
    assert _run_loop(settings, _loop_module()).startswith("uvloop")


def test_asyncio_opts_out_of_uvloop() -> None:
    """server.event_loop = "asyncio" runs on the standard library's loop."""
    settings = build_settings({"server": {"event_loop": "asyncio"}})
    assert _loop_factory("asyncio") is None
    assert _run_loop(settings, _loop_module()).startswith("asyncio")


def test_auto_falls_back_and_uvloop_is_refused_when_not_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without uvloop, auto uses asyncio and an explicit uvloop is a config error."""
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert _loop_factory("auto") is None
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        _loop_factory("uvloop")
    assert _loop_factory("asyncio") is None


def test_an_unknown_event_loop_is_a_config_error() -> None:
    """Anything but auto, uvloop or asyncio is refused with the setting named."""
    with pytest.raises(ConfigError) as caught:
        build_settings({"server": {"event_loop": "trio"}})
    assert any("event_loop" in d["field"] for d in caught.value.details)
