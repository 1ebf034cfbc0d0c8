"""The forwarder contract: configuration, the event a forwarder gets, and its outcomes.

A forwarder is one class with a `type` name, a pydantic `Config` model and one
`async send(event, context)`. It returns `Delivered` or `Skipped`, or raises
`RetryLater` (optionally at a given time) or `PermanentFailure`. It never sleeps
and never decides *when* to retry: relay's retry policy does, and persists it.
"""

from __future__ import annotations

import builtins
import contextlib
import email.utils
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any, ClassVar, Protocol

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from forwarders.answers import answer_reason

# Names a forwarder builds its requests with; they live in relay's delivery package
# and are exported from here, the plugin API, so that plugins need import nothing else.
from relay.delivery.http import HttpRequest as HttpRequest
from relay.delivery.http import HttpResponse as HttpResponse
from relay.delivery.http import Transport as Transport
from relay.delivery.netguard import AddressRefused as AddressRefused
from relay.errors import RelayError
from relay.timeutil import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]

DEFAULT_SCHEDULE = ("5s", "5m", "30m", "2h", "5h", "10h", "14h", "20h", "24h")


class MatchRule(BaseModel):
    """Which events a forwarder receives: glob patterns per attribute."""

    model_config = ConfigDict(extra="forbid")

    components: list[str] = Field(default_factory=lambda: ["*"])
    stages: list[str] = Field(default_factory=lambda: ["*"])
    results: list[str] = Field(default_factory=lambda: ["*"])
    events: list[str] = Field(default_factory=lambda: ["*"])

    @property
    def accepts_all(self) -> bool:
        """True when every attribute's patterns include the catch-all "*"."""
        rules = (self.events, self.components, self.stages, self.results)
        return all("*" in patterns for patterns in rules)

    def accepts(self, event_type: str, data: dict[str, Any]) -> bool:
        """True when every attribute of the event matches one of its patterns."""
        pairs = (
            (self.events, event_type),
            (self.components, data.get("component")),
            (self.stages, data.get("stage")),
            (self.results, data.get("result")),
        )
        return all(_any_match(patterns, value) for patterns, value in pairs)


def _any_match(patterns: list[str], value: Any) -> bool:
    # "*" matches every value, and is the only pattern an absent attribute (no stage, no
    # result) matches; checked first because it is every rule's default.
    if "*" in patterns:
        return True
    return value is not None and any(fnmatchcase(str(value), p) for p in patterns)


class RetryConfig(BaseModel):
    """The retry schedule after the first try, and the jitter applied to each step."""

    model_config = ConfigDict(extra="forbid")

    schedule: list[Duration] = Field(
        default_factory=lambda: [parse_duration(s) for s in DEFAULT_SCHEDULE]
    )
    jitter: float = Field(default=0.2, ge=0, le=1)


class ForwarderConfig(BaseModel):
    """Keys every forwarder has; each forwarder's `Config` subclasses this."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    type: str
    enabled: bool = True
    timeout: Duration = 10.0
    concurrency: int = Field(default=8, ge=1, le=256)
    match: MatchRule = Field(default_factory=MatchRule)
    retry: RetryConfig = Field(default_factory=RetryConfig)

    def secrets(self) -> list[str]:
        """Secret values of this config, for log redaction (subclasses add theirs)."""
        return []


@dataclass(frozen=True)
class Event:
    """What a forwarder is asked to deliver: one state change of a deployment or build."""

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]

    @property
    def stage(self) -> str | None:
        """The deployment's stage, if any."""
        value = self.data.get("stage")
        return str(value) if value is not None else None

    def envelope(self) -> dict[str, Any]:
        """The event as webhook receivers see it."""
        timestamp = self.created_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"type": self.type, "timestamp": timestamp, "data": self.data}


@dataclass
class SendContext:
    """Everything a send may use besides the event.

    `state` is this delivery's progress (kept across retries); `shared` is kept per
    (deployment, forwarder) so a later event can update what an earlier one created.
    Both are persisted after every attempt, whatever its outcome.
    """

    delivery_id: str
    attempt: int
    transport: Transport
    timeout: float
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    state: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivered:
    """The target accepted the event."""

    status_code: int | None = None
    excerpt: str = ""


@dataclass(frozen=True)
class Skipped:
    """The event does not apply to this target (e.g. Sentry deploy without a stage)."""

    reason: str


Outcome = Delivered | Skipped


