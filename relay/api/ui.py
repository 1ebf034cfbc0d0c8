"""The web dashboard's files (relay/ui/): `/ui/` and its assets, and `/` sends browsers there.

The files are plain HTML, CSS and JavaScript modules shipped inside the package: nothing
is built and nothing is fetched from another origin. Every answer carries a strict
Content-Security-Policy (this origin only, no inline script or style).
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web

from relay.api.middleware import public

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # Deployments change under the page: always ask (the files are small).
    "Cache-Control": "no-cache",
}
CONTENT_TYPES = {
    ".html": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".svg": "image/svg+xml",
}
# One flat folder: a name is a file name, never a path.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*\.[a-z]{2,4}\Z")


def _file(name: str) -> web.Response:
    path = UI_DIR / name
    content_type = CONTENT_TYPES.get(path.suffix)
    if not NAME_RE.match(name) or content_type is None or not path.is_file():
        return web.Response(
            text="not found\n", status=404, content_type="text/plain", headers=SECURITY_HEADERS
        )
    return web.Response(
        body=path.read_bytes(),
        content_type=content_type,
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )


@public
async def root(request: web.Request) -> web.Response:
    """`/ui` leads to the dashboard (and so does `/` for a browser: see api/ops.py)."""
    raise web.HTTPFound("/ui/", headers=SECURITY_HEADERS)


@public
async def index(request: web.Request) -> web.Response:
    """The dashboard page (each view is a `#/…` address of it)."""
    return _file("index.html")


@public
async def asset(request: web.Request) -> web.Response:
    """A script, stylesheet or icon of the dashboard."""
    return _file(request.match_info["name"])


def register(app: web.Application) -> None:
    """Add the dashboard's routes (pages, not API operations: not in the OpenAPI document)."""
    app.router.add_get("/ui", root)
    app.router.add_get("/ui/", index)
    app.router.add_get("/ui/{name}", asset)
