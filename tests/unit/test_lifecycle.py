"""The status machine (relay/records/lifecycle.py): every allowed and every forbidden move."""

from __future__ import annotations

import itertools

import pytest

from relay.errors import Conflict
from relay.models import TERMINAL_STATUSES, Status
from relay.records.lifecycle import (
    CANCELLED,
    COMPLETED,
    PROGRESS,
    STATUS_CHANGED,
    TERMINAL,
    InvalidTransition,
    allowed_next,
    check_transition,
)

Q, B, P, S = Status.QUEUED, Status.BUILDING, Status.PUSHING, Status.STARTING
OK, BUILD_ERR, CRASH, TIMEOUT, ABORT = (
    Status.SUCCESS,
    Status.BUILD_ERROR,
    Status.CRASHED_ERROR,
    Status.TIMEOUT_ERROR,
    Status.ABORTED,
)
ENDS = {OK: COMPLETED, BUILD_ERR: COMPLETED, CRASH: COMPLETED, TIMEOUT: COMPLETED}

# The whole table, written out by hand: (from, to) → event type of the accepted move.
ALLOWED: dict[tuple[Status, Status], str] = {
    (Q, B): STATUS_CHANGED,
    (Q, P): STATUS_CHANGED,
    (Q, S): STATUS_CHANGED,
    (B, P): STATUS_CHANGED,
    (B, S): STATUS_CHANGED,
    (P, S): STATUS_CHANGED,
    **{(start, end): kind for start in (Q, B, P, S) for end, kind in ENDS.items()},
    **{(start, ABORT): CANCELLED for start in (Q, B, P, S)},
}
PAIRS = list(itertools.product(Status, Status))
FORBIDDEN = [pair for pair in PAIRS if pair not in ALLOWED]


def test_the_table_covers_every_status() -> None:
    """The vocabulary is Scalingo's nine statuses; the hand-written table has 36 moves."""
    assert {s.value for s in Status} == {
        "queued",
        "building",
        "pushing",
        "starting",
        "success",
        "build-error",
        "crashed-error",
        "timeout-error",
        "aborted",
    }
    assert frozenset(TERMINAL) == TERMINAL_STATUSES
    assert set(PROGRESS) | set(TERMINAL) == set(Status)
    assert len(ALLOWED) == 6 + 4 * 5
    assert len(FORBIDDEN) == 81 - len(ALLOWED)


@pytest.mark.parametrize(("current", "target"), list(ALLOWED), ids=lambda s: str(s))
def test_allowed_move_gives_its_event_type(current: Status, target: Status) -> None:
    """Each allowed move is accepted and records the event of its kind."""
    assert check_transition(current, target) == ALLOWED[(current, target)]
    assert target in allowed_next(current)


@pytest.mark.parametrize(("current", "target"), FORBIDDEN, ids=lambda s: str(s))
def test_forbidden_move_is_a_409_with_the_current_state(current: Status, target: Status) -> None:
    """Each forbidden move raises a 409 naming the current status and the allowed ones."""
    with pytest.raises(InvalidTransition) as caught:
        check_transition(current, target)
    error = caught.value
    assert isinstance(error, Conflict) and error.status == 409
    body = error.to_json()["error"]
    assert body["code"] == "invalid_transition"
    assert body["current_status"] == current.value
    assert body["allowed_next"] == [s.value for s in allowed_next(current)]
    assert target.value not in body["allowed_next"]
    assert current.value in body["message"]


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_restating_the_current_status_is_refused(status: Status) -> None:
    """Sending the status a deployment already has is a 409, never a silent no-op."""
    with pytest.raises(InvalidTransition, match="already"):
        check_transition(status, status)


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES), ids=str)
def test_nothing_follows_a_terminal_status(status: Status) -> None:
    """A terminal status allows no move at all."""
    assert allowed_next(status) == ()


def test_allowed_next_lists_later_steps_then_every_end() -> None:
    """From building: pushing and starting (forward only), then every terminal status."""
    assert allowed_next(B) == (P, S, OK, BUILD_ERR, CRASH, TIMEOUT, ABORT)
    assert allowed_next(S) == (OK, BUILD_ERR, CRASH, TIMEOUT, ABORT)


def test_going_back_is_explained() -> None:
    """A backward move says that in-progress statuses only move forward."""
    with pytest.raises(InvalidTransition, match="only move forward"):
        check_transition(P, B)
