"""The live feed broker (relay/feed/broker.py) on the in-memory store: live frames, resuming,
filters, token scoping, slow subscribers, pings and shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from relay.auth import Principal
from relay.errors import StoreError
from relay.feed import broker as feed_module
from relay.feed.broker import Feed, FeedFilter, FeedFull
from relay.feed.frames import Frame, log_frame, parse_id
from relay.records.service import RecordService
from relay.store.feed_base import FeedCursor, FeedPage
from relay.store.memory.store import MemoryStore
from relay.store.retention_base import RetentionPolicy
from relay.timeutil import utcnow
from tests.delivery_support import ADMIN, eventually
from tests.outbox_contract import LEASE, NOW, completion
from tests.support import T0, make_command, make_record

_HOUR = timedelta(hours=1)
WEB_ONLY = Principal(name="web", scopes=frozenset({"events:read"}), components=("web-*",))


class CountingStore(MemoryStore):
    """A memory store that counts the feed's reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def feed_after(self, cursor: FeedCursor, limit: int) -> FeedPage:
        """Count, then read."""
        self.reads += 1
        return await super().feed_after(cursor, limit)


@pytest.fixture
def store() -> CountingStore:
    """An empty in-memory store."""
    return CountingStore()


@pytest.fixture
async def make_feed(store: CountingStore) -> AsyncIterator[Any]:
    """Start feeds on `store` with the given options; all are stopped afterwards."""
    started: list[Feed] = []

    async def make(**options: Any) -> Feed:
        feed = Feed(store, **{"ping_interval": 60.0, **options})
        await feed.start()
        started.append(feed)
        return feed

    yield make
    for feed in started:
        await feed.stop()


def service(store: MemoryStore, feed: Feed) -> RecordService:
    """A record service that wakes `feed` after each commit, as the app wires it."""
    return RecordService(store, on_recorded=feed.wake)


async def record(records: RecordService, component: str = "api", **fields: Any) -> str:
    """Record a deployment; its id."""
    body = {"version": "1.0", **fields}
    result = await records.record("deployment", component, body, ADMIN)
    record_id: str = result.answer.body["id"]
    return record_id


async def take(frames: AsyncGenerator[Frame, None], n: int, timeout: float = 3.0) -> list[Frame]:
    """The next `n` frames (fails after `timeout` seconds)."""
    out: list[Frame] = []
    async with asyncio.timeout(timeout):
        while len(out) < n:
            out.append(await anext(frames))
    return out


def deployment_ids(frames: list[Frame]) -> list[str]:
    """The deployment id of each frame."""
    return [f.data["deployment"]["id"] for f in frames]


async def test_a_subscriber_sees_what_is_recorded_after_it_subscribed(make_feed: Any) -> None:
    """Only deployments recorded after subscribing arrive, as `new` frames with ids."""
    feed = await make_feed()
    records = service(feed.store, feed)
    await record(records, version="before")
    frames = feed.frames(feed.subscribe(FeedFilter(ADMIN)))
    first = asyncio.ensure_future(anext(frames))
    await eventually(lambda: feed.live)
    later = await record(records, version="after")
    frame = await asyncio.wait_for(first, 3)
    assert (frame.type, frame.data["deployment"]["id"]) == ("new", later)
    assert frame.data["event_type"] == "deployment.created"
    assert frame.id == "2-0-0"
    await frames.aclose()


async def test_nothing_is_read_while_nobody_listens(make_feed: Any, store: CountingStore) -> None:
    """With no subscriber, recording costs the feed no store read at all."""
    feed = await make_feed()
    records = service(store, feed)
    for _ in range(20):
        await record(records)
    await asyncio.sleep(0)
    assert store.reads == 0


