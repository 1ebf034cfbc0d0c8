"""A third-party forwarder plugged into a whole relay: a constructed entry point and a
Registry passed to build_settings and create_app, no change to relay."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar

from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from forwarders.base import Delivered, Event, ForwarderConfig, SendContext
from relay.app import create_app
from relay.plugins import GROUP, Registry
from relay.receivers.webhook import WebhookReceiver
from tests.acceptance.api import bearer, create
from tests.delivery_support import SECRET, engine_settings, eventually, webhook
from tests.support import ADMIN_TOKEN


class SinkConfig(ForwarderConfig):
    """The plugin's keys: where to keep events, and a credential."""

    bucket: str
    api_key: SecretStr

    def secrets(self) -> list[str]:
        """The API key is a secret."""
        return [self.api_key.get_secret_value()]


class SinkForwarder:
    """A forwarder that lives in this test module, not in relay."""

    type: ClassVar[str] = "testsink"
    Config: ClassVar[type[SinkConfig]] = SinkConfig
    events: ClassVar[list[tuple[str, Event]]] = []

    def __init__(self, config: SinkConfig) -> None:
        self.config = config

    async def send(self, event: Event, context: SendContext) -> Delivered:
        """Keep the event."""
        SinkForwarder.events.append((self.config.bucket, event))
        return Delivered(200)


async def test_a_plugin_forwarder_runs_in_the_whole_relay(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """Events posted to the API reach the plugin beside a built-in webhook; the API lists it
    without its secret."""
    SinkForwarder.events.clear()
    plugin = EntryPoint(name="testsink", value=f"{__name__}:SinkForwarder", group=GROUP)
    registry = Registry(eps=[*entry_points(group=GROUP), plugin])
    recv = WebhookReceiver(SECRET)
    await recv.start()
    try:
        table: dict[str, Any] = {
            "name": "sink",
            "type": "testsink",
            "bucket": "audit",
            "api_key": "plugin-secret-key-42",
            "match": {"stages": ["production"]},
        }
        settings = engine_settings(
            tmp_path / "relay.db", [table, webhook("hook", recv.endpoint)], registry=registry
        )
        client = await aiohttp_client(create_app(settings, registry=registry))
        prod = await create(client, "api", {"version": "1.0", "stage": "production"})
        await create(client, "api", {"version": "1.1", "stage": "staging"})
        await eventually(lambda: SinkForwarder.events and len(recv.events) == 2)

        ((bucket, event),) = SinkForwarder.events
        assert bucket == "audit" and event.data["id"] == prod
        response = await client.get("/forwarders", headers=bearer(ADMIN_TOKEN))
        text = await response.text()
        found = {f["name"]: f for f in await response.json()}
        assert found["sink"]["type"] == "testsink" and found["sink"]["state"] == "active"
        assert found["sink"]["counts"]["delivered"] == 1
        assert "plugin-secret-key-42" not in text
    finally:
        await recv.stop()
