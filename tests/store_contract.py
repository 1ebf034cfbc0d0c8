"""The behaviour every Store backend shares: subclass `StoreContract` and give it a `store`.

tests/unit/test_memory.py runs it on the in-memory store, tests/integration/test_sqlite.py
on a real SQLite file.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from relay.errors import Conflict, IdempotencyConflict
from relay.models import Status
from relay.store.base import ListQuery, Store, TokenRecord
from relay.store.dialect_base import NameRow
from relay.timeutil import utcnow
from tests.support import T0, make_command, make_record, minutes


def _token(name: str, digest: str) -> TokenRecord:
    return TokenRecord(
        id=f"id-{name}-{digest}",
        name=name,
        token_hash=digest,
        scopes=("events:read",),
        components=("web-*",),
        created_at=T0,
    )


async def _ids(store: Store, query: ListQuery) -> list[str]:
    page = await store.list_records(query)
    return [d.id for d in page.items]


class StoreContract:
    """Tests every Store implementation must pass."""

    async def test_recorded_deployment_reads_back_identical(self, store: Store) -> None:
        """A recorded deployment is read back with every field as it was written."""
        record = make_record(
            "api",
            "v1.2.3",
            stage="production",
            finished_at=T0,
            meta_data={"user": "Fünke", "n": [1, 2, {"x": None}]},
        )
        result = await store.record(make_command(record))
        assert result.replayed is False
        assert result.answer.body == {"id": record.id}
        found = await store.get_record("deployment", "api", record.id)
        assert found is not None
        skip = {"deliveries", "number"}
        assert found.model_dump(exclude=skip) == record.model_dump(exclude=skip)
        assert found.deliveries == []
        assert isinstance(found.number, int) and found.number >= 1

    async def test_outbox_rows_show_in_delivery_summary(self, store: Store) -> None:
        """Each forwarder an event is planned for shows up as a pending delivery."""
        record = make_record("api")
        await store.record(make_command(record, forwarders=["grafana", "sentry"]))
        found = await store.get_record("deployment", "api", record.id)
        assert found is not None and found.deliveries is not None
        assert [(d.forwarder, d.status, d.attempts) for d in found.deliveries] == [
            ("grafana", "pending", 0),
            ("sentry", "pending", 0),
        ]

    async def test_get_record_checks_kind_and_component(self, store: Store) -> None:
        """A record is not found under another component or as the other kind."""
        record = make_record("api")
        await store.record(make_command(record))
        assert await store.get_record("deployment", "web", record.id) is None
        assert await store.get_record("build", "api", record.id) is None
        assert await store.get_record("deployment", "api", "no-such-id") is None

    async def test_listing_is_newest_first_with_insertion_order_breaking_ties(
        self, store: Store
    ) -> None:
        """Listings sort by occurrence time, newest first; equal times list the last sent first."""
        old = make_record("api", "old", finished_at=T0)
        tie_a = make_record("api", "tie-a", finished_at=T0 + minutes(5))
        tie_b = make_record("api", "tie-b", finished_at=T0 + minutes(5))
        new = make_record("api", "new", finished_at=T0 + minutes(10))
        for record in (tie_a, new, old, tie_b):
            await store.record(make_command(record))
        ids = await _ids(store, ListQuery(kind="deployment", component="api"))
        assert ids == [new.id, tie_b.id, tie_a.id, old.id]

    async def test_listing_separates_kinds_and_components(self, store: Store) -> None:
        """Builds and other components never appear in a component's deployments."""
        mine = make_record("api")
        await store.record(make_command(mine))
        await store.record(make_command(make_record("api", kind="build")))
        await store.record(make_command(make_record("web")))
        assert await _ids(store, ListQuery(kind="deployment", component="api")) == [mine.id]

    async def test_filters(self, store: Store) -> None:
        """stage, result and status filters keep only the matching records."""
        ok = make_record("api", stage="production", finished_at=T0)
        failed = make_record(
            "api",
            stage="production",
            result="failure",
            status=Status.BUILD_ERROR,
            finished_at=T0 + minutes(1),
        )
        staging = make_record("api", stage="staging", finished_at=T0 + minutes(2))
        for record in (ok, failed, staging):
            await store.record(make_command(record))
        base = ListQuery(kind="deployment", component="api")
        assert await _ids(store, dataclasses.replace(base, stage="production")) == [
            failed.id,
            ok.id,
        ]
        assert await _ids(store, dataclasses.replace(base, result="failure")) == [failed.id]
        assert await _ids(store, dataclasses.replace(base, status="build-error")) == [failed.id]
        assert await _ids(store, dataclasses.replace(base, stage="none")) == []

    async def test_since_is_inclusive_and_until_exclusive(self, store: Store) -> None:
        """`since` keeps records at exactly that time; `until` drops them."""
        records = [make_record("api", f"v{i}", finished_at=T0 + minutes(i)) for i in range(4)]
        for record in records:
            await store.record(make_command(record))
        query = ListQuery(
            kind="deployment", component="api", since=T0 + minutes(1), until=T0 + minutes(3)
        )
        assert await _ids(store, query) == [records[2].id, records[1].id]

    async def test_paging_covers_everything_once(self, store: Store) -> None:
        """Following next_cursor visits every record exactly once, in order."""
        records = [make_record("api", f"v{i}", finished_at=T0 + minutes(i // 3)) for i in range(11)]
        for record in records:
            await store.record(make_command(record))
        expected = await _ids(store, ListQuery(kind="deployment", component="api", limit=100))
        seen: list[str] = []
        query = ListQuery(kind="deployment", component="api", limit=4)
        pages = 0
        while True:
            page = await store.list_records(query)
            pages += 1
            assert len(page.items) <= 4
            seen += [d.id for d in page.items]
            if page.next_cursor is None:
                break
            query = dataclasses.replace(query, after=page.next_cursor)
        assert seen == expected
        assert len(set(seen)) == 11
        assert pages == 3

    async def test_no_next_cursor_when_the_last_page_is_exactly_full(self, store: Store) -> None:
        """A listing whose size is a multiple of the limit ends without an empty extra page."""
        for i in range(4):
            await store.record(make_command(make_record("api", f"v{i}")))
        first = await store.list_records(ListQuery(kind="deployment", component="api", limit=2))
        assert first.next_cursor is not None
        second = await store.list_records(
            ListQuery(kind="deployment", component="api", limit=2, after=first.next_cursor)
        )
        assert len(second.items) == 2
        assert second.next_cursor is None

    async def test_idempotent_repeat_returns_the_first_answer(self, store: Store) -> None:
        """The same key and fingerprint return the stored answer and record nothing new."""
        first = make_record("api", "v1")
        await store.record(make_command(first, idempotency=("key-1", "fp-1")))
        again = await store.record(
            make_command(make_record("api", "v1"), idempotency=("key-1", "fp-1"))
        )
        assert again.replayed is True
        assert again.answer.body == {"id": first.id}
        assert again.answer.location == f"/components/api/deployments/{first.id}"
        assert await _ids(store, ListQuery(kind="deployment", component="api")) == [first.id]

    async def test_idempotency_key_with_another_fingerprint_conflicts(self, store: Store) -> None:
        """A key reused for a different request raises IdempotencyConflict."""
        first = make_record("api", "v1")
        await store.record(make_command(first, idempotency=("key-1", "fp-1")))
        with pytest.raises(IdempotencyConflict):
            await store.record(
                make_command(make_record("api", "v2"), idempotency=("key-1", "fp-2"))
            )
        assert await _ids(store, ListQuery(kind="deployment", component="api")) == [first.id]

    async def test_component_exists_after_first_record(self, store: Store) -> None:
        """A component exists once something was recorded for it."""
        assert await store.component_exists("api") is False
        await store.record(make_command(make_record("api")))
        assert await store.component_exists("api") is True

    async def test_components_with_latest_deployment_per_stage(self, store: Store) -> None:
        """Each component lists its newest deployment of each stage; builds do not count."""
        old_prod = make_record("api", "v1", stage="production", finished_at=T0)
        new_prod = make_record("api", "v2", stage="production", finished_at=T0 + minutes(5))
        staging = make_record("api", "v3", stage="staging", finished_at=T0 + minutes(1))
        build = make_record("api", "v9", kind="build", finished_at=T0 + minutes(9))
        only_build = make_record("worker", "v1", kind="build")
        for record in (new_prod, old_prod, staging, build, only_build):
            await store.record(make_command(record))
        rows = {row.slug: row for row in await store.list_components()}
        assert sorted(rows) == ["api", "worker"]
        assert {d.stage: d.id for d in rows["api"].latest} == {
            "production": new_prod.id,
            "staging": staging.id,
        }
        assert rows["worker"].latest == []

    async def test_tokens_are_found_by_hash_until_revoked(self, store: Store) -> None:
        """A stored token is found by its hash, listed, and no longer found once revoked."""
        await store.add_token(_token("deploy-bot", "a" * 64))
        found = await store.find_token("a" * 64)
        assert found is not None
        assert (found.name, found.scopes, found.components) == (
            "deploy-bot",
            ("events:read",),
            ("web-*",),
        )
        assert await store.find_token("b" * 64) is None
        before = utcnow()
        assert await store.revoke_token("deploy-bot") is True
        assert await store.find_token("a" * 64) is None
        listed = await store.list_tokens()
        assert [t.name for t in listed] == ["deploy-bot"]
        revoked_at = listed[0].revoked_at
        assert revoked_at is not None and revoked_at >= before - timedelta(seconds=1)

    async def test_revoking_an_unknown_token_reports_false(self, store: Store) -> None:
        """Revoking a name with no active token changes nothing and says so."""
        assert await store.revoke_token("nobody") is False

    async def test_active_token_names_are_unique(self, store: Store) -> None:
        """A second active token of the same name is refused; after revoking, the name is free."""
        await store.add_token(_token("ci", "a" * 64))
        with pytest.raises(Conflict):
            await store.add_token(_token("ci", "b" * 64))
        await store.revoke_token("ci")
        await store.add_token(_token("ci", "c" * 64))
        assert await store.find_token("c" * 64) is not None


class DialectContract:
    """What the seed dialects need of every Store: numbers, numbered pages, kept names."""

    async def test_numbers_are_stable_increasing_and_found_per_component(
        self, store: Store
    ) -> None:
        """Each deployment gets a number, larger for later ones; it finds the deployment in
        its own component only, and builds are not found by it."""
        first, second = make_record("api", "v1"), make_record("api", "v2")
        build = make_record("api", "v3", kind="build")
        for record in (first, second, build):
            await store.record(make_command(record))
        one = await store.get_record("deployment", "api", first.id)
        two = await store.get_record("deployment", "api", second.id)
        made = await store.get_record("build", "api", build.id)
        assert one and two and made and one.number and two.number and made.number
        assert one.number < two.number < made.number
        by_number = await store.deployment_by_number("api", two.number)
        assert by_number is not None and by_number.id == second.id
        assert by_number.number == two.number
        assert await store.deployment_by_number("web", two.number) is None
        assert await store.deployment_by_number("api", made.number) is None
        listed = await store.list_records(ListQuery(kind="deployment", component="api"))
        assert {d.id: d.number for d in listed.items} == {
            first.id: one.number,
            second.id: two.number,
        }
        # The event of each record says its number, as the row does.
        events = await store.events_between(T0 - minutes(60 * 24 * 365), utcnow() + minutes(60))
        numbers = {e.deployment_id: e.payload["number"] for e in events}
        assert numbers == {first.id: one.number, second.id: two.number, build.id: made.number}

    async def test_numbered_pages_newest_first_with_total(self, store: Store) -> None:
        """Pages by offset, newest first, deployments only, with the total of the component."""
        ids = []
        for n in range(5):
            record = make_record("api", f"v{n}", finished_at=T0 + minutes(n))
            ids.append(record.id)
            await store.record(make_command(record))
        await store.record(make_command(make_record("web", "w1")))
        await store.record(make_command(make_record("api", "b1", kind="build")))
        page = await store.numbered_page("api", 2, 2)
        assert page.total == 5
        assert [d.id for d in page.items] == [ids[2], ids[1]]
        assert all(d.number for d in page.items)
        past = await store.numbered_page("api", 10, 2)
        assert (past.items, past.total) == ([], 5)
        assert (await store.numbered_page("nothing", 0, 30)).total == 0

    async def test_names_keep_their_first_spelling_and_refuse_a_shared_slug(
        self, store: Store
    ) -> None:
        """A name is kept once; its key finds it again; another key with its slug gets the
        row that holds the slug; scopes are apart."""
        first = NameRow("component", "foo app", "Foo App", "foo-app")
        assert await store.claim_name(first, T0) == first
        again = NameRow("component", "foo app", "FOO APP", "foo-app")
        assert await store.claim_name(again, T0) == first
        other = NameRow("component", "foo-app", "Foo-App", "foo-app")
        assert await store.claim_name(other, T0) == first
        elsewhere = NameRow("stage:api", "foo app", "foo APP", "foo app")
        assert await store.claim_name(elsewhere, T0) == elsewhere