async def test_resume_replays_what_was_missed_then_continues_live(
    make_feed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From an id, every later frame arrives once, in order, while more are being recorded."""
    monkeypatch.setattr(feed_module, "PAGE", 2)  # several pages of catching up
    feed = await make_feed()
    records = service(feed.store, feed)
    ids = [await record(records, version=f"v{i}") for i in range(5)]
    frames = feed.frames(feed.subscribe(FeedFilter(ADMIN)), after=parse_id("1-0-0"))
    got = await take(frames, 1)
    ids += [await record(records, version=f"late{i}") for i in range(3)]
    got += await take(frames, 6)
    assert deployment_ids(got) == ids[1:]
    assert [parse_id(f.id or "").events for f in got] == list(range(2, 9))
    ids.append(await record(records, version="live"))
    (live,) = await take(frames, 1)
    assert live.data["deployment"]["id"] == ids[-1]
    await frames.aclose()


async def test_a_resumed_subscriber_never_gets_a_frame_twice(make_feed: Any) -> None:
    """Frames a resuming subscriber read from the store before the broker did are not sent
    to it again when the broker publishes them."""
    feed = await make_feed()
    store = feed.store
    watcher = feed.frames(feed.subscribe(FeedFilter(ADMIN)))
    waiting = asyncio.ensure_future(anext(watcher))
    await eventually(lambda: feed.live)
    quiet = RecordService(store)  # records without waking the feed: the broker lags
    ids = [await record(quiet) for _ in range(3)]
    resumed = feed.frames(feed.subscribe(FeedFilter(ADMIN)), after=FeedCursor())
    assert deployment_ids(await take(resumed, 3)) == ids
    following = asyncio.ensure_future(anext(resumed))
    await eventually(lambda: len(feed.live) == 2)  # joined before the broker read them
    assert deployment_ids([await asyncio.wait_for(waiting, 3), *await take(watcher, 2)]) == ids
    ids.append(await record(service(store, feed)))
    assert deployment_ids([await asyncio.wait_for(following, 3)]) == ids[-1:]
    for frames in (watcher, resumed):
        await frames.aclose()


async def test_rows_committed_by_another_process_arrive_by_polling(make_feed: Any) -> None:
    """What is recorded without waking this feed (a `relay worker`, another instance) is
    found within `poll_interval` while someone listens."""
    feed = await make_feed(poll_interval=0.05)
    frames = feed.frames(feed.subscribe(FeedFilter(ADMIN)))
    waiting = asyncio.ensure_future(anext(frames))
    await eventually(lambda: feed.live)
    elsewhere = await record(RecordService(feed.store))  # no on_recorded: no wake-up
    frame = await asyncio.wait_for(waiting, 3)
    assert frame.data["deployment"]["id"] == elsewhere
    await frames.aclose()


async def test_a_failed_store_read_loses_nothing(
    make_feed: Any, store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the broker's read fails, the next poll reads again from the same position."""
    feed = await make_feed(poll_interval=0.05)
    frames = feed.frames(feed.subscribe(FeedFilter(ADMIN)))
    waiting = asyncio.ensure_future(anext(frames))
    await eventually(lambda: feed.live)
    working = store.feed_after
    failures = [StoreError("database error: disk I/O error")] * 2

    async def flaky(cursor: FeedCursor, limit: int) -> FeedPage:
        if failures:
            raise failures.pop()
        return await working(cursor, limit)

    monkeypatch.setattr(store, "feed_after", flaky)
    ids = [await record(service(store, feed)) for _ in range(2)]
    got = [await asyncio.wait_for(waiting, 3), *await take(frames, 1)]
    assert not failures and deployment_ids(got) == ids
    await frames.aclose()


async def test_an_id_from_the_future_means_from_now(make_feed: Any) -> None:
    """Resuming from a position the store never reached starts at the store's end."""
    feed = await make_feed()
    records = service(feed.store, feed)
    await record(records)
    frames = feed.frames(feed.subscribe(FeedFilter(ADMIN)), after=parse_id("999-999-999"))
    waiting = asyncio.ensure_future(anext(frames))
    await eventually(lambda: feed.live)
    later = await record(records)
    assert (await asyncio.wait_for(waiting, 3)).data["deployment"]["id"] == later
    await frames.aclose()


async def test_filters_and_token_scope(make_feed: Any) -> None:
    """A subscriber gets only its components and stages, and only what its token may read."""
    feed = await make_feed()
    records = service(feed.store, feed)
    staging = feed.frames(feed.subscribe(FeedFilter(ADMIN, stages=frozenset({"staging"}))))
    api = feed.frames(feed.subscribe(FeedFilter(ADMIN, components=frozenset({"api"}))))
    web = feed.frames(feed.subscribe(FeedFilter(WEB_ONLY)))
    pending = [asyncio.ensure_future(anext(f)) for f in (staging, api, web)]
    await eventually(lambda: len(feed.live) == 3)
    api_prod = await record(records, "api", stage="production")
    web_staging = await record(records, "web-shop", stage="staging")
    got = [await asyncio.wait_for(p, 3) for p in pending]
    assert deployment_ids(got) == [web_staging, api_prod, web_staging]
    feed.publish(log_frame("x", "api", "staging", "hello", T0))
    assert [(await take(f, 1))[0].data["content"] for f in (staging, api)] == ["hello"] * 2
    for frames in (staging, api, web):
        await frames.aclose()


async def test_log_frames_published_directly_reach_subscribers(make_feed: Any) -> None:
    """`publish` hands a frame to every matching live subscriber at once, without an id."""
    feed = await make_feed()
    frames = feed.frames(feed.subscribe(FeedFilter(ADMIN, components=frozenset({"api"}))))
    waiting = asyncio.ensure_future(anext(frames))
    await eventually(lambda: feed.live)
    feed.publish(log_frame("d1", "web", None, "not for you", T0))
    feed.publish(log_frame("d1", "api", None, "building…", T0))
    frame = await asyncio.wait_for(waiting, 3)
    assert (frame.type, frame.id, frame.data["content"]) == ("log", None, "building…")
    await frames.aclose()


async def test_delivery_attempts_become_delivery_frames(make_feed: Any) -> None:
    """A recorded attempt, once the dispatcher wakes the feed, arrives as a `delivery` frame."""
    feed = await make_feed()
    store = feed.store
    frames = feed.frames(feed.subscribe(FeedFilter(ADMIN)), after=FeedCursor())
    record_ = make_record("api", "v1", stage="production")
    await store.record(make_command(record_, forwarders=["hook"]))
    (claimed,) = await store.claim("hook", 1, NOW, LEASE, "me")
    assert (await take(frames, 1))[0].type == "new"
    await store.complete(completion(claimed, "pending", next_at=NOW, error="503", status_code=503))
    feed.wake()
    (frame,) = await take(frames, 1)
    assert frame.type == "delivery" and frame.id == "1-1-0"
    assert {k: frame.data[k] for k in ("forwarder", "outcome", "status_code", "attempt")} == {
        "forwarder": "hook",
        "outcome": "retry",
        "status_code": 503,
        "attempt": 1,
    }
    assert (frame.data["deployment_id"], frame.data["stage"]) == (record_.id, "production")
    await frames.aclose()


async def test_a_slow_subscriber_is_skipped_ahead_with_bounded_memory(make_feed: Any) -> None:
    """A subscriber that does not read keeps at most `queue_size` frames; then it is told how
    many it missed (and from which id to resume) and gets the newest ones."""
    feed = await make_feed(queue_size=10)
    records = service(feed.store, feed)
    subscriber = feed.subscribe(FeedFilter(ADMIN))
    frames = feed.frames(subscriber)
    first = asyncio.ensure_future(anext(frames))
    await eventually(lambda: feed.live)
    ids = [await record(records) for _ in range(1)]
    await asyncio.wait_for(first, 3)
    peak = 0
    for _ in range(200):
        ids.append(await record(records))
        await asyncio.sleep(0)
        peak = max(peak, len(subscriber.queue))
    await eventually(lambda: feed.position is not None and feed.position.events == 201)
    assert peak <= 10 and len(subscriber.queue) == 10
    skipped, *rest = await take(frames, 11)
    assert skipped.type == "skipped"
    assert skipped.data == {"count": 190, "last_event_id": "1-0-0"}
    assert deployment_ids(rest) == ids[-10:]
    await frames.aclose()


async def test_the_disconnect_policy_ends_a_slow_subscriber(make_feed: Any) -> None:
    """With `slow_consumer = "disconnect"`, overflowing the queue ends the stream."""
    feed = await make_feed(queue_size=3, slow_consumer="disconnect")
    subscriber = feed.subscribe(FeedFilter(ADMIN))
    frames = feed.frames(subscriber)
    waiting = asyncio.ensure_future(anext(frames))
    await eventually(lambda: feed.live)
    for i in range(4):
        feed.publish(log_frame("d", "api", None, str(i), T0))
    assert subscriber.closed == "slow" and not subscriber.queue
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 3)
    assert not feed.members and not feed.live


