"""The pure mappings of the Cloud66 and Scalingo dialects (relay/records/cloud66.py,
relay/records/scalingo.py): code tables, pagination blocks, answer shapes."""

from __future__ import annotations

import pytest

from relay.errors import NotFound
from relay.models import Status
from relay.records import cloud66, scalingo
from tests.support import T0, make_record, minutes


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (Status.QUEUED, 0),
        (Status.STARTING, 0),
        (Status.SUCCESS, 1),
        (Status.BUILD_ERROR, 2),
        (Status.CRASHED_ERROR, 2),
        (Status.TIMEOUT_ERROR, 2),
        (Status.ABORTED, 3),
    ],
)
def test_cloud66_outcome_codes(status: Status, code: int) -> None:
    """Every relay status has its Cloud66 outcome code (the README's table)."""
    assert cloud66.outcome_code(status) == code
    assert code in cloud66.OUTCOMES


def test_cloud66_triggered_via_defaults_to_api() -> None:
    """meta_data.triggered_via picks a code by name; anything else is `api`."""
    assert cloud66.via_code({}) == 1
    assert cloud66.via_code({"triggered_via": "web"}) == 0
    assert cloud66.via_code({"triggered_via": "cli"}) == 3
    assert cloud66.via_code({"triggered_via": ["web"]}) == 1


@pytest.mark.parametrize(
    ("page", "per_page", "total", "expected"),
    [
        (1, 30, 0, (None, None, 1)),
        (1, 30, 30, (None, None, 1)),
        (1, 30, 31, (None, 2, 2)),
        (2, 30, 31, (1, None, 2)),
        (3, 30, 31, (2, None, 2)),
        (9, 30, 31, (None, None, 2)),
    ],
)
def test_pagination_blocks(
    page: int, per_page: int, total: int, expected: tuple[int | None, int | None, int]
) -> None:
    """previous/next point at pages that exist (one past the end links back to the last)."""
    block = cloud66.pagination(page, per_page, total)
    assert (block["previous"], block["next"], block["pages"]) == expected
    assert (block["current"], block["count"], block["per_page"]) == (page, total, per_page)
    other = scalingo.pagination(page, per_page, total)
    assert (other["prev_page"], other["next_page"], other["total_pages"]) == expected


@pytest.mark.parametrize("text", ["abc", "0", "-1", "1.5", "٣", "9" * 19])
def test_cloud66_ids_are_positive_integers(text: str) -> None:
    """A path id that is no positive integer is a 404, never a 500."""
    with pytest.raises(NotFound):
        cloud66.number_of(text)


def test_scalingo_view_of_a_finished_deployment() -> None:
    """git_ref is the commit, duration the seconds it took, pusher from the token and
    meta_data, the output link absolute."""
    record = make_record("web", "v2", finished_at=T0 + minutes(2), meta_data={"user_id": "ann"})
    record = record.model_copy(update={"started_at": T0, "commit_sha": "abc1234"})
    view = scalingo.deployment_view(record, "https://relay.example")
    assert (view["git_ref"], view["duration"], view["status"]) == ("abc1234", 120, "success")
    assert view["pusher"] == {"email": None, "id": record.triggered_by, "username": "ann"}
    assert view["links"]["output"] == (
        f"https://relay.example/v1/apps/web/deployments/{record.id}/output"
    )
    assert "type" not in view
