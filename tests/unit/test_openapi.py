"""The OpenAPI 3.1 document built from the route table (relay/api/openapi.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from relay.api import all_routes
from relay.api.openapi import build_openapi
from tests.support import RELEASEBITS_FIELDS


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The OpenAPI document of every route."""
    return build_openapi(all_routes())


def test_is_openapi_3_1(doc: dict[str, Any]) -> None:
    """The document declares OpenAPI 3.1.0 and has info, paths and components."""
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "relay"
    assert doc["info"]["version"]
    assert set(doc) >= {"paths", "components", "security"}


def test_deployment_paths_are_described(doc: dict[str, Any]) -> None:
    """The ReleaseBits paths are there with the methods they answer."""
    paths = doc["paths"]
    assert set(paths["/components/{slug}/deployments"]) == {"get", "post"}
    assert set(paths["/components/{slug}/deployments/{id}"]) == {"get", "patch", "delete"}
    assert set(paths["/components/{slug}/builds"]) == {"get", "post"}
    assert set(paths["/components"]) == {"get"}
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert "get" in paths[path]


def test_lifecycle_dialect_and_release_paths_are_described(doc: dict[str, Any]) -> None:
    """PATCH/DELETE, the output log, Retrace's commands and releases have their models."""
    paths = doc["paths"]
    patch = paths["/components/{slug}/deployments/{id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/TransitionIn"
    )
    assert "409" in patch["responses"]
    output = paths["/components/{slug}/deployments/{id}/output"]
    assert set(output) == {"get", "post"}
    assert "text/plain" in output["get"]["responses"]["200"]["content"]
    for command in ("start", "complete", "cancel"):
        op = paths[f"/api/v1/deployments/{command}"]["post"]
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/RetraceIn"
        )
    assert set(paths["/releases"]) == {"get", "post"}
    assert set(paths["/releases/{id}"]) == {"get"}
    schemas = doc["components"]["schemas"]
    assert set(schemas["RetraceIn"]["required"]) == {"AppName", "EnvironmentName", "Version"}
    assert {"is_live", "is_rollback", "reverted", "reverted_at", "reverted_by"} <= set(
        schemas["Deployment"]["properties"]
    )


def test_deployment_in_requires_version(doc: dict[str, Any]) -> None:
    """DeploymentIn requires `version` and documents every ReleaseBits field."""
    schema = doc["components"]["schemas"]["DeploymentIn"]
    assert schema["required"] == ["version"]
    assert set(schema["properties"]) >= set(RELEASEBITS_FIELDS)