async def test_pings_arrive_at_the_configured_interval(make_feed: Any) -> None:
    """`ping` frames come every `ping_interval`, to every subscriber, filters or not."""
    feed = await make_feed(ping_interval=0.05)
    frames = feed.frames(feed.subscribe(FeedFilter(WEB_ONLY, stages=frozenset({"x"}))))
    got = await take(frames, 3, timeout=2)
    assert [f.type for f in got] == ["ping"] * 3
    assert all(f.id is None and f.data["at"].endswith("Z") for f in got)
    await frames.aclose()


async def test_close_all_ends_every_stream(make_feed: Any) -> None:
    """On shutdown every open stream ends at once, catching-up ones too."""
    feed = await make_feed()
    live = feed.frames(feed.subscribe(FeedFilter(ADMIN)))
    waiting = asyncio.ensure_future(anext(live))
    await eventually(lambda: feed.live)
    feed.close_all()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 3)
    assert not feed.members


async def test_subscribers_are_limited(make_feed: Any) -> None:
    """Past `max_subscribers` a new subscription is refused with 503; leaving frees a place."""
    feed = await make_feed(max_subscribers=2)
    first = feed.subscribe(FeedFilter(ADMIN))
    feed.subscribe(FeedFilter(ADMIN))
    with pytest.raises(FeedFull) as refused:
        feed.subscribe(FeedFilter(ADMIN))
    assert refused.value.status == 503
    feed.leave(first)
    feed.subscribe(FeedFilter(ADMIN))


