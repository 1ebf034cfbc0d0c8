"""Configuration: a TOML file with ${VAR} interpolation, overridden by RELAY_* env vars."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializeAsAny,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from forwarders.base import Duration, ForwarderConfig
from relay.delivery.netguard import Network, parse_networks, url_host_problem
from relay.delivery.plugins import Registry, default_registry
from relay.errors import ConfigError

DEFAULT_CONFIG = "config/relay.toml"
SCOPES = ("events:write", "events:read", "admin")
Scope = Literal["events:write", "events:read", "admin"]

DEFAULT_SCOPES: tuple[Scope, ...] = ("events:write", "events:read")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    strict_components: bool = False
    public_url: str | None = Field(
        default=None, description="Base URL used in Location and Link headers behind a proxy."
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description="Event loop of `relay serve` and `relay worker`: uvloop where it is "
        "installed (auto), required (uvloop), or the standard library's (asyncio).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Addresses (CIDRs) whose Forwarded / X-Forwarded-* headers are believed.",
    )
    header_timeout: Duration = Field(
        default=10.0, gt=0, description="Time to send a request's line and headers."
    )
    body_timeout: Duration = Field(default=30.0, gt=0, description="Time to send a body.")
    idle_timeout: Duration = Field(
        default=60.0, gt=0, description="How long an idle keep-alive connection is kept."
    )
    backlog: int = Field(
        default=2048,
        ge=1,
        le=65535,
        description="Connections the kernel queues for relay to accept (Linux caps it at "
        "net.core.somaxconn): a fleet connecting at once waits in it, not in TCP retries.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_cidrs(cls, values: list[str]) -> list[str]:
        parse_networks(values)  # ValueError names the bad CIDR
        return values


class RetentionSettings(_Section):
    """How long rows are kept (`[storage.retention]`); 0 or absent keeps them forever."""

    attempts: Duration = Field(
        default=0.0, description="Attempts of finished deliveries older than this are deleted."
    )
    deliveries: Duration = Field(
        default=0.0, description="Finished deliveries older than this go, with their attempts."
    )
    events: Duration = Field(
        default=0.0,
        description="Events older than this go, with their deliveries, once none is pending.",
    )
    deployments: Duration = Field(
        default=0.0,
        description="Deployments and builds last changed longer ago go, with everything "
        "about them; the latest and the live one of each component and stage stay.",
    )
    idempotency_keys: Duration = Field(
        default=0.0, description="Stored answers of Idempotency-Key requests older than this."
    )
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Rows per delete transaction."
    )
    interval: Duration = Field(default=600.0, gt=0, description="Pause between pruning rounds.")


class StorageSettings(_Section):
    url: str = "sqlite:///data/relay.db"
    # PostgreSQL only: connections each relay instance keeps (plus one for LISTEN).
    pool_min: int = Field(default=1, ge=0, description="Connections opened at start.")
    pool_max: int = Field(default=10, ge=1, description="Most connections at once.")
    retention: RetentionSettings = Field(default_factory=RetentionSettings)


class DeliverySettings(_Section):
    poll_interval: Duration = Field(default=5.0, gt=0, description="Safety-net poll period.")
    lease: Duration = Field(default=60.0, gt=0, description="How long a claim is held.")
    circuit_threshold: int = Field(default=5, ge=1)
    circuit_cooldown: Duration = Field(default=30.0, gt=0)
    circuit_max_cooldown: Duration = Field(
        default=60.0,
        gt=0,
        description="Longest wait between an open circuit's probes (each failed probe "
        "doubles the wait up to this): a recovered target is noticed within it.",
    )
    shutdown_grace: Duration = Field(default=10.0, ge=0)


class FeedSettings(_Section):
    """The live feed (`GET /events`, `GET /stream`)."""

    ping_interval: Duration = Field(default=15.0, gt=0, description="Period of `ping` frames.")
    poll_interval: Duration = Field(
        default=1.0, gt=0, description="How often the store is read for other processes' rows."
    )
    max_subscribers: int = Field(default=100, ge=1, description="Open streams at once.")
    max_subscribers_per_token: int = Field(
        default=10, ge=1, description="Open streams at once of one API token."
    )
    queue_size: int = Field(
        default=1000, ge=1, description="Frames buffered per subscriber before it is too slow."
    )
    slow_consumer: Literal["skip", "disconnect"] = Field(
        default="skip", description="Drop a slow subscriber's oldest frames, or disconnect it."
    )
    auth_timeout: Duration = Field(
        default=5.0, gt=0, description="How long a WebSocket may take to send its auth frame."
    )


class SecuritySettings(_Section):
    """`[security]`: what outgoing deliveries may reach."""

    allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs forwarders may reach although they are loopback, private, "
        "link-local or metadata addresses (e.g. 127.0.0.0/8, 10.20.0.0/16).",
    )

    @field_validator("allow_networks")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        parse_networks(values)  # ValueError names the bad CIDR
        return values

    def networks(self) -> list[Network]:
        """The allow-list as networks, for the transport's SSRF guard."""
        return parse_networks(self.allow_networks)


