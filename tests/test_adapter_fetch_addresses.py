"""Which addresses the safe fetcher may connect to (herald.adapters.fetch.refusal), and how
hosts resolve: every form of a loopback, private, link-local, metadata, multicast or reserved
address is refused, embedded IPv4 forms included; public ones pass; the allow list admits
its networks but never a non-host address."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from herald.adapters.fetch import refusal, resolve

REFUSED = {
    "loopback": "127.0.0.1",
    "loopback-other": "127.255.0.9",
    "rfc1918-10": "10.0.0.1",
    "rfc1918-172": "172.16.5.4",
    "rfc1918-192": "192.168.1.1",
    "shared-100.64": "100.64.0.1",
    "alibaba-metadata": "100.100.100.200",
    "link-local": "169.254.1.1",
    "metadata": "169.254.169.254",
    "azure-wireserver": "168.63.129.16",
    "this-network": "0.0.0.1",
    "unspecified": "0.0.0.0",
    "broadcast": "255.255.255.255",
    "reserved-240": "240.0.0.1",
    "multicast": "224.0.0.1",
    "multicast-ssdp": "239.255.255.250",
    "ietf-192.0.0": "192.0.0.192",
    "benchmark": "198.18.0.1",
    "documentation": "203.0.113.7",
    "v6-loopback": "::1",
    "v6-unspecified": "::",
    "ula": "fc00::1",
    "ula-aws-metadata": "fd00:ec2::254",
    "v6-link-local": "fe80::1",
    "v6-site-local": "fec0::1",
    "v6-multicast": "ff02::1",
    "v6-multicast-global": "ff0e::1",
    "v6-documentation": "2001:db8::1",
    "v6-discard": "100::1",
    "v6-reserved": "5f00::1",
    "mapped-loopback": "::ffff:127.0.0.1",
    "mapped-metadata": "::ffff:169.254.169.254",
    "mapped-private": "::ffff:10.0.0.1",
    "compatible-loopback": "::127.0.0.1",
    "compatible-public": "::8.8.8.8",
    "nat64-loopback": "64:ff9b::7f00:1",
    "nat64-metadata": "64:ff9b::a9fe:a9fe",
    "nat64-private": "64:ff9b::a00:1",
    "nat64-local-use": "64:ff9b:1::a00:1",
    "6to4-loopback": "2002:7f00:1::1",
    "6to4-metadata": "2002:a9fe:a9fe::1",
    "6to4-public": "2002:808:808::1",  # 6to4 is refused outright (RFC 7526 deprecated it)
    "v6-documentation-3fff": "3fff::1",
    "teredo": "2001:0:4136:e378:8000:63bf:3fff:fdd2",
}

ALLOWED = {
    "public-v4": "8.8.8.8",
    "public-v4-other": "93.184.216.34",
    "public-v6": "2606:4700::1111",
    "public-v6-google": "2001:4860:4860::8888",
    "mapped-public": "::ffff:8.8.8.8",
    "nat64-public": "64:ff9b::808:808",
}


@pytest.mark.parametrize("address", REFUSED.values(), ids=REFUSED.keys())
def test_non_public_addresses_are_refused(address: str) -> None:
    assert refusal(ip_address(address)) is not None


@pytest.mark.parametrize("address", ALLOWED.values(), ids=ALLOWED.keys())
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "allow", "passes"),
    [
        ("127.0.0.1", "127.0.0.1/32", True),
        ("::ffff:127.0.0.1", "127.0.0.1/32", True),  # the kernel connects to 127.0.0.1
        ("127.0.0.2", "127.0.0.1/32", False),
        ("::1", "127.0.0.1/32", False),
        ("10.1.2.3", "10.1.0.0/16", True),
        ("10.2.0.1", "10.1.0.0/16", False),
        ("fd12::5", "fd12::/16", True),
        # A NAT64 gateway reaches its own 127.0.0.1, not ours: the allow list does not apply.
        ("64:ff9b::7f00:1", "127.0.0.1/32", False),
        # Never a host, whatever the allow list says.
        ("0.0.0.0", "0.0.0.0/0", False),
        ("224.0.0.1", "0.0.0.0/0", False),
        ("255.255.255.255", "0.0.0.0/0", False),
        ("::", "::/0", False),
        ("ff02::1", "::/0", False),
        ("168.63.129.16", "0.0.0.0/0", False),
    ],
)
def test_the_allow_list_admits_its_networks_only(address: str, allow: str, passes: bool) -> None:
    assert (refusal(ip_address(address), [ip_network(allow)]) is None) is passes


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "0177.0.0.1", "localhost"])
def test_numeric_and_local_names_resolve_to_what_is_checked(host: str) -> None:
    # The check runs on what the name resolves to, so no spelling of 127.0.0.1 slips by.
    found = resolve(host, 80)
    assert ip_address("127.0.0.1") in found
    assert all(refusal(address) is not None for address in found)
