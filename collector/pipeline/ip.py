"""Client IP addresses as proxies and SDKs send them (pure).

``context.ip`` arrives in more forms than an address: ``203.0.113.77:51234``
(with a port), ``[2001:db8::1]:443`` (RFC 3986 §3.2.2 brackets and a port),
``203.0.113.77, 198.51.100.9`` (an ``X-Forwarded-For`` list: the first entry
is the client, RFC 7239 §5.2), and ``::ffff:203.0.113.77`` (an IPv4-mapped
IPv6 address, RFC 4291 §2.5.5.2, which is the IPv4 client). ``client_ip``
reads them all; ``truncate`` keeps the network part: /24 for IPv4 and /48
for IPv6, so a mapped address truncates as IPv4.
"""

from __future__ import annotations

import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_ip(value: str) -> Address | None:
    """The client's address in ``value`` (see the module docstring); None
    when there is none."""
    text = value.split(",", 1)[0].strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or (text[end + 1 :] and not _port(text[end + 1 :])):
            return None
        text = text[1:end]
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
        text = host
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _port(rest: str) -> bool:
    return rest.startswith(":") and rest[1:].isdigit()


def truncate(ip: Address) -> str:
    """The /24 (IPv4) or /48 (IPv6) network address, as text."""
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)
