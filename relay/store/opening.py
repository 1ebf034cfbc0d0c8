"""Opening a store whose database may not be reachable yet (PostgreSQL started after relay,
restarting, or briefly unreachable): try again with growing delays, saying so in the log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from relay.errors import StoreError, StoreUnavailable
from relay.store.base import Store

log = structlog.get_logger("relay.store")

FIRST_DELAY, MAX_DELAY = 0.5, 10.0


async def open_with_retry(
    store: Store,
    where: str,
    *,
    on_first_failure: Callable[[], None] | None = None,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
) -> int:
    """Open `store`, retrying while its database cannot be reached; the attempts it took.

    Every failed attempt logs `store_unavailable` (where, attempt, delay before the next
    one). An error that retrying cannot cure (a schema newer than this relay, refused
    credentials) is raised when it happens on the first attempt, so that a start with a
    wrong configuration fails at once; after that it is logged and retried like the rest
    (somebody may be fixing the database). `on_first_failure` is called once, after the
    first failed attempt, so that a caller can go on (e.g. serve /readyz) meanwhile."""
    attempt, delay = 0, first_delay
    while True:
        attempt += 1
        try:
            await store.open()
            return attempt
        except StoreUnavailable as exc:
            log.warning(
                "store_unavailable", url=where, attempt=attempt, delay=delay, error=exc.message
            )
        except StoreError as exc:
            if attempt == 1:
                raise
            log.error(
                "store_open_failed", url=where, attempt=attempt, delay=delay, error=exc.message
            )
        if attempt == 1 and on_first_failure is not None:
            on_first_failure()
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
