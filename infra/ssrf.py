"""Where the server may send a request on a user's behalf (partner webhooks, media downloads):
public addresses only, unless a network is explicitly allowed.

A URL is checked when it is saved and again before each request, on the addresses the name
resolves to then; the request is sent to the checked address (the name only travels in Host
and SNI), so a DNS answer that changes between check and connection cannot reach a private
address. A caller that follows a redirect resolves and checks its Location the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeUrl(Exception):
    """The URL may not be requested. `message` says why, in words a person can act on;
    `reason` is a short key (private, scheme, ...) for callers that word it their own way."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    address: IPAddress

    @property
    def pinned_url(self) -> str:
        """The URL with the checked address in place of the name."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def parse_networks(values: list[str]) -> list[Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def _forbidden(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        not address.is_global
        or address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    )


def check_address(address: IPAddress, allowed: list[Network]) -> None:
    if not _forbidden(address):
        return
    plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if any(address in n or (plain is not None and plain in n) for n in allowed):
        return
    raise UnsafeUrl(
        "The URL resolves to a private, loopback, link-local or reserved address; only "
        "public addresses are reached.",
        "private",
    )


def parse_url(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl("The URL cannot be parsed.", "unparsable") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl("URLs use http or https.", "scheme")
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host.", "no-host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The URL may not carry a user name or password.", "credentials")
    if parts.fragment:
        raise UnsafeUrl("The URL may not carry a fragment.", "fragment")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


async def resolve(url: str, allowed: list[Network]) -> Target:
    """The first acceptable address of the URL's host; refuses if any address is unsafe
    (a name that resolves to both a public and a private address is refused)."""
    scheme, host, port, path = parse_url(url)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError):
            raise UnsafeUrl(f"The host {host!r} does not resolve.", "unresolved") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnsafeUrl(f"The host {host!r} does not resolve.", "unresolved")
    for address in addresses:
        check_address(address, allowed)
    return Target(scheme, host, port, path, addresses[0])


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, without brackets) is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
