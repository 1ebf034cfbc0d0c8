"""The live feed's reads every Store backend shares: subclass `FeedContract`, give it a
`store` fixture.

tests/unit/test_memory_feed.py runs it on the in-memory store,
tests/integration/test_sqlite_feed.py on a real SQLite file.
"""

from __future__ import annotations

from datetime import timedelta

from relay.store.base import Store
from relay.store.feed_base import FeedCursor
from tests.outbox_contract import LEASE, NOW, completion
from tests.support import T0, make_command, make_record

S = timedelta(seconds=1)


class FeedContract:
    """Tests every Store implementation's feed reads must pass."""

    async def test_an_empty_store_is_at_the_start(self, store: Store) -> None:
        """With nothing recorded, the feed position is zero in every stream and nothing follows."""
        assert await store.feed_position() == FeedCursor(0, 0, 0)
        page = await store.feed_after(FeedCursor(), 10)
        assert (page.events, page.attempts, page.outputs) == ([], [], [])

    async def test_events_follow_a_cursor_in_commit_order(self, store: Store) -> None:
        """Events after a seq come oldest first, with component and payload, `limit` at most."""
        records = [
            make_record("api" if i % 2 else "web", f"v{i}", stage="prod", created_at=T0 + i * S)
            for i in range(5)
        ]
        for record in records:
            await store.record(make_command(record))
        page = await store.feed_after(FeedCursor(), 3)
        assert [e.deployment_id for e in page.events] == [r.id for r in records[:3]]
        first = page.events[0]
        assert (first.type, first.component, first.created_at) == ("deployment.created", "web", T0)
        assert first.payload["version"] == "v0" and first.payload["stage"] == "prod"
        seqs = [e.seq for e in page.events]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        rest = await store.feed_after(FeedCursor(events=seqs[-1]), 10)
        assert [e.deployment_id for e in rest.events] == [r.id for r in records[3:]]
        position = await store.feed_position()
        assert position.events == rest.events[-1].seq
        assert (await store.feed_after(position, 10)).events == []

    async def test_attempts_follow_a_cursor_with_what_they_delivered(self, store: Store) -> None:
        """Each recorded attempt shows once, in order, with its delivery, event and outcome."""
        record = make_record("api", "v1", stage="production")
        await store.record(make_command(record, forwarders=["hook"]))
        (claimed,) = await store.claim("hook", 1, NOW, LEASE, "me")
        await store.complete(
            completion(claimed, "pending", next_at=NOW, error="503", status_code=503)
        )
        (again,) = await store.claim("hook", 1, NOW + S, LEASE, "me")
        await store.complete(completion(again, "delivered", at=NOW + S, status_code=200))

        page = await store.feed_after(FeedCursor(), 10)
        first, second = page.attempts
        assert first.seq < second.seq
        assert (first.delivery_id, first.forwarder, first.event_id) == (
            claimed.id,
            "hook",
            claimed.event_id,
        )
        assert (first.event_type, first.deployment_id) == ("deployment.created", record.id)
        assert (first.component, first.stage) == ("api", "production")
        assert (first.attempt.number, first.attempt.outcome, first.attempt.status_code) == (
            1,
            "retry",
            503,
        )
        assert (second.attempt.number, second.attempt.outcome) == (2, "delivered")
        assert second.attempt.started_at == NOW + 0.5 * S
        position = await store.feed_position()
        assert position.attempts == second.seq
        after_first = await store.feed_after(FeedCursor(attempts=first.seq), 10)
        assert [a.seq for a in after_first.attempts] == [second.seq]
        assert (await store.feed_after(position, 10)).attempts == []

    async def test_attempts_of_a_build_have_no_stage(self, store: Store) -> None:
        """An attempt for an event with no stage reads back with stage None."""
        record = make_record("api", "v1", kind="build")
        await store.record(make_command(record, forwarders=["hook"]))
        (claimed,) = await store.claim("hook", 1, NOW, LEASE, "me")
        await store.complete(completion(claimed, "dead", error="400", status_code=400))
        (attempt,) = (await store.feed_after(FeedCursor(), 10)).attempts
        assert attempt.stage is None and attempt.event_type == "build.created"
        assert attempt.attempt.outcome == "dead"

    async def test_output_lines_follow_a_cursor_with_their_deployment(self, store: Store) -> None:
        """Each appended output line is one row, in order, with its deployment's component
        and stage."""
        api = make_record("api", "v1", stage="production")
        web = make_record("web", "v1")
        for record in (api, web):
            await store.record(make_command(record))
        await store.append_output(api.id, ["one", "two"], NOW, 1 << 20)
        await store.append_output(web.id, ["three"], NOW + S, 1 << 20)
        page = await store.feed_after(FeedCursor(), 2)
        assert [(o.text, o.deployment_id) for o in page.outputs] == [
            ("one", api.id),
            ("two", api.id),
        ]
        first = page.outputs[0]
        assert (first.component, first.stage, first.created_at) == ("api", "production", NOW)
        rest = await store.feed_after(FeedCursor(outputs=page.outputs[-1].seq), 10)
        (three,) = rest.outputs
        assert (three.text, three.component, three.stage) == ("three", "web", None)
        assert (await store.feed_position()).outputs == three.seq
