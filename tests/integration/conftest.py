"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.http import AiohttpTransport


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """The real HTTP transport, closed after the test."""
    real = AiohttpTransport()
    yield real
    await real.close()
