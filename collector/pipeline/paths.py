"""Reading and writing a decoded message at a path of keys (``("context", "ip")``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def get_path(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    # Decoded JSON objects are plain dicts: isinstance(x, dict) skips the ABC
    # machinery that a Mapping check costs on every event.
    cur: Any = data
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def set_path(
    data: dict[str, Any], path: Sequence[str], value: Any, *, delete: bool = False
) -> None:
    """Set or delete at a path, copying each dict on the way: destinations share
    the nested dicts of the decoded message, and one must not see another's edit."""
    cur = data
    for key in path[:-1]:
        nxt = cur.get(key)
        if not isinstance(nxt, dict):
            return
        nxt = dict(nxt)
        cur[key] = nxt
        cur = nxt
    if delete:
        cur.pop(path[-1], None)
    else:
        cur[path[-1]] = value
