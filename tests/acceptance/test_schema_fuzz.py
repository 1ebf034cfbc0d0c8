"""Schemathesis against `/openapi.json` of a whole relay over real HTTP: no 5xx, and
every answer matches the documented schema (a bounded run here; `make fuzz` runs more)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from relay.api.keys import OPENAPI
from relay.app import create_app
from tests.acceptance.served import ThreadedRelay
from tests.support import ADMIN_TOKEN, make_settings

# `make fuzz` sets RELAY_FUZZ_EXAMPLES=500; `make test` keeps the run short.
EXAMPLES = int(os.environ.get("RELAY_FUZZ_EXAMPLES", "15"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def relay_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a relay on a fresh SQLite file."""
    relay = ThreadedRelay(tmp_path_factory.mktemp("fuzz") / "relay.db", handler_cancellation=True)
    url = relay.start()
    try:
        yield url
    finally:
        relay.stop()


# The operations are known at collection time (they parametrize the test); the fixture
# checks the running relay serves this very document.
DOCUMENT = create_app(make_settings(None), dispatch=False)[OPENAPI]
schema = schemathesis.openapi.from_dict(DOCUMENT)
# Live streams never end, so a request/answer fuzzer would wait on them until its
# timeout: they get their own test below, which reads only the head of the answer.
STREAMS = ["/events", "/stream"]


def test_the_served_document_is_the_fuzzed_one(relay_url: str) -> None:
    """`GET /openapi.json` serves the document the fuzz run is generated from."""
    assert requests.get(f"{relay_url}/openapi.json", timeout=10).json() == DOCUMENT


@schema.exclude(path=STREAMS).parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_answers_match_the_documented_schema(case: Case, relay_url: str) -> None:
    """Generated requests to every operation never get a 5xx nor an undocumented answer."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    case.call_and_validate(base_url=relay_url, headers=headers, checks=CHECKS, timeout=10)


@settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(case=schema["/events"]["GET"].as_strategy())
def test_event_stream_answers_without_5xx(relay_url: str, case: Case) -> None:
    """Generated `GET /events` queries open a stream or get a documented JSON 4xx."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    kwargs = case.as_transport_kwargs(base_url=relay_url, headers=headers)
    # requests, not case.call: that reads the whole body, and a stream has no end.
    with requests.request(**kwargs, stream=True, timeout=10) as response:
        assert response.status_code < 500
        ctype = response.headers["Content-Type"]
        if response.status_code == 200:
            assert ctype.startswith("text/event-stream")
        else:
            assert ctype.startswith("application/json")
            assert str(response.status_code) in DOCUMENT["paths"]["/events"]["get"]["responses"]
            assert set(response.json()["error"]) >= {"code", "message"}
