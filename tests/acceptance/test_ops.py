"""Operations: liveness, readiness, the API description, request ids."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.acceptance.api import Client, bearer, post_json


async def test_healthz(client: Client) -> None:
    """/healthz answers 200 {"status": "ok"}."""
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_when_ready(client: Client) -> None:
    """/readyz answers 200 {"status": "ready"} once the store is open and migrated."""
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_schema_is_not_migrated(client: Client, db_path: Path) -> None:
    """/readyz answers 503 with a reason when the database lost its migrations."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("DELETE FROM schema_migrations")
    conn.close()
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert "migrations" in body["reason"]
    # Liveness is unaffected: the process still answers.
    assert (await client.get("/healthz")).status == 200


async def test_openapi_document(client: Client) -> None:
    """/openapi.json is OpenAPI 3.1 with the deployment paths and DeploymentIn requiring version."""
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    doc = await response.json()
    assert doc["openapi"] == "3.1.0"
    assert {"post", "get"} <= set(doc["paths"]["/components/{slug}/deployments"])
    assert "get" in doc["paths"]["/components/{slug}/deployments/{id}"]
    deployment_in = doc["components"]["schemas"]["DeploymentIn"]
    assert "version" in deployment_in["required"]
    post = doc["paths"]["/components/{slug}/deployments"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/DeploymentIn"


async def test_docs_page_is_self_contained(client: Client) -> None:
    """/docs is an HTML page that reads openapi.json and loads nothing from elsewhere."""
    response = await client.get("/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert "openapi.json" in page
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)=["']//""", page)


@pytest.mark.parametrize(
    ("method", "path", "authorised", "status"),
    [
        ("GET", "/healthz", False, 200),
        ("GET", "/components", True, 200),
        ("GET", "/components", False, 401),
        ("GET", "/nope", False, 404),
        ("DELETE", "/components", True, 405),
        ("GET", "/components/api/deployments?limit=0", True, 422),
    ],
)
async def test_every_response_has_a_request_id(
    client: Client, method: str, path: str, authorised: bool, status: int
) -> None:
    """Every answer, success or error, carries an X-Request-ID header."""
    response = await client.request(method, path, headers=bearer() if authorised else {})
    assert response.status == status
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])


async def test_created_answer_has_a_request_id(client: Client) -> None:
    """A 201 carries an X-Request-ID too."""
    response = await post_json(client, "/components/api/deployments", {"version": "v1"})
    assert response.status == 201
    assert response.headers["X-Request-ID"]


async def test_request_ids_are_unique(client: Client) -> None:
    """Two requests get two different ids."""
    first = await client.get("/healthz")
    second = await client.get("/healthz")
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


async def test_incoming_request_id_is_echoed(client: Client) -> None:
    """An X-Request-ID sent by the client (e.g. a proxy's) comes back unchanged."""
    for path, headers in (("/healthz", {}), ("/components", {}), ("/nope", bearer())):
        response = await client.get(path, headers={"X-Request-ID": "trace-abc-123", **headers})
        assert response.headers["X-Request-ID"] == "trace-abc-123"


async def test_overlong_request_id_is_replaced(client: Client) -> None:
    """An incoming X-Request-ID over 100 characters is replaced by a fresh one."""
    response = await client.get("/healthz", headers={"X-Request-ID": "x" * 101})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