class LimitsSettings(_Section):
    """Abuse limits (`[limits]`); a 0 turns a limit off."""

    requests_per_second: float = Field(
        default=0.0, ge=0, description="Average requests a second per API token (0: no limit)."
    )
    burst: int = Field(default=100, ge=1, description="Requests a token may make at once.")
    max_connections_per_client: int = Field(
        default=0, ge=0, description="Requests (open streams included) at once per client IP."
    )
    max_line_bytes: int = Field(
        default=8190, ge=1024, description="Longest request line (method, path and query)."
    )
    max_header_bytes: int = Field(default=8190, ge=1024, description="Longest header.")
    max_headers: int = Field(default=128, ge=16, description="Most headers in a request.")


MIN_BADGE_SECRET = 16


class BadgeSettings(_Section):
    """`[badges]`: who may read badges without an API token."""

    public: list[str] = Field(
        default_factory=list,
        description='Component globs whose badges anyone may read (e.g. ["web-*"]).',
    )
    secret: SecretStr | None = Field(
        default=None,
        description="Secret the badge keys derive from; default: one relay generates and "
        "keeps in the store. Changing it revokes every badge URL.",
    )
    max_age: int = Field(default=60, ge=0, le=86400, description="Cache-Control max-age.")

    @field_validator("secret")
    @classmethod
    def _hard_to_guess(cls, value: SecretStr | None) -> SecretStr | None:
        # Badge keys are public: a short secret could be found from one of them offline,
        # and with it the key of every component.
        if value is not None and len(value.get_secret_value()) < MIN_BADGE_SECRET:
            raise ValueError(f"use at least {MIN_BADGE_SECRET} characters (random ones)")
        return value


class MetricsSettings(_Section):
    """`[metrics]`: the deployment series of /metrics."""

    max_series: int = Field(default=1000, ge=1, description="Most component/stage pairs exported.")
    dora_window: Duration = Field(
        default=30 * 86400.0, gt=0, description="Window of the relay_dora_* series."
    )
    cache_seconds: Duration = Field(
        default=5.0, ge=0, description="How long one read of the store serves scrapes."
    )


class LoggingSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class TokenSettings(_Section):
    name: str = Field(min_length=1, max_length=100)
    token: SecretStr
    scopes: list[Scope] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    components: list[str] = Field(default_factory=lambda: ["*"])

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("a token must be at least 8 characters long")
        return value