async def test_resuming_from_a_pruned_position_replays_what_remains(make_feed: Any) -> None:
    """A client resuming from an id whose rows retention deleted gets the rows that remain,
    then live frames: no error, no stall."""
    feed = await make_feed()
    store = feed.store
    records = service(store, feed)
    watcher = feed.frames(feed.subscribe(FeedFilter(ADMIN)))
    waiting = asyncio.ensure_future(anext(watcher))
    await eventually(lambda: feed.live)
    ids = [await record(records, version=f"v{i}") for i in range(3)]
    got = [await asyncio.wait_for(waiting, 3), *await take(watcher, 2)]
    assert deployment_ids(got) == ids  # the broker's position is past all three now
    pruned = await store.prune(RetentionPolicy(events=timedelta(0)), utcnow() + _HOUR, 100)
    assert pruned.events == 3
    resumed = feed.frames(feed.subscribe(FeedFilter(ADMIN)), after=parse_id("1-0-0"))
    following = asyncio.ensure_future(anext(resumed))
    await eventually(lambda: len(feed.live) == 2)
    later = await record(records, version="later")
    frame = await asyncio.wait_for(following, 3)
    assert (frame.data["deployment"]["id"], frame.id) == (later, "4-0-0")
    for frames in (watcher, resumed):
        await frames.aclose()
