"""What several forwarders share: a base class, the deployment summary, placeholders, masking.

Pure functions, but for `ConfiguredForwarder` (the base of the forwarder classes, which
keeps their config), `BaseUrl` (a config field type) and `masking` (a context manager).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated, Any, Generic, NamedTuple, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator

from forwarders.base import Delivered, Event, ForwarderConfig, ForwarderError, Outcome

ConfigT = TypeVar("ConfigT", bound=ForwarderConfig)


class ConfiguredForwarder(Generic[ConfigT]):
    """Keeps the validated config; a forwarder adds its `type`, `Config` and `send`."""

    def __init__(self, config: ConfigT) -> None:
        self.config = config


def base_url(value: str) -> str:
    """`value` without its trailing slash; ValueError unless it is an http(s) URL."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("url must start with http:// or https://")
    return value.rstrip("/")


# A config key holding the http(s) base URL of a target, kept without trailing slash.
BaseUrl = Annotated[str, AfterValidator(base_url)]


# -- the one-line summary of a deployment ---------------------------------------------------


def short_sha(sha: Any, length: int = 7) -> str | None:
    """The first `length` characters of a commit sha; None when there is none."""
    return str(sha)[:length] if sha else None


def link(data: dict[str, Any]) -> str | None:
    """meta_data.url (else .uri) when it is an http(s) URL without white space."""
    meta = data.get("meta_data")
    if not isinstance(meta, dict):
        return None
    url = meta.get("url") or meta.get("uri")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    return url if url.split() == [url] else None


# What strict URL validators (Django's, behind Sentry's URLField) accept as a host name:
# letters (any beyond ASCII too), digits and inner hyphens per label; a top-level
# domain of letters, or punycode.
_LABEL = re.compile(
    r"^[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?$"
)
_TOP_LEVEL = re.compile(
    r"^(?:[a-z\u00a1-\uffff](?:[a-z\u00a1-\uffff-]{0,61}[a-z\u00a1-\uffff])|xn--[a-z0-9]{1,59})$"
)


def strict_web_url(value: Any, max_length: int) -> str | None:
    """`value` when it is an http(s) URL of at most `max_length` characters that a strict
    validator accepts (a host with a top-level domain, localhost or an IP address; a
    valid port; no white space), else None."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length:
        return None
    if any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (parsing it is the check)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if "@" in parts.netloc and not parts.username:
        return None  # `https://@host/`, `https://:pw@host/`: userinfo needs a user name
    return value if _valid_host(parts.hostname, bracketed="[" in parts.netloc) else None


def _valid_host(host: str, *, bracketed: bool) -> bool:
    try:
        if bracketed:
            return isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address)
        if host.replace(".", "").isdigit():
            return isinstance(ipaddress.ip_address(host), ipaddress.IPv4Address)
    except ValueError:
        return False
    if host == "localhost":
        return True
    labels = host.removesuffix(".").split(".")
    if len(host) > 253 or len(labels) < 2:
        return False
    return all(_LABEL.match(label) for label in labels) and bool(_TOP_LEVEL.match(labels[-1]))


def summary(event: Event) -> str:
    """What, where, how it went, which commit, on one line (no link: see `link`).

    `Deploy web 1.2.3 to production: success (0123456 on main, host web-1)`; a build
    reads `Build web 1.2.3: success`, an unfinished deployment shows its status.
    """
    data = event.data
    if event.type.startswith("release."):
        return _release_summary(data)
    verb = "Build" if event.type.startswith("build.") else "Deploy"
    text = f"{verb} {data.get('component')} {data.get('version')}"
    if data.get("stage"):
        text += f" to {data['stage']}"
    text += f": {data.get('result') or data.get('status') or 'started'}"
    commit = " on ".join(p for p in (short_sha(data.get("commit_sha")), data.get("branch")) if p)
    details = [commit] if commit else []
    if data.get("host"):
        details.append(f"host {data['host']}")
    if details:
        text += f" ({', '.join(details)})"
    return " ".join(text.split())  # one line whatever the fields contain


def _release_summary(data: dict[str, Any]) -> str:
    """`Release Spring (Fünke): web 1.0, api 4.2` (code name only when it has one)."""
    name = f"Release {data.get('name')}"
    if data.get("code_name"):
        name += f" ({data['code_name']})"
    parts = [
        f"{d.get('component')} {d.get('version')}"
        for d in data.get("deployments") or []
        if isinstance(d, dict)
    ]
    text = f"{name}: {', '.join(parts)}" if parts else name
    return " ".join(text.split())


# -- `{name}` and `{meta_data[key]}` placeholders --------------------------------------------

# `{{`/`}}` are literal braces; `{name}` and `{name[key]}` are placeholders.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(\w+)(?:\[([^\[\]{}]+)\])?\}")


class Placeholder(NamedTuple):
    """One `{name}` or `{name[key]}` of a template; `token` is it as written."""

    token: str
    name: str
    key: str | None


def unknown_placeholder(template: str, fields: Iterable[str]) -> Placeholder | None:
    """The first placeholder that is neither `{field}` of `fields` nor `{meta_data[key]}`."""
    allowed = frozenset(fields)
    for match in _PLACEHOLDER.finditer(template):
        token, name, key = match.group(0, 1, 2)
        if name is None:
            continue  # a doubled brace
        if (name == "meta_data") != (key is not None) or (key is None and name not in allowed):
            return Placeholder(token, name, key)
    return None


def stray_brace(template: str) -> bool:
    """True when `template` has a brace that is neither doubled nor part of a placeholder."""
    rest = _PLACEHOLDER.sub("", template)
    return "{" in rest or "}" in rest


def fill(template: str, value: Callable[[Placeholder], str]) -> str:
    """`template` with each placeholder replaced by `value(placeholder)`, `{{`/`}}` by braces."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)[0]
        return value(Placeholder(match.group(0), match.group(1), match.group(2)))

    return _PLACEHOLDER.sub(replace, template)


