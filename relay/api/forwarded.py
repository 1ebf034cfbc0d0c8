"""Who a request really comes from, believing forwarded headers only from trusted proxies.

Behind a reverse proxy every client arrives from the proxy's address; the proxy says who
the client is in `Forwarded` (RFC 7239) or `X-Forwarded-For` / `-Proto` / `-Host`. Anyone
can send those headers, so they are read only when the peer is in
`server.trusted_proxies` (loopback by default, as gunicorn's `forwarded_allow_ips`).
The client is the nearest address in the chain that is not a trusted proxy: the entries
further left were written by the client itself and prove nothing.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from relay.delivery.netguard import Network, parse_networks
from relay.settings import ServerSettings

# A Host header value: a name or IPv4 address, or a bracketed IPv6 one, and a port.
_HOST = re.compile(r"^(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?\Z")


@dataclass(frozen=True)
class Origin:
    """The effective client address, scheme and host of a request."""

    client: str
    scheme: str
    host: str
    via_proxy: bool = False


def valid_host(value: str) -> bool:
    """True for a host, perhaps with a port (at most 65535): links may name it."""
    match = _HOST.match(value)
    return match is not None and int(match.group(1) or 0) <= 65535


def _local(request: web.BaseRequest) -> str:
    # The address the client reached, for a Host header that names no host.
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return "localhost"
    address, port = str(sockname[0]), int(sockname[1])
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@functools.lru_cache(maxsize=16)
def _networks(values: tuple[str, ...]) -> list[Network]:
    return parse_networks(values)


def trusted(address: str | None, proxies: Sequence[Network]) -> bool:
    """True when `address` (an IP, perhaps with an IPv6 zone) is inside a trusted network."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in proxies if ip.version == net.version)


def origin(request: web.BaseRequest, server: ServerSettings) -> Origin:
    """The client, scheme and host of `request`: forwarded values when the peer is a
    trusted proxy, the connection's own otherwise."""
    peer = request.remote or "unknown"
    host = request.host
    own = Origin(peer, request.scheme, host if valid_host(host) else _local(request))
    proxies = _networks(tuple(server.trusted_proxies))
    if not trusted(peer, proxies):
        return own
    hops = _hops(request)
    if not hops:
        return own
    # Walk from the proxy nearest to relay outwards, past every trusted proxy.
    index = len(hops) - 1
    while index > 0 and trusted(hops[index].client, proxies):
        index -= 1
    hop = hops[index]
    # Scheme and host describe what the client used: the client's hop says so, else
    # the outermost proxy (a proxy that overwrites X-Forwarded-Proto sends one value).
    scheme = (hop.scheme or hops[0].scheme).lower()
    host = hop.host or hops[0].host
    return Origin(
        client=hop.client or peer,
        scheme=scheme if scheme in ("http", "https") else own.scheme,
        host=host if valid_host(host) else own.host,
        via_proxy=True,
    )


@dataclass(frozen=True)
class _Hop:
    client: str
    scheme: str = ""
    host: str = ""


def _hops(request: web.BaseRequest) -> list[_Hop]:
    """The forwarding chain, client first: `Forwarded` when present, else X-Forwarded-*."""
    if "Forwarded" in request.headers:
        return [
            _Hop(_strip_port(e.get("for", "")), e.get("proto", ""), e.get("host", ""))
            for e in request.forwarded
        ]
    clients = _values(request, "X-Forwarded-For") or [""]
    schemes = _values(request, "X-Forwarded-Proto")
    hosts = _values(request, "X-Forwarded-Host")
    if clients == [""] and not schemes and not hosts:
        return []
    # Proto and host, when given, describe the hop the client talked to (the first).
    first = _Hop(_strip_port(clients[0]), schemes[0] if schemes else "", hosts[0] if hosts else "")
    return [first, *(_Hop(_strip_port(c)) for c in clients[1:])]


def _values(request: web.BaseRequest, name: str) -> list[str]:
    return [v.strip() for header in request.headers.getall(name, []) for v in header.split(",")]


def _strip_port(value: str) -> str:
    """`[2001:db8::1]:4711` -> `2001:db8::1`, `192.0.2.1:80` -> `192.0.2.1`."""
    value = value.strip().strip('"')
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def base_url(request: web.BaseRequest, server: ServerSettings) -> str:
    """relay's own URL as the client reaches it: `server.public_url`, else the scheme and
    host the client used (forwarded ones believed only from trusted proxies)."""
    if server.public_url:
        return server.public_url.rstrip("/")
    seen = origin(request, server)
    return f"{seen.scheme}://{seen.host}"
