"""Deploy insights every Store backend shares: subclass `InsightsContract` and give it a
`store` (counters for /metrics, DORA figures, stored secrets).

tests/unit/test_memory_insights.py runs it on the in-memory store,
tests/integration/test_sqlite_insights.py on a real SQLite file and
tests/integration/test_postgres_insights.py on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from relay.models import Deployment, Status
from relay.store.base import ListQuery, Store
from relay.store.insights_base import DoraFigures, DoraQuery
from relay.store.retention_base import RetentionPolicy
from tests.lifecycle_contract import finished
from tests.support import T0, make_command, make_record

H = timedelta(hours=1)
SINCE, UNTIL = T0, T0 + timedelta(days=30)
FAIL = Status.BUILD_ERROR


async def deploy(
    store: Store,
    version: str,
    at: datetime,
    *,
    status: Status = Status.SUCCESS,
    component: str = "web",
    stage: str | None = "production",
    lead: timedelta | None = None,
    took: timedelta | None = None,
) -> Deployment:
    """Record a deployment finished at `at` (committed `lead` and started `took` before)."""
    record = make_record(
        component,
        version,
        stage=stage,
        status=status,
        result="success" if status == Status.SUCCESS else status.value,
        created_at=at,
        finished_at=at if status.terminal else None,
    ).model_copy(
        update={
            "committed_at": at - lead if lead is not None else None,
            "started_at": at - took if took is not None else None,
        }
    )
    await store.record(make_command(record))
    return record


async def history(store: Store) -> None:
    """The hand-built history the DORA expectations below are worked out from.

    web/production in the window: successes d1 d3 d4 d5 d8 d10 d11 d12 (8); failures d2
    d6 d7, and d11 reverted by the rollback d12 (4 failed of 11). Lead times of d1 d3 d5
    d8: 7200, 3600, 86400, 600 s (median 5400, p90 86400). Recoveries: d2→d3 1800,
    d6→d8 10800, d7→d8 7200, d11→d12 3600 s (median 5400). api/production: one success
    with lead 100 s. Outside the figures: a cancelled and an in-progress deployment,
    deployments before the window, a staging deployment, a build."""
    await deploy(store, "v0", T0 - H, lead=H)
    await deploy(store, "v0b", T0 - 2 * H, status=FAIL)
    await deploy(store, "v1", T0 + H, lead=2 * H)
    await deploy(store, "v2", T0 + 5 * H, status=FAIL)
    await deploy(store, "v2", T0 + 5.5 * H, lead=H)
    await deploy(store, "v4", T0 + 24 * H)
    await deploy(store, "v5", T0 + 48 * H, lead=24 * H)
    await deploy(store, "v6", T0 + 72 * H, status=Status.CRASHED_ERROR)
    await deploy(store, "v7", T0 + 73 * H, status=Status.TIMEOUT_ERROR)
    await deploy(store, "v8", T0 + 75 * H, lead=timedelta(seconds=600))
    await deploy(store, "v9", T0 + 80 * H, status=Status.ABORTED)
    await deploy(store, "v9b", T0 + 81 * H, status=Status.BUILDING)
    await deploy(store, "v10", T0 + 96 * H)
    await deploy(store, "v11", T0 + 100 * H)
    await deploy(store, "v10", T0 + 101 * H)  # a rollback: v11 is reverted
    await deploy(store, "a1", T0 + 10 * H, component="api", lead=timedelta(seconds=100))
    await deploy(store, "s1", T0 + 3 * H, stage="staging", status=FAIL)
    build = make_record("web", "b1", kind="build", created_at=T0 + H, finished_at=T0 + H)
    await store.record(make_command(build))


WEB = DoraFigures(
    component=None,
    stage="production",
    successes=8,
    total=11,
    failed=4,
    lead_count=4,
    lead_median=5400.0,
    lead_p90=86400.0,
    recovery_count=4,
    recovery_median=5400.0,
)


class InsightsContract:
    """Insights queries of a store; subclasses provide the `store` fixture."""

    async def test_dora_figures_of_one_component_match_the_hand_built_history(
        self, store: Store
    ) -> None:
        """Counts, lead time median/p90 and recovery median are exactly the worked-out ones."""
        await history(store)
        found = await store.dora(DoraQuery(SINCE, UNTIL, "production", ("web",)))
        assert found == [WEB]

    async def test_dora_figures_of_every_component_pool_their_deployments(
        self, store: Store
    ) -> None:
        """Without a component filter the figures rest on every component's deployments."""
        await history(store)
        (found,) = await store.dora(DoraQuery(SINCE, UNTIL, "production"))
        assert (found.successes, found.total, found.failed) == (9, 12, 4)
        assert (found.lead_count, found.lead_median, found.lead_p90) == (5, 3600.0, 86400.0)
        assert (found.recovery_count, found.recovery_median) == (4, 5400.0)

    async def test_dora_grouped_gives_one_figure_per_component_and_stage(
        self, store: Store
    ) -> None:
        """Grouped, every component and stage with deployments in the window has figures."""
        await history(store)
        found = await store.dora(DoraQuery(SINCE, UNTIL, grouped=True))
        keys = [(f.component, f.stage) for f in found]
        assert keys == [("api", "production"), ("web", "production"), ("web", "staging")]
        web = found[1]
        assert web == DoraFigures(**{**WEB.__dict__, "component": "web"})
        assert (found[2].total, found[2].failed, found[2].recovery_count) == (1, 1, 0)

    async def test_dora_of_an_empty_window_is_all_zero(self, store: Store) -> None:
        """No deployment in the window: one figure, zero counts, no times."""
        await history(store)
        later = UNTIL + timedelta(days=400)
        found = await store.dora(DoraQuery(later, later + H, "production"))
        assert found == [DoraFigures(component=None, stage="production")]

    async def test_a_deployment_finished_by_a_status_change_counts_in_dora(
        self, store: Store
    ) -> None:
        """A lifecycle deployment counts once it is terminal, at its finish time."""
        started = await deploy(store, "v1", T0 + H, status=Status.BUILDING, lead=H)
        await store.transition(finished(started, Status.SUCCESS, T0 + 2 * H))
        (found,) = await store.dora(DoraQuery(SINCE, UNTIL, "production"))
        assert (found.successes, found.lead_count, found.lead_median) == (1, 1, 7200.0)

    async def test_totals_count_finished_deployments_by_status(self, store: Store) -> None:
        """Each terminal deployment counts once under its status; builds and in-progress not."""
        await history(store)
        started = await deploy(store, "v12", T0 + 200 * H, status=Status.BUILDING)
        await store.transition(finished(started, Status.SUCCESS, T0 + 201 * H))
        totals = {(t.component, t.stage, t.status): t for t in await store.deployment_totals()}
        counts = {key: t.count for key, t in totals.items()}
        assert counts == {
            ("web", "production", "success"): 10,
            ("web", "production", "build-error"): 2,
            ("web", "production", "crashed-error"): 1,
            ("web", "production", "timeout-error"): 1,
            ("web", "production", "aborted"): 1,
            ("web", "staging", "build-error"): 1,
            ("api", "production", "success"): 1,
        }
        assert totals[("web", "production", "success")].last_at == T0 + 201 * H
        assert totals[("web", "production", "build-error")].last_at == T0 + 5 * H

    async def test_totals_and_histograms_do_not_go_down_when_old_rows_are_pruned(
        self, store: Store
    ) -> None:
        """Retention deletes deployments; the counters keep them."""
        for i in range(5):
            await deploy(store, f"v{i}", T0 + i * H, took=timedelta(seconds=20))
        before = (await store.deployment_totals(), await store.duration_histograms())
        policy = RetentionPolicy(deployments=timedelta(days=1))
        while (await store.prune(policy, T0 + timedelta(days=30), 100)).total:
            pass
        left = await store.list_records(ListQuery("deployment", "web", "production"))
        assert len(left.items) == 1  # only the latest is kept
        assert (await store.deployment_totals(), await store.duration_histograms()) == before

    async def test_histograms_bucket_durations_cumulatively(self, store: Store) -> None:
        """Durations 5 s, 45 s and 400 s fall in the right cumulative buckets."""
        for i, seconds in enumerate((5, 45, 400)):
            await deploy(store, f"v{i}", T0 + i * H, took=timedelta(seconds=seconds))
        await deploy(store, "no-start", T0 + 5 * H)  # no started_at: no duration
        (found,) = await store.duration_histograms()
        assert (found.component, found.stage, found.count, found.sum) == (
            "web",
            "production",
            3,
            450.0,
        )
        buckets = dict(found.buckets)
        assert (buckets[10.0], buckets[30.0], buckets[60.0], buckets[300.0]) == (1, 1, 2, 2)
        assert (buckets[600.0], buckets[float("inf")]) == (3, 3)
        assert list(buckets) == sorted(buckets)

    async def test_a_secret_is_kept_by_the_first_caller_until_replaced(self, store: Store) -> None:
        """The first candidate wins; later candidates read it; replace changes it."""
        assert await store.secret("badges", "first") == "first"
        assert await store.secret("badges", "second") == "first"
        await store.replace_secret("badges", "third")
        assert await store.secret("badges", "fourth") == "third"
        assert await store.secret("other", "x") == "x"
