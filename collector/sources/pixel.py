"""GET pixels: query-string parameters to a Segment message (pure).

For pages without JavaScript and email opens:
``/v1/pixel/track?writeKey=K&anonymousId=A&event=Email%20Opened&properties.campaign=c``.
The same names as RudderStack's ``/pixel/v1/track`` and ``/pixel/v1/page``:
top-level fields by name (``userId``, ``anonymousId``, ``event``, ``name``,
``category``, ``messageId``, ``timestamp``), nested fields with dotted names
(``properties.plan``, ``context.page.url``, ``traits.email``), and any other
parameter as a property (``utm_source`` becomes ``properties.utm_source``).
``writeKey`` authenticates and is never part of the message. Under
``context.consent.`` the strings ``true`` and ``false`` are booleans (a query
string has no types; consent categories and ``gpc`` must be booleans).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00"
    b"\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
TOP_LEVEL = frozenset(
    {"userId", "anonymousId", "event", "name", "category", "messageId", "timestamp"}
)
NESTED = frozenset({"properties", "context", "traits", "integrations"})
MAX_DEPTH = 4


def pixel_message(kind: str, params: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``kind`` is ``track`` or ``page``; a repeated parameter keeps its last
    value; a dotted name deeper than four levels, or one that would overwrite a
    value with an object, is kept as a flat property instead."""
    message: dict[str, Any] = {"type": kind}
    for key, text in params:
        if key == "writeKey":
            continue
        value: str | bool = text
        if key.startswith("context.consent.") and text in ("true", "false"):
            value = text == "true"
        if key in TOP_LEVEL:
            message[key] = value
            continue
        head, dot, rest = key.partition(".")
        path = rest.split(".")
        if (
            dot
            and head in NESTED
            and len(path) <= MAX_DEPTH
            and _put(message, [head, *path], value)
        ):
            continue
        message.setdefault("properties", {})[key] = value
    return message


def _put(into: dict[str, Any], path: list[str], value: str | bool) -> bool:
    cur = into
    if any(not part for part in path):
        return False
    for part in path[:-1]:
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            return False
        cur = nxt
    if isinstance(cur.get(path[-1]), dict):
        return False
    cur[path[-1]] = value
    return True
