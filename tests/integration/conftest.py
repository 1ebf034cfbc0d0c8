"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from relay.http import AiohttpTransport
from relay.netguard import parse_networks
from tests.support import ALLOW_LOOPBACK


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """The real HTTP transport (loopback allowed), closed after the test."""
    real = AiohttpTransport(allow_networks=parse_networks(ALLOW_LOOPBACK["allow_networks"]))
    yield real
    await real.close()
