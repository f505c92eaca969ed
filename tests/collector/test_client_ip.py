"""collector.pipeline.ip: the forms of context.ip (RFC 4291, RFC 3986, RFC 7239)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from collector.pipeline.egress import truncate_ip
from collector.pipeline.ip import client_ip, truncate

v4 = st.ip_addresses(v=4)
v6 = st.ip_addresses(v=6)


@given(v4, st.integers(min_value=0, max_value=65535), v4)
def test_ipv4_forms_truncate_like_the_plain_address(
    ip: ipaddress.IPv4Address, port: int, other: ipaddress.IPv4Address
) -> None:
    plain = truncate_ip(str(ip))
    assert plain is not None and plain.endswith(".0")
    for form in (
        f"::ffff:{ip}",
        f"{ip}:{port}",
        f"{ip}, {other}",
        f" {ip} ",
        f"[::ffff:{ip}]:{port}",
    ):
        assert truncate_ip(form) == plain, form


@given(v6, st.integers(min_value=0, max_value=65535))
def test_ipv6_forms_truncate_to_48(ip: ipaddress.IPv6Address, port: int) -> None:
    if ip.ipv4_mapped is not None:
        return
    expected = truncate(ip)
    assert truncate_ip(f"[{ip}]:{port}") == expected
    assert truncate_ip(f"{ip}, 198.51.100.9") == expected
    assert ipaddress.ip_network(f"{expected}/48").prefixlen == 48


@given(st.text(max_size=40))
def test_anything_else_is_none_or_an_address(text: str) -> None:
    ip = client_ip(text)
    assert ip is None or isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)


def test_not_addresses() -> None:
    for text in ("unknown", "", "1.2.3", "[::1", "1.2.3.4:port", "256.1.1.1"):
        assert client_ip(text) is None, text