def test_post_accepts_json_and_forms_and_answers_201(doc: dict[str, Any]) -> None:
    """POST deployments takes JSON or form bodies, an Idempotency-Key, and answers 201."""
    post = doc["paths"]["/components/{slug}/deployments"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert "201" in post["responses"]
    assert {"401", "403", "413", "415", "422"} <= set(post["responses"])
    headers = [p["name"] for p in post["parameters"] if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]


def test_list_documents_its_query_parameters(doc: dict[str, Any]) -> None:
    """GET deployments documents its filters and paging parameters."""
    get = doc["paths"]["/components/{slug}/deployments"]["get"]
    query = {p["name"] for p in get["parameters"] if p["in"] == "query"}
    assert query == {"stage", "result", "status", "since", "until", "limit", "cursor"}
    assert get["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"


def test_public_operations_need_no_token(doc: dict[str, Any]) -> None:
    """Health, readiness and the docs are marked as needing no security."""
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert doc["paths"][path]["get"]["security"] == []
    assert "security" not in doc["paths"]["/components"]["get"]


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    """Each $ref points at a schema the document defines."""
    text = json.dumps(doc)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs
    assert refs <= set(doc["components"]["schemas"])
    assert "$defs" not in text


def test_path_parameters_are_declared(doc: dict[str, Any]) -> None:
    """Every {name} in a path is declared as a required path parameter."""
    for path, item in doc["paths"].items():
        names = set(re.findall(r"{(\w+)}", path))
        for op in item.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, declared)
            assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")


def test_the_document_matches_what_the_api_really_answers() -> None:
    """PUT may answer 200, a WebSocket 426, SSE events are objects, limits answer 429."""
    paths = build_openapi(all_routes())["paths"]
    assert {"200", "201"} <= set(paths["/components/{slug}"]["put"]["responses"])
    assert "426" in paths["/stream"]["get"]["responses"]
    sse = paths["/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
    assert sse["schema"]["type"] == "object" and "data" in sse["schema"]["properties"]
    assert "429" in paths["/components"]["get"]["responses"]


def test_every_operation_documents_its_success(doc: dict[str, Any]) -> None:
    """Each operation documents one success answer: a 2xx, or 101 for a WebSocket."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            success = [c for c in op["responses"] if c.startswith(("1", "2"))]
            assert success, (method, path)
            if c101 := [c for c in success if c == "101"]:
                assert "426" in op["responses"] and c101 == success, path


def test_only_errors_an_operation_can_answer(doc: dict[str, Any]) -> None:
    """Every operation documents 400 (a request head the parser refuses); no GET 413 or
    415 (it reads no body); operations that check no token no 401; a listing no 404;
    the Cloud66 POST (no body read, no Idempotency-Key) no 413, no 409."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            if method == "get":
                assert not codes & {"413", "415"}, path
            assert "400" in codes, path  # a request head the parser refuses
    paths = doc["paths"]
    for path in ("/healthz", "/docs", "/openapi.json", "/stream"):
        assert not {"401", "403"} & set(paths[path]["get"]["responses"]), path
    assert "404" not in paths["/components/{slug}/deployments"]["get"]["responses"]
    assert "404" in paths["/components/{slug}/deployments/{id}"]["get"]["responses"]
    cloud66 = paths["/api/3/stacks/{stack_id}/deployments"]["post"]["responses"]
    assert not {"409", "413"} & set(cloud66) and {"200", "404", "422"} <= set(cloud66)
    assert "409" in paths["/api/v1/deployments/complete"]["post"]["responses"]
    assert set(paths["/v1/apps/{app}/caches/deployment"]["delete"]["responses"]) >= {"204"}


def test_retrace_commands_document_the_404_of_strict_components(doc: dict[str, Any]) -> None:
    """start, complete and cancel answer 404 for an unknown AppName under
    strict_components (tests/acceptance/test_retrace.py): the document says so."""
    for command in ("start", "complete", "cancel"):
        codes = set(doc["paths"][f"/api/v1/deployments/{command}"]["post"]["responses"])
        assert {"404", "409", "413", "415", "422"} <= codes, command


def test_dialect_paths_are_described(doc: dict[str, Any]) -> None:
    """The Cloud66 and Scalingo operations are in the document with their answer models."""
    paths = doc["paths"]
    assert set(paths["/api/3/stacks/{stack_id}/deployments"]) == {"get", "post"}
    assert set(paths["/api/3/stacks/{stack_id}/deployments/{deployment_id}"]) == {"get", "delete"}
    assert set(paths["/v1/apps/{app}/deployments"]) == {"get", "post"}
    assert "get" in paths["/v1/apps/{app}/deployments_stream"]
    schemas = doc["components"]["schemas"]
    assert schemas["Cloud66Deployment"]["properties"]["id"]["type"] == "integer"
    assert "number" in schemas["Deployment"]["properties"]


def test_idempotency_key_only_where_it_is_honoured(doc: dict[str, Any]) -> None:
    """The Idempotency-Key header is documented on recording POSTs, not on the dialects'."""
    with_key = {
        path
        for path, item in doc["paths"].items()
        for op in item.values()
        if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))
    }
    assert with_key == {"/components/{slug}/deployments", "/components/{slug}/builds"}
