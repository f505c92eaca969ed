"""Reading a request: its body (size limits, Content-Encoding) and its Basic
auth user name. Shared by the sources and the admin endpoints."""

from __future__ import annotations

import base64
import binascii
import functools

from starlette.requests import ClientDisconnect, Request

from collector.errors import BadRequest, PayloadTooLarge, RequestError
from collector.http.body import BodyError, inflate
from sdk_python.messages import MAX_REQUEST_BYTES


async def read_body(request: Request) -> bytes:
    """The body, decompressed (gzip, deflate), at most MAX_REQUEST_BYTES before
    and after decompression. Raises PayloadTooLarge (413) over the limit,
    BadRequest (400) for an unusable encoding or an empty body."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {MAX_REQUEST_BYTES}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                raise PayloadTooLarge(f"request body is over the {MAX_REQUEST_BYTES}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        # Gone before the body was complete (or cut by the body timeout): nothing
        # was stored, and nobody is left to answer; no traceback for it.
        raise BadRequest("the client disconnected before the body was complete") from None
    body = b"".join(chunks)
    try:
        body = inflate(body, request.headers.get("content-encoding", ""), limit=MAX_REQUEST_BYTES)
    except BodyError as exc:
        if exc.status == 413:
            raise PayloadTooLarge(
                f"decompressed body is over the {MAX_REQUEST_BYTES}-byte limit"
            ) from None
        raise RequestError(exc.status, exc.message) from None
    if not body:
        raise BadRequest("request body is empty; send a JSON object")
    return body


def basic_user(request: Request) -> str | None:
    """The user name of ``Authorization: Basic`` (Segment's write key), if any."""
    return _basic_user(request.headers.get("authorization", ""))


@functools.lru_cache(maxsize=64)
def _basic_user(header: str) -> str | None:
    """Clients send the same header on every request: decode it once."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0]
