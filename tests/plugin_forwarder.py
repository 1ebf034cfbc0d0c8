"""A third-party forwarder as a plugin author writes it: it imports `forwarders.base`
and nothing else of relay, and sends its requests through the transport it is given."""

from __future__ import annotations

from typing import ClassVar

from forwarders.base import (
    Delivered,
    Event,
    ForwarderConfig,
    HttpRequest,
    SendContext,
    check_response,
)


class ChatConfig(ForwarderConfig):
    """Where the chat room's incoming hook listens."""

    url: str


def chat_request(config: ChatConfig, event: Event) -> HttpRequest:
    """The message posted for one event (pure)."""
    data = event.data
    text = f"{data.get('component')} {data.get('version')} → {data.get('stage')}"
    return HttpRequest.json_request("POST", config.url, {"text": text})


class ChatForwarder:
    """Posts one line per deployment to a chat room's incoming hook."""

    type: ClassVar[str] = "chat"
    Config: ClassVar[type[ChatConfig]] = ChatConfig

    def __init__(self, config: ChatConfig) -> None:
        self.config = config

    async def send(self, event: Event, context: SendContext) -> Delivered:
        """Post the line; the target's status decides retry or failure."""
        request = chat_request(self.config, event)
        response = await context.transport.send(request, timeout=context.timeout)
        check_response(response, context.now, what="chat")
        return Delivered(response.status)