class ForwarderError(RelayError):
    """Root of what a forwarder raises to say a send did not succeed."""

    def __init__(self, reason: str, *, status_code: int | None = None, excerpt: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.excerpt = excerpt


class RetryLater(ForwarderError):
    """A transient failure: try again, not before `at` when the target said so."""

    def __init__(
        self,
        reason: str,
        *,
        at: datetime | None = None,
        status_code: int | None = None,
        excerpt: str = "",
    ) -> None:
        super().__init__(reason, status_code=status_code, excerpt=excerpt)
        self.at = at


class PermanentFailure(ForwarderError):
    """The target will never accept this event: the delivery is dead at once."""


class TargetGone(PermanentFailure):
    """The target asked never to be called again (HTTP 410): disable the forwarder."""


class Forwarder(Protocol):
    """What relay needs of a forwarder class and its instances.

    A class may also set `one_request: ClassVar[bool] = True` when its send() awaits
    nothing but one `context.transport.send(..., timeout=context.timeout)`: the
    transport's timeout then bounds the whole send, and the dispatcher does not time it
    again (otherwise it cuts a send off after 3 x timeout + 1 s)."""

    type: ClassVar[str]
    Config: ClassVar[builtins.type[ForwarderConfig]]

    def __init__(self, config: Any) -> None: ...

    async def send(self, event: Event, context: SendContext) -> Outcome:
        """Deliver `event`; raise RetryLater or PermanentFailure when it did not go through."""
        ...


SERVER_ERRORS = frozenset(range(500, 600))
# What most targets ask to be retried; the others pass their own set to check_response.
RETRY_STATUSES = frozenset({408, 429}) | SERVER_ERRORS


def retry_at(response: HttpResponse, now: datetime) -> datetime | None:
    """When the target asked to be called again: Retry-After (seconds or HTTP date)
    or Sentry's X-Sentry-Rate-Limit-Reset (epoch seconds), the later of them."""
    times: list[datetime] = []
    value = response.header("Retry-After")
    if value:
        value = value.strip()
        if value.isdigit():
            # A year is already absurd; anything longer would overflow a datetime.
            times.append(now + timedelta(seconds=min(int(value), 366 * 86400)))
        else:
            with contextlib.suppress(TypeError, ValueError):
                times.append(email.utils.parsedate_to_datetime(value).astimezone(UTC))
    reset = response.header("X-Sentry-Rate-Limit-Reset")
    if reset:
        with contextlib.suppress(ValueError, OverflowError, OSError):
            times.append(datetime.fromtimestamp(float(reset), UTC))
    return max(times) if times else None


def check_response(
    response: HttpResponse,
    now: datetime,
    *,
    retry_statuses: frozenset[int] = RETRY_STATUSES,
    what: str = "target",
) -> None:
    """Raise RetryLater for a status in `retry_statuses`, PermanentFailure for any other
    non-2xx answer; return on 2xx."""
    status = response.status
    if 200 <= status < 300:
        return
    excerpt = response.text()
    answered = refusal(what, response)
    if status in retry_statuses:
        raise RetryLater(
            answered,
            at=retry_at(response, now),
            status_code=status,
            excerpt=excerpt,
        )
    if 300 <= status < 400:
        raise PermanentFailure(
            f"{what} answered a redirect (HTTP {status}), which relay does not follow",
            status_code=status,
            excerpt=excerpt,
        )
    raise PermanentFailure(answered, status_code=status, excerpt=excerpt)


def refusal(what: str, response: HttpResponse) -> str:
    """`<what> answered HTTP <status>`, then the target's own reason when it gave one."""
    reason = answer_reason(response)
    text = f"{what} answered HTTP {response.status}"
    return f"{text}: {reason}" if reason else text


async def send_checked(
    request: HttpRequest, context: SendContext, *, what: str = "target"
) -> HttpResponse:
    """Send `request`; network errors and timeouts become RetryLater, bad answers raise."""
    response = await send_raw(request, context, what=what)
    check_response(response, context.now, what=what)
    return response


async def send_raw(
    request: HttpRequest, context: SendContext, *, what: str = "target"
) -> HttpResponse:
    """Send `request`; only network errors and timeouts are turned into RetryLater."""
    try:
        return await context.transport.send(request, timeout=context.timeout)
    except TimeoutError:
        raise RetryLater(f"{what} did not answer within {context.timeout:g}s") from None
    except AddressRefused as exc:
        # The SSRF guard: retrying would meet the same refusal.
        raise PermanentFailure(str(exc)) from None
    except OSError as exc:
        raise RetryLater(f"could not reach {what}: {type(exc).__name__}: {exc}") from None
