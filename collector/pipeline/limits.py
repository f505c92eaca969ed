"""Nesting depth of JSON text (pure).

A message nested about a thousand levels deep is small (well under the 32 KB
message limit) but exhausts Python's recursion limit in every step that walks
it. ``too_deep`` finds such text before anything decodes it, at C speed for
ordinary messages; ``deep_path`` names where the limit was passed, for the
rejection's JSON path.

Depth counts objects and arrays: ``{}`` is depth 1, ``{"a": [1]}`` depth 2.
The default limit (``DEFAULT_MAX_DEPTH``, configurable as
``[ingest] max_depth``) is 64, like Jackson's and Go's common defaults for
untrusted input.
"""

from __future__ import annotations

import re

DEFAULT_MAX_DEPTH = 64
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_LEAF_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")


def too_deep(raw: bytes, limit: int) -> bool:
    """True when the JSON text ``raw`` nests objects and arrays deeper than
    ``limit``. Malformed text is left to the JSON decoder (False unless its
    well-formed part is already too deep)."""
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return False
    brackets = _STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    # Each pass removes the innermost pairs (one level, as matches do not
    # overlap): a text still holding brackets after `limit` passes is deeper.
    for _ in range(limit):
        reduced = _LEAF_PAIR.sub(b"", brackets)
        if not reduced:
            return False
        if reduced == brackets:
            return _depth(brackets) > limit  # malformed: count what is there
        brackets = reduced
    return True


def _depth(brackets: bytes) -> int:
    depth = deepest = 0
    for c in brackets:
        depth += 1 if c in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def deep_path(raw: bytes, limit: int) -> str:
    """The JSON path (relative: ``.properties.a[0]``, ``""`` for the top) of
    the first object or array nested deeper than ``limit``; ``""`` when there
    is none or the text cannot be followed."""
    frames: list[_Frame] = []
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == 0x22:  # a string; in an object, a key when a colon follows
            match = _STRING.match(raw, i)
            if match is None:
                return ""
            i = match.end()
            if frames and frames[-1].is_object and raw[i : i + 64].lstrip().startswith(b":"):
                frames[-1].key = match.group(0)[1:-1].decode("utf-8", "replace")
            continue
        if c in b"[{":
            here = frames[-1].child() if frames else ""
            if len(frames) >= limit:
                return here
            frames.append(_Frame(c == 0x7B, here))
        elif c in b"]}":
            if not frames:
                return ""
            frames.pop()
        elif c == 0x2C and frames and not frames[-1].is_object:
            frames[-1].index += 1
        i += 1
    return ""


class _Frame:
    """An open object or array while following a JSON text."""

    __slots__ = ("index", "is_object", "key", "path")

    def __init__(self, is_object: bool, path: str) -> None:
        self.is_object = is_object
        self.path = path
        self.key = "?"
        self.index = 0

    def child(self) -> str:
        return f"{self.path}.{self.key}" if self.is_object else f"{self.path}[{self.index}]"


def member_span(raw: bytes, key: bytes) -> tuple[int, int] | None:
    """Where the value of ``key`` lies in the top-level JSON object ``raw``
    (start, end), found without recursion however deep the text nests; None
    when ``raw`` is not an object holding ``key``."""
    i = _skip_space(raw, 0)
    if raw[i : i + 1] != b"{":
        return None
    i += 1
    while True:
        i = _skip_space(raw, i)
        match = _STRING.match(raw, i)
        if match is None:
            return None
        i = _skip_space(raw, match.end())
        if raw[i : i + 1] != b":":
            return None
        start = _skip_space(raw, i + 1)
        end = _value_end(raw, start)
        if end is None:
            return None
        if match.group(0)[1:-1] == key:
            return start, end
        i = _skip_space(raw, end)
        if raw[i : i + 1] != b",":
            return None
        i += 1


def element_spans(raw: bytes, start: int, end: int) -> list[tuple[int, int]] | None:
    """The (start, end) of each element of the JSON array ``raw[start:end]``,
    found without recursion; None when it is not an array."""
    if raw[start : start + 1] != b"[":
        return None
    spans: list[tuple[int, int]] = []
    i = _skip_space(raw, start + 1)
    if raw[i : i + 1] == b"]":
        return spans
    while i < end:
        stop = _value_end(raw, i)
        if stop is None:
            return None
        spans.append((i, stop))
        i = _skip_space(raw, stop)
        if raw[i : i + 1] == b"]":
            return spans
        if raw[i : i + 1] != b",":
            return None
        i = _skip_space(raw, i + 1)
    return None


def _skip_space(raw: bytes, i: int) -> int:
    while i < len(raw) and raw[i] in b" \t\r\n":
        i += 1
    return i


def _value_end(raw: bytes, i: int) -> int | None:
    """The end of the JSON value starting at ``i`` (a string, a container
    matched by counting brackets outside strings, or a scalar)."""
    if i >= len(raw):
        return None
    c = raw[i]
    if c == 0x22:
        match = _STRING.match(raw, i)
        return None if match is None else match.end()
    if c not in b"[{":
        j = i
        while j < len(raw) and raw[j] not in b",]} \t\r\n":
            j += 1
        return j if j > i else None
    depth = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x22:
            match = _STRING.match(raw, i)
            if match is None:
                return None
            i = match.end()
            continue
        if c in b"[{":
            depth += 1
        elif c in b"]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None
