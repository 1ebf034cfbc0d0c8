"""Property tests with the edge values that once found 500s: extreme years and UTC offsets
in every time field, deep nesting in every body encoding, every Content-Encoding.
Whatever is generated, the answer is never a 5xx and every error is relay's JSON.

A relay is served as `relay serve` serves it (RelayRunner) by its own event loop in a
thread; RELAY_FUZZ_EXAMPLES sets the number of examples (`make fuzz` runs more).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.acceptance.served import ThreadedRelay
from tests.support import ADMIN_TOKEN

EXAMPLES = int(os.environ.get("RELAY_FUZZ_EXAMPLES", "15"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DEPLOYMENTS = "/components/api/deployments"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a relay on a fresh SQLite file."""
    relay = ThreadedRelay(tmp_path_factory.mktemp("edge") / "relay.db")
    url = relay.start()
    try:
        yield url
    finally:
        relay.stop()


def assert_answered(response: requests.Response) -> Any:
    """No 5xx; an error is relay's JSON with a code and a message. Returns the JSON."""
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["Content-Type"].startswith("application/json"), response.text
        error = response.json()["error"]
        assert error["code"] and error["message"]
        return error
    return None


# -- times: years 1 and 9999, offsets up to ±23:59 ---------------------------------------

years = st.one_of(st.sampled_from([1, 2, 1969, 1970, 9998, 9999]), st.integers(1, 9999))
offsets = st.one_of(
    st.sampled_from(["Z", "+00:00", "-23:59", "+23:59", "-01:00", "+05:00"]),
    st.builds(
        lambda sign, h, m: f"{sign}{h:02}:{m:02}",
        st.sampled_from("+-"),
        st.integers(0, 23),
        st.integers(0, 59),
    ),
)
# The last instants of the calendar, to the microsecond: SQLite reads times to the
# millisecond, and rounds the last half millisecond of year 9999 into year 10000.
fractions = st.sampled_from(["", ".5", ".999", ".9995", ".999999"])
times = st.one_of(
    st.builds(
        lambda y, mo, d, h, frac, off: f"{y:04}-{mo:02}-{d:02}T{h:02}:59:59{frac}{off}",
        years,
        st.integers(1, 12),
        st.integers(1, 28),
        st.sampled_from([0, 12, 23]),
        fractions,
        offsets,
    ),
    st.builds(lambda frac, off: f"9999-12-31T23:59:59{frac}{off}", fractions, offsets),
)


def _names_field(error: Any, field: str) -> None:
    if error is not None and error["code"] == "validation_error":
        assert field in [d["field"] for d in error.get("details", [])], error


@FUZZ
@given(started=times, finished=times)
def test_extreme_times_in_a_post_and_a_patch(base: str, started: str, finished: str) -> None:
    """POST started_at and PATCH finished_at at the edges of the calendar: 201/200 or a 422
    naming the field."""
    post = requests.post(
        base + DEPLOYMENTS,
        json={"version": "v1", "status": "starting", "started_at": started},
        headers=AUTH,
        timeout=10,
    )
    _names_field(assert_answered(post), "started_at")
    if post.status_code != 201:
        return
    patch = requests.patch(
        base + post.headers["Location"],
        json={"status": "success", "finished_at": finished},
        headers=AUTH,
        timeout=10,
    )
    _names_field(assert_answered(patch), "finished_at")


@FUZZ
@given(since=times, until=times)
def test_extreme_times_in_lists_and_a_replay_window(base: str, since: str, until: str) -> None:
    """`since`/`until` on both lists and in a replay window never give a 5xx."""
    for path in (DEPLOYMENTS, "/deliveries"):
        answer = requests.get(
            base + path, params={"since": since, "until": until}, headers=AUTH, timeout=10
        )
        assert_answered(answer)
    replay = requests.post(
        base + "/forwarders/none/replay",
        json={"since": since, "until": until},
        headers=AUTH,
        timeout=10,
    )
    assert_answered(replay)


# -- deep nesting in every encoding ------------------------------------------------------

depths = st.one_of(st.sampled_from([31, 32, 33, 64, 65, 1000, 5000]), st.integers(0, 3000))


def _json_nested(depth: int, kind: str) -> bytes:
    opening, closing = ("[", "]") if kind == "array" else ('{"a":', "}")
    inner = "1" if kind == "object" else ""
    return f'{{"version":"v1","extra":{opening * depth}{inner}{closing * depth}}}'.encode()


@FUZZ
@given(depth=depths, kind=st.sampled_from(["array", "object"]), key=st.booleans())
def test_deep_json(base: str, depth: int, kind: str, key: bool) -> None:
    """A deeply nested JSON body, with or without an Idempotency-Key: never a 5xx."""
    headers = {**AUTH, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = f"deep-{kind}-{depth}"
    body = _json_nested(depth, kind) if depth else b'{"version":"v1"}'
    assert_answered(requests.post(base + DEPLOYMENTS, data=body, headers=headers, timeout=30))


@FUZZ
@given(depth=depths, where=st.sampled_from(["form", "query", "multipart"]), key=st.booleans())
def test_deep_brackets(base: str, depth: int, where: str, key: bool) -> None:
    """`meta_data[a][a]...` deep in a form body, a query string or a multipart form."""
    name = "meta_data" + "[a]" * depth
    headers = dict(AUTH)
    if key:
        headers["Idempotency-Key"] = f"brackets-{where}-{depth}"
    url = base + DEPLOYMENTS
    if where == "form":
        answer = requests.post(url, data={"version": "v1", name: "1"}, headers=headers, timeout=30)
    elif where == "multipart":
        files = {"version": (None, "v1"), name: (None, "1")}
        answer = requests.post(url, files=files, headers=headers, timeout=30)
    else:
        answer = requests.post(
            url, params={"version": "v1", name: "1"}, headers=headers, timeout=30
        )
    assert_answered(answer)


# -- every Content-Encoding --------------------------------------------------------------

CODINGS = ["gzip", "deflate", "br", "zstd", "identity", "x-bogus", "gzip, gzip", "GZIP", "compress"]


def _encode(coding: str, body: bytes, honest: bool) -> bytes:
    if not honest:
        return body
    if coding.lower() == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    return body


@FUZZ
@given(
    coding=st.sampled_from(CODINGS),
    honest=st.booleans(),
    junk=st.binary(max_size=64),
    form=st.booleans(),
)
def test_every_content_encoding(
    base: str, coding: str, honest: bool, junk: bytes, form: bool
) -> None:
    """A body in (or pretending to be in) any Content-Encoding: recorded, or a JSON 4xx;
    an unsupported coding is a 415."""
    plain = b"version=v1" if form else b'{"version":"v1"}'
    body = _encode(coding, plain, honest) + (b"" if honest else junk)
    ctype = "application/x-www-form-urlencoded" if form else "application/json"
    headers = {**AUTH, "Content-Type": ctype, "Content-Encoding": coding}
    answer = requests.post(base + DEPLOYMENTS, data=body, headers=headers, timeout=10)
    error = assert_answered(answer)
    if coding in ("x-bogus", "gzip, gzip", "compress"):
        assert answer.status_code == 415, error
