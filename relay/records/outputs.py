"""Use case: a deployment's output log (Scalingo-style), appended line by line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from relay.auth import Principal
from relay.errors import BodyTooLarge, NotFound
from relay.models import Deployment
from relay.records.service import RecordService, check_slug
from relay.timeutil import utcnow

log = structlog.get_logger("relay.outputs")

# A deployment's whole log (each line counted with its newline); past it, appends fail.
MAX_OUTPUT_BYTES = 8 * 1024 * 1024

OutputHook = Callable[[Deployment, list[str]], None]


@dataclass(frozen=True)
class Appended:
    """What an append did: lines it added, and the whole log's size after it."""

    appended: int
    lines: int
    bytes: int


def split_lines(text: str) -> list[str]:
    """The lines of an appended text: CRLF is a newline, a final newline ends the last
    line (it does not start an empty one), and an empty text has no lines."""
    if not text:
        return []
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def render(lines: list[str]) -> str:
    """The log as `GET …/output` answers it: every line with its newline."""
    return "".join(f"{line}\n" for line in lines)


@dataclass
class OutputService:
    """Appends to and reads deployments' output logs; `on_output` hooks see new lines."""

    records: RecordService
    limit_bytes: int = MAX_OUTPUT_BYTES
    # Called with (deployment, lines) after each durable append, e.g. by the live feed.
    on_output: list[OutputHook] = field(default_factory=list)

    async def append(
        self, component: str, record_id: str, text: str, principal: Principal
    ) -> Appended:
        """Append `text` to the log; BodyTooLarge (413) when the log would pass its limit."""
        deployment = await self._deployment(component, record_id, principal, "events:write")
        lines = split_lines(text)
        store = self.records.store
        totals = await store.append_output(deployment.id, lines, utcnow(), self.limit_bytes)
        if totals is None:
            raise BodyTooLarge(
                f"the output log of deployment {record_id!r} would pass its limit of "
                f"{self.limit_bytes} bytes; nothing was appended"
            )
        if lines:
            for hook in self.on_output:
                try:
                    hook(deployment, lines)
                except Exception:  # a watcher's bug must not fail an append that is durable
                    log.exception("output_hook_failed", deployment_id=deployment.id)
        return Appended(appended=len(lines), lines=totals.lines, bytes=totals.bytes)

    async def read(self, component: str, record_id: str, principal: Principal) -> str:
        """The whole log as text, one newline after each line."""
        deployment = await self._deployment(component, record_id, principal, "events:read")
        return render(await self.records.store.read_output(deployment.id))

    async def _deployment(
        self, component: str, record_id: str, principal: Principal, scope: str
    ) -> Deployment:
        check_slug(component)
        principal.require(scope, component)
        found = await self.records.store.get_record("deployment", component, record_id)
        if found is None:
            raise NotFound(f"no deployment {record_id!r} in component {component!r}")
        return found
