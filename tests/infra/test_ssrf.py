"""The guard on addresses the server requests on a user's behalf (webhooks, media): public
addresses only, unless a network is allowed; the request goes to the address that was checked."""

from __future__ import annotations

import ipaddress

import pytest

from infra import ssrf
from infra.ssrf import UnsafeUrl

LOOPBACK = [ssrf.parse_networks(["127.0.0.0/8"])[0]]


@pytest.mark.parametrize(
    ("url", "allowed", "address"),
    [
        ("http://127.0.0.1/", LOOPBACK, "127.0.0.1"),
        ("http://localhost:8080/hook?x=1", LOOPBACK, "127.0.0.1"),
        ("http://93.184.215.14/hook", [], "93.184.215.14"),
        ("https://[2606:4700:4700::1111]/", [], "2606:4700:4700::1111"),
    ],
)
async def test_resolve_accepts_public_and_allowed_addresses(url, allowed, address):
    target = await ssrf.resolve(url, allowed)
    assert target.address == ipaddress.ip_address(address)
    # The request goes to the checked address; the name only travels in Host.
    assert str(target.address) in target.pinned_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.1.2.3/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data",
        # Other spellings of loopback that the resolver turns into 127.0.0.1.
        "http://2130706433/",
        "http://0x7f.1/",
        "http://017700000001/",
        "http://localhost./",
    ],
)
async def test_resolve_refuses_loopback_and_private_without_an_allow_list(url):
    with pytest.raises(UnsafeUrl):
        await ssrf.resolve(url, [])


async def test_resolve_keeps_the_path_and_host_of_the_url():
    target = await ssrf.resolve("http://localhost:8080/hook?x=1", LOOPBACK)
    assert target.pinned_url == "http://127.0.0.1:8080/hook?x=1"
    assert target.host_header == "localhost:8080"
    public = await ssrf.resolve("https://93.184.215.14/", [])
    assert public.pinned_url == "https://93.184.215.14:443/"
    assert public.host_header == "93.184.215.14"
