"""SSRF guard: which addresses relay may connect to when it delivers an event.

A forwarder URL that points (directly or through DNS) at loopback, a private
network, link-local or a cloud metadata service could let whoever edits the
configuration, or controls a target's DNS, read internal services. The check is
made on the *resolved* address at connect time, so DNS rebinding cannot get
around it; `security.allow_networks` lists the networks that are allowed anyway.

Hosts are read the way the C library reads them: `127.1`, `2130706433`, `0177.0.0.1`
and `0x7f.1` are all 127.0.0.1 to `inet_aton`, so relay judges them as that address
(and refuses such spellings outright) instead of taking them for names. An IPv4
address carried inside an IPv6 one (NAT64, 6to4, Teredo, IPv4-compatible and
-translated forms) is judged like the IPv4 address itself.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Instance metadata services (AWS, AWS IPv6, Alibaba, AWS ECS task, Azure wire server).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "fd00:ec2::254",
        "100.100.100.200",
        "169.254.170.2",
        "168.63.129.16",
    )
)


# IPv6 ranges that carry an IPv4 address in their low 32 bits: the well-known NAT64
# prefix (RFC 6052), IPv4-compatible (deprecated) and IPv4-translated (RFC 2765).
_LOW32_PREFIXES = tuple(
    ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96")
)
# Ranges that are nothing but a way to reach the IPv4 address inside: mapped, the above,
# and 6to4 (RFC 3056).
_CARRIERS = (
    *_LOW32_PREFIXES,
    ipaddress.IPv6Network("::ffff:0:0/96"),
    ipaddress.IPv6Network("2002::/16"),
)
# Not reachable from the Internet, although Python 3.11 calls it global (RFC 8215).
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")
# One inet_aton part: hexadecimal, octal (leading 0) or decimal.
_PART = re.compile(r"^(?:0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")
# A host whose last label is a number is an IPv4 address to URL parsers and to
# getaddrinfo, never a name (no top-level domain is numeric).
_NUMERIC_LABEL = re.compile(r"^(?:[0-9]+|0[xX][0-9a-fA-F]*)$")


class AddressRefused(OSError):
    """A target's address is not allowed by the SSRF guard (a permanent failure)."""


def parse_networks(values: Iterable[str]) -> list[Network]:
    """CIDRs (or single addresses) as networks; ValueError names a bad one."""
    return [ipaddress.ip_network(v.strip(), strict=False) for v in values]


def inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """`text` read as the C library's inet_aton reads it (1 to 4 dot-separated parts,
    each decimal, 0-led octal or 0x hexadecimal, the last one filling the remaining
    bytes; one trailing dot allowed), or None when it is not such an address."""
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # `127.0.0.1.` is a fully qualified spelling of the same address
    if not 1 <= len(parts) <= 4 or not all(_PART.match(p) for p in parts):
        return None
    numbers = [_part_value(p) for p in parts]
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(leading):
        value |= n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _part_value(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)  # a bare `0x` is 0, as strtoul reads it
    return int(part, 8) if part.startswith("0") else int(part)


def is_numeric_host(host: str) -> bool:
    """True when `host` is meant as an IPv4 address (its last label is a number), which
    `inet_aton` reads even in forms `ipaddress` does not know."""
    labels = host.rstrip(".").split(".")
    return bool(labels[-1]) and _NUMERIC_LABEL.match(labels[-1]) is not None


def host_address(host: str) -> Address | None:
    """The address a URL host stands for: an IPv6 literal (brackets optional), an IPv4
    address in any form inet_aton reads, or None for a name.

    ValueError when the host looks numeric but is no valid address (`1.2.3.256`,
    `08.1`): a resolver would not read it as a name either."""
    text = host.strip("[]")
    if ":" in text:
        return ipaddress.IPv6Address(text)  # ValueError when malformed
    if not is_numeric_host(text):
        return None
    address = inet_aton(text)
    if address is None:
        raise ValueError(f"{host} is not a valid IPv4 address")
    return address


