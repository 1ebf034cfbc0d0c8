"""Handlers of releases: named groups of deployments."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from relay.api.keys import RELEASES
from relay.api.parsing import request_fields
from relay.api.records import decode_cursor, encode_cursor, json_answer, next_url, principal_of
from relay.api.routes import Route
from relay.records.releases import Release, ReleaseIn
from relay.records.service import parse_query


class ReleaseParams(BaseModel):
    """Query parameters of the releases listing."""

    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, description="From the previous page's Link header.")


async def create_release(request: web.Request) -> web.Response:
    """Group deployments (any components) into a named release; `release.created` goes to
    the forwarders whose `match` accepts it. 422 names unknown deployment ids."""
    release, warnings = await request.app[RELEASES].create(
        await request_fields(request), principal_of(request)
    )
    body = release.model_dump(mode="json")
    if warnings:
        body["warnings"] = warnings
    return json_answer(body, status=201, headers={"Location": f"/releases/{release.id}"})


async def list_releases(request: web.Request) -> web.Response:
    """Releases, newest first; the next page is in the `Link` header."""
    params = parse_query(ReleaseParams, request.query)
    after = decode_cursor(params.cursor) if params.cursor else None
    listing = await request.app[RELEASES].page(params.limit, after, principal_of(request))
    headers = {}
    if listing.next_cursor is not None:
        url = next_url(request, encode_cursor(listing.next_cursor))
        headers["Link"] = f'<{url}>; rel="next"'
    return json_answer([r.model_dump(mode="json") for r in listing.items], headers=headers)


async def get_release(request: web.Request) -> web.Response:
    """One release with its deployments."""
    release = await request.app[RELEASES].get(request.match_info["id"], principal_of(request))
    return json_answer(release.model_dump(mode="json"))


def routes() -> list[Route]:
    """Routes of this module."""
    return [
        Route(
            "POST",
            "/releases",
            create_release,
            "Create a release",
            "releases",
            body=ReleaseIn,
            response=Release,
            status=201,
        ),
        Route(
            "GET",
            "/releases",
            list_releases,
            "List releases, newest first",
            "releases",
            query=ReleaseParams,
            response=Release,
            response_is_list=True,
        ),
        Route(
            "GET", "/releases/{id}", get_release, "Get one release", "releases", response=Release
        ),
    ]
