"""Request bodies: content codings and text repair (pure).

``inflate`` undoes a ``Content-Encoding``:

- ``gzip`` and its alias ``x-gzip`` (RFC 9110 §8.4.1.3): every member of a
  multi-member stream is inflated (RFC 1952 §2.2: a gzip file is a series of
  members, which is what streaming compressors write), and every member must
  end with its 8-byte CRC-32/ISIZE trailer: a stream cut short is an error,
  never a silently shortened body;
- ``deflate`` (RFC 9110 §8.4.1.2: a zlib stream, RFC 1950), which must be
  complete too;
- ``identity`` or no header: the bytes as they are.

The size limit applies to the inflated bytes (a small bomb must not expand
past it). Errors are ``BodyError(status, message)``: 400 for a body that is
not what its header says, 413 for one over the limit.

``repair_utf8`` is what Consentry does with text that is not UTF-8 (a
Latin-1 ``café`` from an old database, a JSON ``"\\ud83d"`` left by a
truncated emoji): each invalid byte sequence and each lone surrogate escape
becomes U+FFFD (Unicode §3.9, "U+FFFD substitution of maximal subparts"),
and the caller reports a warning naming the first byte offset. The event is
kept: only the broken characters are lost.
"""

from __future__ import annotations

import codecs
import re
import zlib
from dataclasses import dataclass

GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
_REPLACEMENT = "\ufffd".encode()
_ESCAPE = re.compile(rb"\\(?:u[0-9a-fA-F]{4}|.)", re.DOTALL)


class BodyError(Exception):
    """The body cannot be read: ``status`` is 400 (malformed) or 413 (too big)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def inflate(body: bytes, encoding: str, *, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` undone; at most ``limit`` bytes.

    ``encoding`` is the header's value (case-insensitive; empty when absent).
    Raises BodyError: 400 when the coding is unknown or the stream is corrupt
    or truncated, 413 when the inflated body is over ``limit`` bytes."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in GZIP_CODINGS:
        return _inflate_members(body, limit=limit)
    if coding == "deflate":
        out, rest = _inflate_one(body, zlib.MAX_WBITS, limit=limit, name="deflate")
        if rest:
            raise BodyError(400, "body is not valid deflate: data after the end of the stream")
        return out
    raise BodyError(400, f"unsupported Content-Encoding {coding!r}; use gzip, deflate or none")


def _inflate_members(body: bytes, *, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    rest = body
    while True:
        out, rest = _inflate_one(rest, 16 + zlib.MAX_WBITS, limit=limit - size, name="gzip")
        parts.append(out)
        size += len(out)
        # Some writers pad the end of a file with zero bytes (RFC 1952 allows
        # readers to ignore them); anything else must be another member.
        if not rest.strip(b"\x00"):
            return b"".join(parts)


def _inflate_one(data: bytes, wbits: int, *, limit: int, name: str) -> tuple[bytes, bytes]:
    """One stream (a gzip member or a zlib stream): its inflated bytes and
    the bytes after it."""
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise BodyError(400, f"body is not valid {name}: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyError(413, "decompressed body is over the size limit")
    if not inflater.eof:
        raise BodyError(
            400, f"body is not valid {name}: the stream is truncated (no end or trailer)"
        )
    return out, inflater.unused_data


@dataclass(frozen=True, slots=True)
class Repaired:
    """Text after ``repair_utf8``: ``offsets`` are the byte offsets, in
    ``data``, of each character that was replaced (empty: nothing was)."""

    data: bytes
    offsets: tuple[int, ...]


def repair_utf8(data: bytes) -> Repaired:
    """``data`` with each invalid UTF-8 sequence replaced by U+FFFD and each
    lone ``\\uD800``-``\\uDFFF`` JSON escape by ``\\ufffd`` (same length).
    Valid input is returned as the same object, checked at C speed."""
    offsets: list[int] = []
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        data = _replace_invalid(data, offsets)
    if b"\\u" in data and (b"\\ud" in data or b"\\uD" in data):
        data = _fix_surrogates(data, offsets)
    return Repaired(data, tuple(sorted(offsets)))


def _replace_invalid(data: bytes, offsets: list[int]) -> bytes:
    view = memoryview(data)
    out: list[bytes] = []
    size = pos = 0
    while pos < len(data):
        try:
            codecs.utf_8_decode(view[pos:], "strict", True)
        except UnicodeDecodeError as exc:
            out.append(data[pos : pos + exc.start])
            size += exc.start
            offsets.append(size)
            out.append(_REPLACEMENT)
            size += len(_REPLACEMENT)
            pos += exc.end
            continue
        out.append(data[pos:])
        break
    return b"".join(out)


def _fix_surrogates(data: bytes, offsets: list[int]) -> bytes:
    """Lone surrogate escapes replaced by ``\\ufffd``; their offsets appended."""
    found: list[tuple[int, int, int]] = []  # (start, end, code) of surrogate escapes
    for match in _ESCAPE.finditer(data):
        text = match.group(0)
        if len(text) == 6:
            code = int(text[2:], 16)
            if 0xD800 <= code <= 0xDFFF:
                found.append((match.start(), match.end(), code))
    lone: list[tuple[int, int]] = []
    i = 0
    while i < len(found):
        start, end, code = found[i]
        if code <= 0xDBFF and i + 1 < len(found):
            nxt_start, _, nxt_code = found[i + 1]
            if nxt_start == end and nxt_code >= 0xDC00:
                i += 2  # a high surrogate and its low half: one character
                continue
        lone.append((start, end))
        i += 1
    if not lone:
        return data
    pieces: list[bytes] = []
    done = 0
    for start, end in lone:
        pieces += [data[done:start], b"\\ufffd"]
        done = end
    pieces.append(data[done:])
    offsets.extend(start for start, _ in lone)
    return b"".join(pieces)
