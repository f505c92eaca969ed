"""What every source needs from a request: its raw body, the client's address,
and a JSON answer."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from collector.config import Config
from collector.errors import RequestError
from sdk_python.messages import MAX_REQUEST_BYTES

_encoder = msgspec.json.Encoder()
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def json_response(
    data: Any, status: int = 200, *, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        _encoder.encode(data), status_code=status, media_type="application/json", headers=headers
    )


async def read_raw(request: Request, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """The body as sent (no decoding), at most ``limit`` bytes (413 otherwise)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"request body is {declared} bytes; the limit is {limit}", "$")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"request body is over the {limit}-byte limit", "$")
        chunks.append(chunk)
    return b"".join(chunks)


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def forwarded_client(
    peer: str | None, forwarded_for: str | None, proxies: Sequence[str]
) -> str | None:
    """The client's address: the connection's peer, unless the peer is a trusted
    proxy; then ``X-Forwarded-For`` is read from the right, skipping trusted
    proxies, and the first untrusted hop is the client. An address a client
    wrote into the header itself is never believed: only hops appended by
    trusted proxies are. Pure."""
    networks = _networks(tuple(proxies))
    if peer is None or not networks or not _trusted(peer, networks) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # junk where an address should be: trust nothing in it
    return hops[0] if hops else peer


def client_address(request: Request, config: Config) -> str | None:
    peer = request.client.host if request.client else None
    return forwarded_client(
        peer, request.headers.get("x-forwarded-for"), config.server.trusted_proxies
    )
