"""Forwarder discovery: every forwarder, built-ins included, is an entry point."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from forwarders.base import Forwarder, ForwarderConfig
from relay.errors import ConfigError

GROUP = "relay.forwarders"


class Registry:
    """Forwarder classes by `type` name."""

    def __init__(self, eps: Iterable[EntryPoint] | None = None) -> None:
        self._eps = {ep.name: ep for ep in (entry_points(group=GROUP) if eps is None else eps)}
        self._loaded: dict[str, type[Forwarder]] = {}

    def names(self) -> list[str]:
        """Every registered type name."""
        return sorted(self._eps)

    def get(self, type_name: str) -> type[Forwarder]:
        """The forwarder class registered as `type_name`; ConfigError if unknown."""
        if type_name not in self._loaded:
            ep = self._eps.get(type_name)
            if ep is None:
                raise ConfigError(
                    f"unknown forwarder type {type_name!r}; installed: {', '.join(self.names())}"
                )
            try:
                self._loaded[type_name] = ep.load()
            except Exception as exc:  # a broken plugin is a configuration problem
                raise ConfigError(
                    f"forwarder type {type_name!r} ({ep.value}) cannot be loaded: "
                    f"{type(exc).__name__}: {exc}"
                ) from None
        return self._loaded[type_name]

    def validate(self, raw: dict[str, Any], where: str) -> ForwarderConfig:
        """Validate one `[[forwarders]]` table with its type's Config model."""
        type_name = raw.get("type")
        if not isinstance(type_name, str):
            raise ConfigError(
                "invalid configuration",
                details=[{"field": f"{where}.type", "message": "a forwarder needs a type"}],
            )
        try:
            cls = self.get(type_name)
        except ConfigError as exc:
            raise ConfigError(
                "invalid configuration",
                details=[{"field": f"{where}.type", "message": exc.message}],
            ) from None
        try:
            return cls.Config.model_validate(raw)
        except ValidationError as exc:
            # The forwarder's name says which one is meant better than its index.
            name = raw.get("name")
            prefix = f"forwarder {name!r}: " if isinstance(name, str) and name else ""
            details = [
                {"field": ".".join([where, *map(str, e["loc"])]), "message": prefix + e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise ConfigError("invalid configuration", details=details) from None


_default: Registry | None = None


def default_registry() -> Registry:
    """The registry of installed entry points (read once per process)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default
