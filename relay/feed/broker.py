"""The live feed: an in-process broker between what the store records and open streams.

The broker does not trust memory for what happened: when woken (a commit recorded
an event, the dispatcher finished an attempt) it reads the rows after its
position from the store and publishes them. Live frames and frames replayed for a
`Last-Event-ID` therefore come from the same rows, with the same ids.

Publishing never awaits a subscriber. Each subscriber has a bounded queue; when it
is full the subscriber is skipped ahead (its oldest frames are dropped and it is
told how many) or disconnected, as configured. Ingest is never slowed: with no
subscriber the broker reads nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Literal

import structlog

from relay.auth import Principal
from relay.errors import RelayError
from relay.feed.frames import STREAMS, Frame, covers, merge, ping_frame, skipped_frame
from relay.store.feed_base import FeedCursor, FeedPage, FeedStore
from relay.timeutil import utcnow

log = structlog.get_logger("relay.feed")
SlowPolicy = Literal["skip", "disconnect"]
# Rows read per stream at once: bounds the memory of a replay whatever the backlog.
PAGE = 100


class FeedFull(RelayError):
    """Too many open streams (`feed.max_subscribers`)."""

    status = 503
    code = "feed_full"


class FeedTokenFull(RelayError):
    """One token has `feed.max_subscribers_per_token` streams open already."""

    status = 429
    code = "feed_token_full"


@dataclass(frozen=True)
class FeedFilter:
    """What a subscriber wants: its token's components, optionally narrowed."""

    principal: Principal
    components: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()

    def accepts(self, frame: Frame) -> bool:
        """Frames of no component (ping, skipped) reach everyone; others are filtered."""
        if frame.component is None:
            return True
        if not self.principal.can_access(frame.component):
            return False
        if self.components and frame.component not in self.components:
            return False
        return not self.stages or frame.stage in self.stages


class Subscriber:
    """One open stream: a bounded queue of frames and why it ended."""

    def __init__(self, wanted: FeedFilter, limit: int, policy: SlowPolicy) -> None:
        self.filter = wanted
        self.limit = limit
        self.policy = policy
        self.queue: deque[Frame] = deque()
        self.dropped = 0
        self.floor = FeedCursor()
        self.last_id: str | None = None
        self.closed: str | None = None
        self._ready = asyncio.Event()

    def offer(self, frame: Frame) -> None:
        """Queue `frame` if wanted; never blocks, never grows past `limit`."""
        if self.closed is not None or not self.filter.accepts(frame):
            return
        if frame.stream is not None and frame.seq <= getattr(self.floor, frame.stream):
            return  # already sent while catching up from the store
        if len(self.queue) >= self.limit:
            if self.policy == "disconnect":
                self.close("slow")
                return
            self.queue.popleft()
            self.dropped += 1
        self.queue.append(frame)
        self._ready.set()

    def close(self, reason: str) -> None:
        """End the stream (`shutdown`, `slow`, `revoked`, `error`, `gone`); drop its queue."""
        if self.closed is None:
            self.closed = reason
            self.queue.clear()
            self._ready.set()

    async def next(self) -> Frame | None:
        """The next frame (a `skipped` one first after drops); None once closed."""
        while True:
            if self.closed is not None:
                return None
            if self.dropped:
                count, self.dropped = self.dropped, 0
                return skipped_frame(count, self.last_id)
            if self.queue:
                return self.queue.popleft()
            self._ready.clear()
            await self._ready.wait()