class Settings(BaseSettings):
    """The whole configuration of one relay process."""

    model_config = SettingsConfigDict(
        env_prefix="RELAY_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    server: ServerSettings = Field(default_factory=ServerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    feed: FeedSettings = Field(default_factory=FeedSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    badges: BadgeSettings = Field(default_factory=BadgeSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tokens: list[TokenSettings] = Field(default_factory=list)
    forwarders: list[SerializeAsAny[ForwarderConfig]] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file arrives as init kwargs; RELAY_<SECTION>__<KEY> must win over it.
        return env_settings, init_settings

    def secrets(self) -> list[str]:
        """Every secret value in this configuration, for log redaction."""
        values = [t.token.get_secret_value() for t in self.tokens]
        if self.badges.secret is not None:
            values.append(self.badges.secret.get_secret_value())
        if password := urlsplit(self.storage.url).password:
            values.append(password)  # a PostgreSQL URL's
        for forwarder in self.forwarders:
            values += forwarder.secrets()
        return values


def interpolate(value: Any, env: dict[str, str], path: str = "") -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a parsed TOML tree.

    A variable that is unset (or empty) and has no default is an error; ConfigError
    lists every such variable with the location of the setting that uses it.
    """
    missing: list[dict[str, Any]] = []
    result = _interpolate(value, env, path, missing)
    if missing:
        names = sorted({m["name"] for m in missing})
        raise ConfigError(
            f"environment variable{'s' if len(names) > 1 else ''} {', '.join(names)} "
            f"{'are' if len(names) > 1 else 'is'} not set",
            details=[{"field": m["field"], "message": m["message"]} for m in missing],
        )
    return result


def _interpolate(value: Any, env: dict[str, str], path: str, missing: list[dict[str, Any]]) -> Any:
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, f"{path}.{k}" if path else k, missing) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_interpolate(v, env, f"{path}[{i}]", missing) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        state = "is empty" if name in env else "is not set"
        missing.append(
            {"name": name, "field": path, "message": f"${{{name}}} {state} and has no default"}
        )
        return ""

    return _VAR.sub(sub, value)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def build_settings(data: dict[str, Any], registry: Registry | None = None) -> Settings:
    """Validate a parsed config tree; ConfigError lists every problem with its location."""
    data = interpolate(data, dict(os.environ))
    raw_forwarders = data.pop("forwarders", [])
    details: list[dict[str, Any]] = []
    settings = None
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        details += [
            {"field": _location(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
    forwarders = _forwarders(raw_forwarders, registry or default_registry(), details)
    if details or settings is None:
        raise ConfigError("invalid configuration", details=details)
    settings.forwarders = forwarders
    return settings


def _forwarders(
    raw: Any, registry: Registry, details: list[dict[str, Any]]
) -> list[ForwarderConfig]:
    if not isinstance(raw, list):
        details.append({"field": "forwarders", "message": "use [[forwarders]] tables"})
        return []
    out: list[ForwarderConfig] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"forwarders[{i}]"
        try:
            config = registry.validate(item if isinstance(item, dict) else {}, where)
        except ConfigError as exc:
            details += exc.details
            continue
        details += _url_problems(config, where)
        if config.name in seen:
            details.append({"field": f"{where}.name", "message": f"duplicate name {config.name!r}"})
        seen.add(config.name)
        out.append(config)
    return out


def _url_problems(config: ForwarderConfig, where: str) -> list[dict[str, Any]]:
    # Every URL of a forwarder, whichever plugin defines it: a host spelled `127.1` or
    # `2130706433` is refused here, before anything is sent (relay.delivery.netguard).
    urls = {
        key: value
        for key, value in config.model_dump(mode="json").items()
        if isinstance(value, str) and value.startswith(("http://", "https://"))
    }
    problems = {key: url_host_problem(url) for key, url in urls.items()}
    return [{"field": f"{where}.{k}", "message": p} for k, p in problems.items() if p]


def load_settings(path: str | Path | None = None) -> Settings:
    """Read, interpolate and validate a TOML config file."""
    path = Path(path or os.environ.get("RELAY_CONFIG") or DEFAULT_CONFIG)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML", details=[{"field": str(path), "message": str(exc)}]
        ) from None
    try:
        return build_settings(data)
    except ConfigError as exc:
        exc.message = f"{path}: {exc.message}"
        raise
