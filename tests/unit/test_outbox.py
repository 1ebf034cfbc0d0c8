"""What goes into the outbox: one delivery per enabled forwarder whose `match` accepts the
event (relay.records.service.planner_for with forwarders.base.MatchRule)."""

from __future__ import annotations

from typing import Any

import pytest

from forwarders.base import ForwarderConfig, MatchRule
from relay.records.service import planner_for
from relay.store.base import NewEvent
from tests.support import T0, make_record

FORWARDERS = [
    {"name": "everything"},
    {"name": "production", "match": {"stages": ["prod*"]}},
    {"name": "staging", "match": {"stages": ["staging", "qa-?"]}},
    {"name": "web", "match": {"components": ["web-*"]}},
    {"name": "failures", "match": {"results": ["fail*", "error"]}},
    {"name": "lifecycle", "match": {"events": ["deployment.started", "deployment.completed"]}},
    {"name": "builds", "match": {"events": ["build.*"]}},
    {"name": "prod-api", "match": {"components": ["api"], "stages": ["production"]}},
    {"name": "switched-off", "enabled": False},
    {"name": "off-prod", "enabled": False, "match": {"stages": ["production"]}},
]


def planned(event_type: str = "deployment.created", **record: Any) -> set[str]:
    """Names of the forwarders planned for one event of a deployment like `record`."""
    configs = [ForwarderConfig.model_validate({"type": "test", **f}) for f in FORWARDERS]
    deployment = make_record(**record)
    event = NewEvent(
        id="evt", type=event_type, created_at=T0, data=deployment.model_dump(mode="json")
    )
    deliveries = planner_for(configs)(event, deployment)
    assert all(d.next_attempt_at == T0 for d in deliveries)
    assert len({d.id for d in deliveries}) == len(deliveries)
    return {d.forwarder for d in deliveries}


@pytest.mark.parametrize(
    ("event_type", "record", "expected"),
    [
        (
            "deployment.created",
            {"component": "api", "stage": "production", "result": "success"},
            {"everything", "production", "prod-api"},
        ),
        (
            "deployment.created",
            {"component": "api", "stage": "prod-eu", "result": "success"},
            {"everything", "production"},
        ),
        (
            "deployment.created",
            {"component": "web-shop", "stage": "qa-1", "result": "failed"},
            {"everything", "staging", "web", "failures"},
        ),
        (
            "deployment.created",
            {"component": "web", "stage": "qa-10", "result": "error"},
            {"everything", "failures"},
        ),
        (
            "deployment.started",
            {"component": "api", "stage": "staging", "result": None},
            {"everything", "staging", "lifecycle"},
        ),
        (
            "build.created",
            {"component": "api", "kind": "build", "result": "success"},
            {"everything", "builds"},
        ),
        # No stage: only forwarders with the catch-all stage pattern get it.
        (
            "deployment.created",
            {"component": "api", "stage": None, "result": "success"},
            {"everything"},
        ),
        # No result: a results filter other than "*" does not match it.
        (
            "deployment.created",
            {"component": "web-eu", "stage": None, "result": None},
            {"everything", "web"},
        ),
    ],
)
def test_one_delivery_per_matching_enabled_forwarder(
    event_type: str, record: dict[str, Any], expected: set[str]
) -> None:
    """Every enabled forwarder whose globs all accept the event gets exactly one delivery."""
    assert planned(event_type, **record) == expected


def test_disabled_forwarders_get_nothing() -> None:
    """enabled = false: no delivery, even for an event its match accepts."""
    assert not {"switched-off", "off-prod"} & planned(stage="production")


def test_no_forwarders_no_deliveries() -> None:
    """A relay without forwarders plans nothing."""
    event = NewEvent(id="e", type="deployment.created", created_at=T0, data={})
    assert planner_for([])(event, make_record()) == []


@pytest.mark.parametrize(
    ("rule", "event_type", "data", "accepted"),
    [
        ({}, "deployment.created", {}, True),
        ({"stages": ["*"]}, "deployment.created", {"stage": None}, True),
        ({"stages": ["prod"]}, "deployment.created", {}, False),
        ({"stages": ["*prod*"]}, "deployment.created", {}, False),
        ({"stages": ["?*"]}, "deployment.created", {"stage": None}, False),
        ({"stages": ["Production"]}, "deployment.created", {"stage": "production"}, False),
        ({"components": ["api", "web-*"]}, "x", {"component": "web-eu"}, True),
        ({"components": ["api"]}, "x", {"component": "api-v2"}, False),
        ({"events": ["deployment.*"]}, "deployment.cancelled", {}, True),
        ({"events": ["deployment.*"]}, "release.created", {}, False),
        ({"results": ["[sf]*"]}, "x", {"result": "failure"}, True),
        ({"events": [], "stages": ["*"]}, "x", {}, False),
    ],
)
def test_match_rule_globs(
    rule: dict[str, Any], event_type: str, data: dict[str, Any], accepted: bool
) -> None:
    """Case-sensitive globs per attribute; an absent attribute only matches "*"."""
    assert MatchRule.model_validate(rule).accepts(event_type, data) is accepted