class Feed:
    """Fans frames out to subscribers; reads them from the store while anyone listens."""

    def __init__(
        self,
        store: FeedStore,
        *,
        ping_interval: float = 15.0,
        poll_interval: float = 1.0,
        max_subscribers: int = 100,
        max_per_token: int = 10,
        queue_size: int = 1000,
        slow_consumer: SlowPolicy = "skip",
    ) -> None:
        self.store = store
        self.ping_interval = ping_interval
        self.poll_interval = poll_interval
        self.max_subscribers = max_subscribers
        self.max_per_token = max_per_token
        self.queue_size = queue_size
        self.slow_consumer: SlowPolicy = slow_consumer
        self.position: FeedCursor | None = None
        self.members: set[Subscriber] = set()
        self.live: set[Subscriber] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def wake(self, *_: object) -> None:
        """Something was committed: read it (a hook for on_recorded and the dispatcher)."""
        self._wake.set()

    def publish(self, frame: Frame) -> None:
        """Offer `frame` to every live subscriber now; never awaits."""
        for subscriber in list(self.live):
            subscriber.offer(frame)

    async def start(self) -> None:
        """Start the store reader and the ping timer."""
        self._tasks = [
            asyncio.create_task(self._tail(), name="relay-feed-tail"),
            asyncio.create_task(self._ping(), name="relay-feed-ping"),
        ]

    def close_all(self, reason: str = "shutdown") -> None:
        """End every open stream (on shutdown, so that none holds the server up)."""
        for subscriber in list(self.members):
            subscriber.close(reason)

    async def stop(self) -> None:
        """Close every stream and stop the background tasks."""
        self.close_all()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def subscribe(self, wanted: FeedFilter) -> Subscriber:
        """A new subscriber (not yet receiving: iterate `frames`); FeedTokenFull when its
        token has `max_per_token` streams open (one reader cannot take every place),
        FeedFull at the overall limit."""
        name = wanted.principal.name
        if sum(1 for m in self.members if m.filter.principal.name == name) >= self.max_per_token:
            raise FeedTokenFull(
                f"this token already has {self.max_per_token} open streams; close one first",
                extra={"retry_after": 1},
            )
        if len(self.members) >= self.max_subscribers:
            raise FeedFull(
                f"the live feed already has {self.max_subscribers} subscribers; try again later"
            )
        subscriber = Subscriber(wanted, self.queue_size, self.slow_consumer)
        self.members.add(subscriber)
        return subscriber

    async def frames(
        self, subscriber: Subscriber, after: FeedCursor | None = None
    ) -> AsyncGenerator[Frame, None]:
        """Frames for `subscriber`: those after `after` from the store, then live ones."""
        try:
            if after is None:
                position = await self._ensure_position()
                self._go_live(subscriber, position)
            else:
                async for replayed in self._catch_up(subscriber, after):
                    yield replayed
            while (frame := await subscriber.next()) is not None:
                if frame.id is not None:
                    subscriber.last_id = frame.id
                yield frame
        except RelayError as exc:
            # The store failed (replaying, or finding where to start): end this stream; its
            # client resumes later from its last id.
            log.warning("feed_stream_failed", error=exc.message)
            subscriber.close("error")
        finally:
            self.leave(subscriber)

    def leave(self, subscriber: Subscriber) -> None:
        """Forget a subscriber whose stream ended (calling it twice does nothing)."""
        subscriber.close(subscriber.closed or "gone")
        self.members.discard(subscriber)
        self.live.discard(subscriber)
        if not self.live:
            self.position = None  # nobody listens: stop reading until someone does

    async def _catch_up(self, subscriber: Subscriber, cursor: FeedCursor) -> AsyncIterator[Frame]:
        """Replay from the store until the broker's position, then join the live frames."""
        # An id from the future (e.g. of a database since replaced) means "from now".
        cursor = _earliest(cursor, await self.store.feed_position())
        while subscriber.closed is None:
            known = await self._ensure_position()  # committed before the page is read
            page = await self.store.feed_after(cursor, PAGE)
            frames, cursor = merge(page, cursor, PAGE)
            cursor = _over_gaps(cursor, page, known)
            for frame in frames:
                if subscriber.closed is not None:
                    return
                if subscriber.filter.accepts(frame):
                    subscriber.last_id = frame.id
                    yield frame
            position = await self._ensure_position()
            # No await between this check and joining: every frame the broker publishes
            # from now on is past `position`, and what is not past `cursor` is skipped.
            if covers(cursor, position):
                self._go_live(subscriber, cursor)
                return

    def _go_live(self, subscriber: Subscriber, floor: FeedCursor) -> None:
        subscriber.floor = floor
        if subscriber.closed is None:
            self.live.add(subscriber)
            self._wake.set()

    async def _ensure_position(self) -> FeedCursor:
        if self.position is None:
            position = await self.store.feed_position()
            if self.position is None:
                self.position = position
        return self.position

    async def _tail(self) -> None:
        while True:
            # Wake-ups come from this process; rows that other processes commit (a
            # `relay worker`, other instances) are found by polling while anyone listens.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval if self.live else None):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._read_new()
            # The next wake-up or poll reads again from the same position: nothing is lost.
            except RelayError as exc:
                log.warning("feed_read_failed", error=exc.message)
            except Exception:
                log.exception("feed_read_failed")

    async def _read_new(self) -> None:
        while self.live and (position := self.position) is not None:
            page = await self.store.feed_after(position, PAGE)
            if self.position is not position:
                continue  # everyone left (and maybe someone came back) meanwhile
            frames, self.position = merge(page, position, PAGE)
            for frame in frames:
                self.publish(frame)
            if self.position == position or not _full(page):
                return

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            self.publish(ping_frame(utcnow()))


def _full(page: FeedPage) -> bool:
    return max(len(page.events), len(page.attempts), len(page.outputs)) >= PAGE


def _over_gaps(cursor: FeedCursor, page: FeedPage, known: FeedCursor) -> FeedCursor:
    """`cursor` moved past rows that retention deleted: a stream with no row after the
    cursor has none up to `known` (rows committed before the read) any more either."""
    return FeedCursor(
        **{
            s: getattr(cursor, s)
            if getattr(page, s)
            else max(getattr(cursor, s), getattr(known, s))
            for s in STREAMS
        }
    )


def _earliest(a: FeedCursor, b: FeedCursor) -> FeedCursor:
    return FeedCursor(
        events=min(a.events, b.events),
        attempts=min(a.attempts, b.attempts),
        outputs=min(a.outputs, b.outputs),
    )
