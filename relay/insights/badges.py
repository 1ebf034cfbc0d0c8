"""Badges of the live version per stage (and of the latest build): what they say, the SVG,
the shields.io endpoint JSON, and the badge keys that open them. Pure functions.

The SVG is rendered by anybadge (MIT, no dependencies, text widths measured from font
metrics, label and message XML-escaped); relay gives it its own two templates, shields'
`flat` and `flat-square` looks, each with a <title> that says the status in words.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

import anybadge

from relay.models import Deployment, Status

Style = Literal["flat", "flat-square"]
STYLES: tuple[Style, ...] = ("flat", "flat-square")

# Colour of each state: the SVG's hex code and the shields.io name of the same colour.
COLOURS = {
    "success": ("#4c1", "brightgreen"),
    "failure": ("#e05d44", "red"),
    "in progress": ("#007ec6", "blue"),
    "cancelled": ("#9f9f9f", "lightgrey"),
    "none": ("#9f9f9f", "lightgrey"),
}
_WORDS = {
    "deployment": {"failure": "failed", "in progress": "deploying", "cancelled": "cancelled"},
    "build": {
        "success": "passing",
        "failure": "failing",
        "in progress": "building",
        "cancelled": "cancelled",
    },
}

# Characters outside XML 1.0's Char production.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="{{ badge width }}" height="20" '
    'role="img" aria-label="{{ label }}: {{ value }}">\n'
    "<title>{{ label }}: {{ value }}</title>\n"
)
_TEXT = (
    '<g fill="{{ label text color }}" text-anchor="middle" font-family="{{ font name }}" '
    'font-size="{{ font size }}">\n'
    '<text x="{{ label anchor shadow }}" y="15" fill="#010101" fill-opacity=".3">'
    "{{ label }}</text>\n"
    '<text x="{{ label anchor }}" y="14">{{ label }}</text>\n</g>\n'
    '<g fill="{{ value text color }}" text-anchor="middle" font-family="{{ font name }}" '
    'font-size="{{ font size }}">\n'
    '<text x="{{ value anchor shadow }}" y="15" fill="#010101" fill-opacity=".3">'
    "{{ value }}</text>\n"
    '<text x="{{ value anchor }}" y="14">{{ value }}</text>\n</g>\n'
)
TEMPLATES: dict[Style, str] = {
    # Rounded corners and a faint gradient.
    "flat": _HEAD + _SVG + '<linearGradient id="s" x2="0" y2="100%">\n'
    '<stop offset="0" stop-color="#bbb" stop-opacity=".1"/>\n'
    '<stop offset="1" stop-opacity=".1"/>\n</linearGradient>\n'
    '<clipPath id="r"><rect width="{{ badge width }}" height="20" rx="3" fill="#fff"/>'
    "</clipPath>\n"
    '<g clip-path="url(#r)">\n'
    '<rect width="{{ color split x }}" height="20" fill="#555"/>\n'
    '<rect x="{{ color split x }}" width="{{ value width }}" height="20" fill="{{ color }}"/>\n'
    '<rect width="{{ badge width }}" height="20" fill="url(#s)"/>\n</g>\n' + _TEXT + "</svg>\n",
    # Square corners, no gradient, no text shadow.
    "flat-square": _HEAD + _SVG + '<g shape-rendering="crispEdges">\n'
    '<rect width="{{ color split x }}" height="20" fill="#555"/>\n'
    '<rect x="{{ color split x }}" width="{{ value width }}" height="20" fill="{{ color }}"/>\n'
    "</g>\n" + _TEXT.replace(' fill="#010101" fill-opacity=".3"', ' fill-opacity="0"') + "</svg>\n",
}


@dataclass(frozen=True)
class BadgeSpec:
    """What a badge says: label, message, and the state that picks its colour."""

    label: str
    message: str
    state: str  # success, failure, in progress, cancelled, none

    @property
    def colour(self) -> str:
        """The SVG colour."""
        return COLOURS[self.state][0]


def state_of(record: Deployment | None) -> str:
    """success, failure, in progress, cancelled or none."""
    if record is None:
        return "none"
    if not record.status.terminal:
        return "in progress"
    if record.status == Status.SUCCESS:
        return "success"
    return "cancelled" if record.status == Status.ABORTED else "failure"


def deployment_badge(latest: Deployment | None, live: str | None, label: str) -> BadgeSpec:
    """The live version, with the latest deployment's status when that is not it."""
    state = state_of(latest)
    if latest is None:
        return BadgeSpec(label, "no deployments", state)
    if state == "success":
        return BadgeSpec(label, f"{latest.version} ✓", state)
    news = f"{latest.version} {_WORDS['deployment'][state]}"
    return BadgeSpec(label, f"{live} · {news}" if live else news, state)


def build_badge(latest: Deployment | None, label: str) -> BadgeSpec:
    """The latest build's version and how it went."""
    state = state_of(latest)
    if latest is None:
        return BadgeSpec(label, "no builds", state)
    return BadgeSpec(label, f"{latest.version} {_WORDS['build'][state]}", state)


def xml_text(text: str) -> str:
    """`text` with every character XML 1.0 does not allow (control characters such as a
    version's ANSI colour codes, U+FFFE/U+FFFF, lone surrogates) shown as U+FFFD: one of
    them would make the whole SVG unreadable."""
    return _NOT_XML.sub("\ufffd", text)


def render_svg(spec: BadgeSpec, style: Style = "flat") -> str:
    """The badge as SVG (text escaped by anybadge)."""
    badge = anybadge.Badge(
        xml_text(spec.label),
        xml_text(spec.message),
        default_color=spec.colour,
        template=TEMPLATES[style],
    )
    svg: str = badge.badge_svg_text
    return svg


def endpoint_json(spec: BadgeSpec) -> dict[str, Any]:
    """The shields.io endpoint schema (https://shields.io/badges/endpoint-badge)."""
    return {
        "schemaVersion": 1,
        "label": spec.label,
        "message": spec.message,
        "color": COLOURS[spec.state][1],
        "isError": spec.state == "failure",
    }


def entity_tag(body: bytes) -> str:
    """A strong ETag of an answer body."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """True when an `If-None-Match` header names `etag` (or is `*`)."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def badge_key(secret: str, component: str) -> str:
    """The key that opens `component`'s badges (and nothing else): an HMAC of its name."""
    digest = hmac.new(secret.encode(), b"relay-badge\x00" + component.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def key_opens(secret: str, component: str, key: str) -> bool:
    """True when `key` is `component`'s badge key under `secret`."""
    # As bytes: compare_digest refuses str with non-ASCII characters (TypeError).
    given = key.encode("utf-8", "replace")
    return hmac.compare_digest(badge_key(secret, component).encode(), given)


def is_public(component: str, globs: tuple[str, ...]) -> bool:
    """True when a `[badges] public` glob matches `component`."""
    return any(fnmatchcase(component, glob) for glob in globs)