def noncanonical(host: str) -> str | None:
    """The dotted-quad spelling of a numeric host written some other way (`127.1`,
    `2130706433`, `0x7f.0.0.1`), else None; ValueError for a numeric host that is no
    address at all. Such spellings are refused outright: they exist to get past filters."""
    text = host.strip("[]")
    if ":" in text:
        return None
    address = host_address(text)
    if address is None or str(address) == text:
        return None
    return str(address)


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries and would deliver to: mapped
    (::ffff:a.b.c.d), translated, compatible, NAT64, 6to4 and both ends of Teredo."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    elif any(address in net for net in _LOW32_PREFIXES) and int(address) > 1:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


def forbidden_kind(address: Address) -> str | None:
    """Why `address` must not be contacted ("a private address"), None when it is public.
    An IPv6 address carrying an IPv4 one is judged by the IPv4 address too."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _plain_kind(address.ipv4_mapped)  # ::ffff:10.0.0.1 is 10.0.0.1 itself
        for inner in embedded_ipv4(address):
            if (kind := _plain_kind(inner)) is not None:
                return f"{kind} ({inner} inside an IPv6 address)"
        if address in _LOCAL_NAT64:
            return "a non-public address"
    return _plain_kind(address)


def _plain_kind(address: Address) -> str | None:
    checks = (
        (address in METADATA_ADDRESSES, "a cloud metadata address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        # fec0::/10: deprecated site-local, still routed where a network kept it; Python
        # 3.11 calls it global.
        (
            isinstance(address, ipaddress.IPv6Address) and address.is_site_local,
            "a site-local address",
        ),
        # Shared (100.64.0.0/10), reserved and documentation ranges.
        (not address.is_global, "a non-public address"),
    )
    return next((kind for hit, kind in checks if hit), None)


def refusal(address: Address, allow: Sequence[Network]) -> str | None:
    """What kind of forbidden address `address` is ("a private address"), or None when
    it may be used: public, or inside a network of the allow-list."""
    kind = forbidden_kind(address)
    if kind is None or _allowed(address, allow):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 with 127.0.0.0/8 allowed: an address that only carries IPv4
        # ones (not Teredo, nor local NAT64: forbidden on their own) is allowed when every
        # forbidden IPv4 address inside is.
        inner = [a for a in embedded_ipv4(address) if _plain_kind(a) is not None]
        carrier = any(address in net for net in _CARRIERS)
        if carrier and inner and all(_allowed(a, allow) for a in inner):
            return None
    return kind


def _allowed(address: Address, allow: Sequence[Network]) -> bool:
    return any(address in net for net in allow if address.version == net.version)


def _refused(what: str) -> AddressRefused:
    return AddressRefused(f"refused: {what}; allow it with security.allow_networks")


def check_literal(host: str, allow: Sequence[Network]) -> None:
    """Raise AddressRefused when `host` is an address (in any spelling inet_aton reads)
    that is refused, is a numeric host that is no valid address, or spells an IPv4
    address in any form but the dotted quad."""
    try:
        address = host_address(host)
        canonical = noncanonical(host)
    except ValueError:
        raise AddressRefused(f"refused: {host} is not a valid address") from None
    if address is None:
        return  # a name: the resolver checks what it resolves to
    if canonical is not None:
        raise AddressRefused(f"refused: {host} is {canonical} spelled in a disguised form")
    kind = refusal(address, allow)
    if kind is not None:
        raise _refused(f"{address} is {kind}")


class GuardedResolver(AbstractResolver):
    """Wraps a resolver and keeps only the addresses the guard allows."""

    def __init__(self, allow: Sequence[Network], inner: AbstractResolver | None = None) -> None:
        self._allow = list(allow)
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve `host`; raise AddressRefused when every address it has is refused."""
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for result in results:
            kind = refusal(ipaddress.ip_address(result["host"]), self._allow)
            if kind is None:
                allowed.append(result)
            else:
                refused.append(f"{result['host']}, {kind}")
        if not allowed and refused:
            raise _refused(f"{host.rstrip('.')} resolves to {refused[0]}")
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def url_host_problem(url: str) -> str | None:
    """Why the host of `url` may not be configured (a disguised or invalid numeric
    host), or None. Checked at config load, where a forwarder's URL is static."""
    host = urlsplit(url).hostname or ""
    try:
        canonical = noncanonical(host)
    except ValueError:
        return f"the host {host} is not a valid address"
    if canonical is not None:
        return f"the host {host} is {canonical} in a disguised spelling; write {canonical}"
    return None
