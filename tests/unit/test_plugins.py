"""Forwarder discovery (relay/delivery/plugins.py): the built-ins are entry points of the group
"relay.forwarders", and a third-party forwarder declared the same way works with no
change to relay."""

from __future__ import annotations

import asyncio
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from forwarders.base import Delivered, Event, ForwarderConfig, SendContext
from forwarders.webhook import WebhookForwarder
from relay.delivery.http import HttpRequest, HttpResponse, MockTransport
from relay.delivery.plugins import GROUP, Registry, default_registry
from relay.errors import ConfigError
from relay.records.service import RecordService, planner_for
from relay.store.memory.store import MemoryStore
from relay.worker import build_dispatcher
from tests.delivery_support import ADMIN, engine_settings, eventually

BUILT_INS = {"grafana", "sentry", "bugsnag", "newrelic", "webhook"}


class SinkConfig(ForwarderConfig):
    """The configuration of the test plugin: a bucket name and an API key."""

    bucket: str
    api_key: SecretStr

    def secrets(self) -> list[str]:
        """The API key is a secret."""
        return [self.api_key.get_secret_value()]


class SinkForwarder:
    """A third-party forwarder defined outside relay: keeps what it is given."""

    type: ClassVar[str] = "testsink"
    Config: ClassVar[type[SinkConfig]] = SinkConfig
    received: ClassVar[list[tuple[str, Event, SendContext]]] = []

    def __init__(self, config: SinkConfig) -> None:
        self.config = config

    async def send(self, event: Event, context: SendContext) -> Delivered:
        """Remember the event under the configured bucket."""
        SinkForwarder.received.append((self.config.bucket, event, context))
        return Delivered(200, "stored")


SINK = EntryPoint(name="testsink", value=f"{__name__}:SinkForwarder", group=GROUP)
SINK_TABLE: dict[str, Any] = {
    "name": "sink",
    "type": "testsink",
    "bucket": "deploys",
    "api_key": "sink-api-key-0123",
}


def with_sink() -> Registry:
    """The installed forwarders plus the test plugin."""
    return Registry(eps=[*entry_points(group=GROUP), SINK])


def test_the_five_built_ins_are_installed_entry_points() -> None:
    """grafana, sentry, bugsnag, newrelic and webhook are found through the entry-point group."""
    installed = {ep.name: ep for ep in entry_points(group="relay.forwarders")}
    assert set(installed) >= BUILT_INS
    assert installed["webhook"].value == "forwarders.webhook:WebhookForwarder"
    assert set(Registry().names()) >= BUILT_INS
    assert set(default_registry().names()) >= BUILT_INS


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_each_built_in_loads_as_a_forwarder_class(name: str) -> None:
    """Every built-in entry point loads a class with that `type` and a Config model."""
    cls = Registry().get(name)
    assert cls.type == name
    assert issubclass(cls.Config, ForwarderConfig)
    assert callable(cls.send)


def test_a_third_party_forwarder_is_registered_from_its_entry_point() -> None:
    """A constructed EntryPoint is all a plugin needs: relay loads its class by name."""
    registry = Registry(eps=[SINK])
    assert registry.names() == ["testsink"]
    assert registry.get("testsink") is SinkForwarder
    assert with_sink().get("webhook") is WebhookForwarder


def test_settings_validate_the_plugins_own_keys() -> None:
    """build_settings uses the plugin's Config model: its keys, types and secrets."""
    settings = engine_settings(None, [SINK_TABLE], registry=with_sink())
    (config,) = settings.forwarders
    assert isinstance(config, SinkConfig)
    assert config.bucket == "deploys" and config.type == "testsink"
    assert "sink-api-key-0123" in settings.secrets()

    with pytest.raises(ConfigError) as info:
        engine_settings(None, [{**SINK_TABLE, "bucket": None}], registry=with_sink())
    assert [d["field"] for d in info.value.details] == ["forwarders[0].bucket"]
    # The message names the forwarder, which says which one better than its index.
    assert info.value.details[0]["message"].startswith(f"forwarder {SINK_TABLE['name']!r}: ")


def test_an_unknown_type_lists_the_installed_ones() -> None:
    """A type no entry point provides is a config error naming what is installed."""
    with pytest.raises(ConfigError) as info:
        engine_settings(None, [SINK_TABLE])  # the default registry has no testsink
    (detail,) = info.value.details
    assert detail["field"] == "forwarders[0].type"
    assert "testsink" in detail["message"] and "webhook" in detail["message"]


def _no_network(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the sink makes no request")


async def test_a_plugin_forwarder_receives_deliveries() -> None:
    """The dispatcher built with that registry delivers events to the plugin."""
    SinkForwarder.received.clear()
    registry = with_sink()
    settings = engine_settings(None, [SINK_TABLE], registry=registry)
    store = MemoryStore()
    dispatcher = build_dispatcher(settings, store, MockTransport(_no_network), registry)
    assert isinstance(dispatcher.targets["sink"].forwarder, SinkForwarder)
    service = RecordService(
        store, planner_for(settings.forwarders), on_recorded=lambda _: dispatcher.wake()
    )
    await dispatcher.start()
    try:
        result = await service.record("deployment", "api", {"version": "9.9.9"}, ADMIN)
        await eventually(lambda: SinkForwarder.received)
        await asyncio.sleep(0.05)
    finally:
        await dispatcher.stop(grace=1)
    ((bucket, event, context),) = SinkForwarder.received
    assert bucket == "deploys"
    assert event.type == "deployment.created" and event.data["version"] == "9.9.9"
    assert event.data["id"] == result.answer.body["id"]
    (delivery,) = store.rows.values()
    assert delivery.status == "delivered" and context.delivery_id == delivery.id


def test_a_broken_plugin_is_a_config_error_naming_it() -> None:
    """A forwarder entry point that cannot be imported is reported as a config problem."""
    broken = EntryPoint(name="broken", value="no_such_module_here:Nothing", group=GROUP)
    with pytest.raises(ConfigError) as caught:
        Registry(eps=[broken]).get("broken")
    assert "broken" in caught.value.message
    assert "no_such_module_here" in caught.value.message
