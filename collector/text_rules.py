"""Text every built-in destination can store (issue 19 item 3), applied at ingest.

Rule: the character U+0000 (NUL) in any string of a message, keys included, is
replaced by U+FFFD (the replacement character), and the response lists a
warning with its JSON path. PostgreSQL cannot store NUL in ``text`` or
``jsonb`` and refuses the whole batch that carries one; other destinations
would pass it on to systems that truncate at it. Replacing (not rejecting)
keeps the event, as for other malformed text.

JSON can only carry NUL escaped (``\\u0000``), so messages without that byte
sequence are not decoded again: the check costs one substring search per message.
"""

from __future__ import annotations

from typing import Any

import msgspec

NUL = "\x00"
REPLACEMENT = "\ufffd"
MAX_WARNINGS = 10  # per message: the response stays bounded
REASON = "text contained U+0000 (NUL), which destinations cannot store; replaced by U+FFFD"
_ESCAPED_NUL = b"\\u0000"
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def replace_nul(raw: bytes, prefix: str) -> tuple[bytes, list[tuple[str, str]]]:
    """``raw`` (one JSON message) with every NUL replaced, and (reason, JSON path)
    warnings for the first ``MAX_WARNINGS`` places. Input that is not valid JSON
    is returned unchanged, for the decoder to reject with its own reason."""
    if _ESCAPED_NUL not in raw:
        return raw, []
    try:
        data = _decoder.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # the message decoder rejects it too
        return raw, []
    paths: list[str] = []
    cleaned = _clean(data, prefix, paths)
    if not paths:  # only an escaped backslash followed by "u0000"
        return raw, []
    return _encoder.encode(cleaned), [(REASON, p) for p in paths[:MAX_WARNINGS]]


def _clean(root: Any, prefix: str, paths: list[str]) -> Any:
    """Iterative (deeply nested input must not exhaust the stack)."""
    out: list[Any] = [None]
    stack: list[tuple[Any, str, list[Any] | dict[str, Any], int | str]] = [(root, prefix, out, 0)]
    while stack:
        value, path, parent, slot = stack.pop()
        if isinstance(value, str):
            if NUL in value:
                paths.append(path)
                value = value.replace(NUL, REPLACEMENT)
            parent[slot] = value  # type: ignore[index]
        elif isinstance(value, dict):
            new: dict[str, Any] = {}
            parent[slot] = new  # type: ignore[index]
            for key, item in value.items():
                if NUL in key:
                    paths.append(f"{path}.{key.replace(NUL, REPLACEMENT)}")
                    key = key.replace(NUL, REPLACEMENT)
                new[key] = None
                stack.append((item, f"{path}.{key}", new, key))
        elif isinstance(value, list):
            items: list[Any] = [None] * len(value)
            parent[slot] = items  # type: ignore[index]
            for i, item in enumerate(value):
                stack.append((item, f"{path}[{i}]", items, i))
        else:
            parent[slot] = value  # type: ignore[index]
    return out[0]
