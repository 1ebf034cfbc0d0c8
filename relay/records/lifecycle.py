"""The deployment status machine (Scalingo vocabulary): pure rules, no I/O.

```
queued ─► building ─► pushing ─► starting ─► success
   │          │          │          │
   └──────────┴──────────┴──────────┴─────► build-error · crashed-error
                                            timeout-error · aborted (cancelled)
```

Rules:

- a deployment only moves forward: `queued → building → pushing → starting`, and it
  may skip steps (`queued → starting` is fine, `pushing → building` is not);
- any non-terminal status may end in any terminal one (`success`, `build-error`,
  `crashed-error`, `timeout-error`, `aborted`);
- nothing leaves a terminal status;
- re-stating the current status is refused like any other invalid move (409): it
  changes nothing and records no event, and the answer says where the deployment is.

Each accepted move is one event: `deployment.status_changed` while in progress,
`deployment.completed` when it ends in success or a failure, `deployment.cancelled`
when it ends in `aborted`.
"""

from __future__ import annotations

from relay.errors import Conflict
from relay.models import Status

# The in-progress statuses in the only order a deployment may go through them.
PROGRESS = (Status.QUEUED, Status.BUILDING, Status.PUSHING, Status.STARTING)
# Terminal statuses in the order answers list them.
TERMINAL = (
    Status.SUCCESS,
    Status.BUILD_ERROR,
    Status.CRASHED_ERROR,
    Status.TIMEOUT_ERROR,
    Status.ABORTED,
)

STATUS_CHANGED = "deployment.status_changed"
COMPLETED = "deployment.completed"
CANCELLED = "deployment.cancelled"


class InvalidTransition(Conflict):
    """A status change the lifecycle forbids; the answer carries where the deployment is."""

    code = "invalid_transition"

    def __init__(self, current: Status, target: Status | None, message: str | None = None):
        allowed = allowed_next(current)
        if message is None:
            message = _explain(current, target)
        super().__init__(
            message,
            extra={
                "current_status": current.value,
                "allowed_next": [s.value for s in allowed],
            },
        )
        self.current = current
        self.target = target


def _explain(current: Status, target: Status | None) -> str:
    if current.terminal:
        return f"the deployment already ended with status {current.value!r}; nothing follows it"
    if target is None:
        return f"the deployment is {current.value!r}"
    if target == current:
        return f"the deployment is already {current.value!r}"
    return (
        f"a deployment cannot go from {current.value!r} back to {target.value!r}; "
        "in-progress statuses only move forward"
    )


def allowed_next(current: Status) -> tuple[Status, ...]:
    """Every status `current` may move to, in lifecycle order (none from a terminal one)."""
    if current.terminal:
        return ()
    later = PROGRESS[PROGRESS.index(current) + 1 :]
    return (*later, *TERMINAL)


def event_type(target: Status) -> str:
    """The event an accepted move to `target` records."""
    if target == Status.ABORTED:
        return CANCELLED
    if target.terminal:
        return COMPLETED
    return STATUS_CHANGED


def check_transition(current: Status, target: Status) -> str:
    """The event type of the move `current → target`; InvalidTransition (409) if forbidden."""
    if target not in allowed_next(current):
        raise InvalidTransition(current, target)
    return event_type(target)
