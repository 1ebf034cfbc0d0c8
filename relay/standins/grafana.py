"""A strict stand-in for Grafana's annotations HTTP API.

Validates `PostAnnotationsCmd` / `PatchAnnotationsCmd` the way Grafana's Go JSON
decoding and handler checks do (TARGETS.md "Grafana — annotations") and keeps
the annotations it created in `annotations`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.standins.base import Receiver, Rejected, parse_json, require_bearer

# Fields Grafana's Go structs declare as int64.
_INT_FIELDS = ("time", "timeEnd", "panelId", "dashboardId")


def _is_int(value: Any) -> bool:
    # Go rejects 1.5, "1" and true for an int64 field; Python's bool is an int.
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(message: str) -> Rejected:
    return Rejected(400, {"message": message})


def stored_tags(tags: list[str]) -> list[str]:
    """Tags as Grafana's store keeps them: `key:value` split at the first colon and cut at
    the second, both sides trimmed; empty keys and repeated pairs dropped."""
    pairs: list[tuple[str, str]] = []
    for tag in tags:
        parts = tag.split(":")
        key, value = parts[0].strip(" "), parts[1].strip(" ") if len(parts) > 1 else ""
        if key and (key, value) not in pairs:
            pairs.append((key, value))
    return [f"{key}:{value}" if value else key for key, value in pairs]


def estimated_length(tags: list[str]) -> int:
    """What Grafana checks against `tags_length`: the tags as a JSON list, in bytes,
    quotes and commas counted, escapes not."""
    return 2 + sum(len(t.encode()) + 2 for t in tags) + max(len(tags) - 1, 0)


def check_types(body: Any) -> dict[str, Any]:
    """The body as an object whose known fields have Grafana's types; else Rejected(400)."""
    if not isinstance(body, dict):
        raise _bad("bad request data")
    for name in _INT_FIELDS:
        if body.get(name) is not None and not _is_int(body[name]):
            raise _bad("bad request data")
    text = body.get("text")
    if text is not None and not isinstance(text, str):
        raise _bad("bad request data")
    tags = body.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise _bad("bad request data")
    uid = body.get("dashboardUID")
    if uid is not None and not isinstance(uid, str):
        raise _bad("bad request data")
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise _bad("bad request data")
    return body


class GrafanaReceiver(Receiver):
    """POST /api/annotations and PATCH /api/annotations/{id}, with Bearer auth."""

    name = "grafana"

    def __init__(
        self,
        token: str | None = "grafana-token",
        forbidden: set[str] | None = None,
        tags_length: int = 500,
        tag_part_length: int = 100,
    ) -> None:
        super().__init__()
        self.token = token
        # The `tag` table's key and value columns (VARCHAR(100) but in recent versions):
        # PostgreSQL and MySQL refuse a longer one, and Grafana answers 500.
        self.tag_part_length = tag_part_length
        # `[annotations] tags_length`: an annotation whose tags are longer is refused.
        self.tags_length = tags_length
        # Tokens that authenticate but lack annotations:create (Viewer role) -> 403.
        self.forbidden = forbidden or set()
        self.annotations: dict[int, dict[str, Any]] = {}
        # Every deprecated dashboardId seen, so tests can assert relay never sends one.
        self.dashboard_ids: list[Any] = []
        self._next_id = 1

    def routes(self) -> list[web.RouteDef]:
        """The two annotation endpoints relay uses."""
        return [
            web.post("/api/annotations", self.wrap(self.create)),
            web.patch("/api/annotations/{id}", self.wrap(self.patch)),
        ]

    def _tags(self, tags: list[str]) -> list[str]:
        """The tags as stored; Rejected(400) beyond `tags_length`, like Grafana's store."""
        stored = stored_tags(tags)
        if estimated_length(stored) > self.tags_length:
            raise Rejected(
                400,
                {
                    "message": "Tags length exceeds the maximum allowed.",
                    "messageId": "annotations.tag-limit-exceeded",
                    "statusCode": 400,
                },
            )
        parts = (part for tag in stored for part in tag.split(":", 1))
        if any(len(part) > self.tag_part_length for part in parts):
            raise Rejected(500, {"message": "Failed to save annotation"})
        return stored

    def _authorize(self, request: web.Request, action: str) -> None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if token in self.forbidden:
            message = (
                "You'll need additional permissions to perform this action. "
                f"Permissions needed: {action}"
            )
            raise Rejected(403, {"message": message})
        require_bearer(request, self.token)

    async def create(self, request: web.Request, raw: bytes) -> tuple[int, Any]:
        """Add an annotation: text required, time/timeEnd integer ms, not both zero."""
        self._authorize(request, "annotations:create")
        body = check_types(parse_json(raw))
        if "dashboardId" in body:
            self.dashboard_ids.append(body["dashboardId"])
        if not body.get("text"):
            raise _bad("Failed to save annotation: text field should not be empty")
        if not body.get("time") and not body.get("timeEnd"):
            raise _bad("Failed to save annotation: time and timeEnd cannot both be 0")
        tags = self._tags(list(body.get("tags") or []))
        annotation_id = self._next_id
        self._next_id += 1
        time = body.get("time") or body["timeEnd"]
        self.annotations[annotation_id] = {
            "id": annotation_id,
            "text": body["text"],
            "time": time,
            # Grafana stores a point annotation as a region of zero length.
            "timeEnd": body.get("timeEnd") or time,
            "tags": tags,
            "dashboardUID": body.get("dashboardUID"),
            "panelId": body.get("panelId"),
            "data": body.get("data") or {},
            "orgId": request.headers.get("X-Grafana-Org-Id"),
        }
        return 200, {"message": "Annotation added", "id": annotation_id}

    async def patch(self, request: web.Request, raw: bytes) -> tuple[int, Any]:
        """Update the given fields of an existing annotation; 404 when the id is unknown."""
        self._authorize(request, "annotations:write")
        try:
            annotation_id = int(request.match_info["id"])
        except ValueError:
            raise _bad("annotationId is invalid") from None
        body = check_types(parse_json(raw))
        annotation = self.annotations.get(annotation_id)
        if annotation is None:
            raise Rejected(404, {"message": "Annotation not found"})
        tags = self._tags(list(body["tags"])) if body.get("tags") is not None else None
        # Like Grafana: zero/empty values mean "leave unchanged".
        for key in ("text", "time", "timeEnd", "data"):
            if body.get(key):
                annotation[key] = body[key]
        if tags is not None:
            annotation["tags"] = tags
        return 200, {"message": "Annotation patched"}