def lookup(data: dict[str, Any], placeholder: Placeholder) -> Any:
    """The deployment value a placeholder names (None when absent)."""
    if placeholder.name != "meta_data":
        return data.get(placeholder.name)
    meta = data.get("meta_data")
    return meta.get(placeholder.key) if isinstance(meta, dict) else None


# -- secrets in what a target answered -------------------------------------------------------

# Shorter pieces of a URL are not masked: `***` for every `v1` or `api` would hide more
# than it protects.
MIN_SECRET_PART = 4
# Query parameters whose value is a credential whatever it looks like.
_SECRET_PARAM = re.compile(r"sig|signature|token|key|secret|auth|pass|code|hash|hmac", re.I)


def _key_like(part: str) -> bool:
    """A URL part that looks like a key (`T0123ABCD`, `xoxb…`, a UUID), not a word
    (`hooks`, `services`, `production`, `v1`): masking words would blank them out of
    every log line, as secrets are masked wherever they appear."""
    if len(part) >= 20:
        return True
    mixed = any(c.isupper() for c in part) and any(c.islower() for c in part)
    return len(part) >= 6 and (mixed or any(c.isdigit() for c in part))


def url_secrets(url: str, *, whole: bool = False) -> list[str]:
    """The secret-bearing parts of `url`, for masking: its userinfo (the password, a
    key-like user name, and the `Authorization: Basic` value an HTTP client builds from
    them) and, when the URL is itself a credential (`whole`, as a webhook's), the URL,
    every key-like path segment and query value and every value of a parameter named
    like a credential (`sig=`, `token=`); each as written and percent-decoded."""
    parts = urlsplit(url)
    found: list[str] = []
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        basic = base64.b64encode(f"{user}:{password}".encode("latin-1", "replace")).decode()
        found += [parts.netloc.rsplit("@", 1)[0], password, f"{user}:{password}"]
        found += [basic, f"Basic {basic}"]
        if not password or _key_like(user):  # a token sent as the user name
            found.append(user)
    if whole:
        found.append(url)
        segments = [s for s in parts.path.split("/") if _key_like(unquote(s))]
        found += segments + [unquote(s) for s in segments]
        for pair in parts.query.split("&"):
            name, _, raw = pair.partition("=")
            value = unquote(raw.replace("+", " "))
            if _key_like(value) or _SECRET_PARAM.search(unquote(name)):
                found += [raw, value]
    unique = dict.fromkeys(s for s in found if len(s) >= MIN_SECRET_PART)
    return list(unique)


def mask(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each (non-empty) secret replaced by `***`, and the
    start of one that a length limit cut off at the end of `text` too."""
    if not text:
        return text
    # Longest first, so a secret containing another is masked whole.
    ordered = sorted(filter(None, secrets), key=len, reverse=True)
    for secret in ordered:
        text = text.replace(secret, "***")
    return _mask_cut_end(text, ordered)


def _mask_cut_end(text: str, secrets: Sequence[str]) -> str:
    # Excerpts and reasons are cut to a length (an ellipsis may follow): a secret the
    # target echoed right at the cut would otherwise be kept up to its last characters.
    body, tail = (text[:-1], text[-1]) if text.endswith("…") else (text, "")
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(body)), MIN_SECRET_PART - 1, -1):
            if body.endswith(secret[:size]):
                return f"{body[:-size]}***{tail}"
    return text


def masked(outcome: Outcome | ForwarderError, secrets: Sequence[str]) -> Outcome | ForwarderError:
    """`outcome` with `secrets` masked in its reason and the target's answer (a target
    may echo a token; a transport error may quote a URL that carries a key); the same
    object when nothing needed masking, except an error, which is masked in place."""
    if isinstance(outcome, ForwarderError):
        outcome.reason = mask(outcome.reason, secrets)
        outcome.excerpt = mask(outcome.excerpt, secrets)
        outcome.args = (outcome.reason,)
        return outcome
    if isinstance(outcome, Delivered):
        excerpt = mask(outcome.excerpt, secrets)
        return outcome if excerpt == outcome.excerpt else replace(outcome, excerpt=excerpt)
    reason = mask(outcome.reason, secrets)
    return outcome if reason == outcome.reason else replace(outcome, reason=reason)


@contextmanager
def masking(secrets: Sequence[str]) -> Iterator[None]:
    """Mask `secrets` in a ForwarderError raised inside the block (see `masked`)."""
    try:
        yield
    except ForwarderError as exc:
        masked(exc, secrets)
        raise
