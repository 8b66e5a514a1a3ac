"""Where webhooks may go: public addresses only, unless a network is explicitly allowed.

A URL is checked when an endpoint is saved and again at each delivery, on the addresses the
name resolves to then; the request is sent to the checked address (the name only travels in
Host and SNI), so a DNS answer that changes between check and connection cannot reach a
private address. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from partners.errors import UnsafeWebhookUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    raise UnsafeWebhookUrl(
        "The URL resolves to a private, loopback, link-local or reserved address; webhooks "
        "go to public addresses only."
    )


def parse_url(url: str) -> tuple[str, str, int, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeWebhookUrl("The URL cannot be parsed.") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeWebhookUrl("Webhook URLs use http or https.")
    if not parts.hostname:
        raise UnsafeWebhookUrl("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeWebhookUrl("The URL may not carry a user name or password.")
    if parts.fragment:
        raise UnsafeWebhookUrl("The URL may not carry a fragment.")
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
            raise UnsafeWebhookUrl(f"The host {host!r} does not resolve.") from None
        addresses = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise UnsafeWebhookUrl(f"The host {host!r} does not resolve.")
    for address in addresses:
        check_address(address, allowed)
    return Target(scheme, host, port, path, addresses[0])
