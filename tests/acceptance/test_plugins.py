"""A third-party forwarder plugged into a whole relay: a constructed entry point and a
Registry passed to build_settings and create_app, no change to relay."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient

from forwarders.base import Delivered, Event, ForwarderConfig, SendContext
from relay.app import create_app
from relay.delivery.plugins import GROUP, Registry
from relay.standins.webhook import WebhookReceiver
from tests import plugin_forwarder
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


async def test_a_plugin_importing_only_the_plugin_api_delivers_over_http(
    aiohttp_client: AiohttpClient, aiohttp_server: Any, tmp_path: Path
) -> None:
    """A forwarder module that imports only `forwarders.base` sends its own HTTP request
    through relay's transport and the target gets it."""
    received: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    target = web.Application()
    target.router.add_post("/hook", hook)
    server = await aiohttp_server(target)
    plugin = EntryPoint(name="chat", value="tests.plugin_forwarder:ChatForwarder", group=GROUP)
    registry = Registry(eps=[*entry_points(group=GROUP), plugin])
    table = {"name": "room", "type": "chat", "url": str(server.make_url("/hook"))}
    settings = engine_settings(tmp_path / "relay.db", [table], registry=registry)
    client = await aiohttp_client(create_app(settings, registry=registry))
    await create(client, "api", {"version": "2.0", "stage": "production"})

    await eventually(lambda: received)
    assert received == [{"text": "api 2.0 → production"}]
    imported = [
        line.split()[1]
        for line in Path(plugin_forwarder.__file__).read_text().splitlines()
        if line.startswith(("import ", "from "))
    ]
    assert [m for m in imported if m.startswith(("relay", "forwarders"))] == ["forwarders.base"]
