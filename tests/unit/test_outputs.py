"""Output logs (relay/records/outputs.py): line splitting, rendering, hooks, limits."""

from __future__ import annotations

import pytest

from relay.auth import Principal
from relay.errors import BodyTooLarge, NotFound
from relay.models import Deployment
from relay.records.outputs import OutputService, render, split_lines
from relay.records.service import RecordService
from relay.store.memory.store import MemoryStore

CI = Principal("ci", frozenset({"events:write", "events:read"}), ("*",))


@pytest.mark.parametrize(
    ("text", "lines"),
    [
        ("", []),
        ("one", ["one"]),
        ("one\n", ["one"]),
        ("one\r\ntwo\r\n", ["one", "two"]),
        ("a\n\nb", ["a", "", "b"]),
        ("\n", [""]),
        ("progress 10%\rprogress 20%\n", ["progress 10%\rprogress 20%"]),
    ],
)
def test_split_lines(text: str, lines: list[str]) -> None:
    """CRLF and LF end lines; a final newline adds no empty line; a lone CR stays."""
    assert split_lines(text) == lines
    if lines:
        assert split_lines(render(lines)) == lines


async def _service(limit: int = 1000) -> tuple[OutputService, str]:
    records = RecordService(MemoryStore())
    result = await records.record("deployment", "api", {"version": "v1", "status": "building"}, CI)
    return OutputService(records, limit_bytes=limit), result.answer.body["id"]


async def test_hooks_see_each_durable_append_and_a_broken_one_is_contained() -> None:
    """on_output hooks get (deployment, lines); one that raises does not fail the append."""
    service, record_id = await _service()
    seen: list[tuple[str, list[str]]] = []

    def broken(deployment: Deployment, lines: list[str]) -> None:
        raise RuntimeError("watcher bug")

    service.on_output += [broken, lambda d, lines: seen.append((d.id, lines))]
    appended = await service.append("api", record_id, "a\nb\n", CI)
    assert (appended.appended, appended.lines, appended.bytes) == (2, 2, 4)
    empty = await service.append("api", record_id, "", CI)
    assert (empty.appended, empty.lines) == (0, 2)
    assert seen == [(record_id, ["a", "b"])]
    assert await service.read("api", record_id, CI) == "a\nb\n"


async def test_the_limit_refuses_the_whole_append() -> None:
    """An append that would pass the limit is a 413 and appends nothing."""
    service, record_id = await _service(limit=5)
    await service.append("api", record_id, "abcd", CI)
    with pytest.raises(BodyTooLarge):
        await service.append("api", record_id, "e", CI)
    assert await service.read("api", record_id, CI) == "abcd\n"


async def test_unknown_deployment_is_not_found() -> None:
    """Appending to or reading an unknown deployment is a 404."""
    service, _ = await _service()
    with pytest.raises(NotFound):
        await service.append("api", "nope", "x", CI)
    with pytest.raises(NotFound):
        await service.read("api", "nope", CI)
