"""What a request field allows, for error messages that name it (pure).

msgspec reports a value outside a ``Literal`` as "Invalid enum value" (and
Consentry cuts the quoted value out of every reason); this adds the allowed
values, read from the same Struct that validated the request, so the message
says how to fix it: ``method: use one of banner_accept, banner_reject, ...``.
"""

from __future__ import annotations

import functools
import typing
from typing import Any, Literal, get_args, get_origin

import msgspec


@functools.cache
def _literals(struct: type[msgspec.Struct]) -> dict[str, tuple[str, ...]]:
    """Field name -> allowed values, for the fields typed by a Literal (also
    inside Optional, Annotated, or as a dict's value type: ``name.*``)."""
    hints = typing.get_type_hints(struct, include_extras=True)
    out: dict[str, tuple[str, ...]] = {}
    for name, hint in hints.items():
        values = _values(hint)
        if values:
            out[name] = values
        elif get_origin(hint) is dict:
            inner = _values(get_args(hint)[1])
            if inner:
                out[f"{name}.*"] = inner
    return out


def _values(hint: Any) -> tuple[str, ...]:
    if get_origin(hint) is Literal:
        return tuple(str(v) for v in get_args(hint))
    if get_origin(hint) is typing.Annotated:
        return _values(get_args(hint)[0])
    for arg in get_args(hint) if get_origin(hint) in (typing.Union, type(int | None)) else ():
        found = _values(arg)
        if found:
            return found
    return ()


def explain(struct: type[msgspec.Struct], reason: str, path: str) -> str:
    """``reason`` with the allowed values added when ``path`` (``$.field``, or
    ``$.field[...]`` for a dict's values) is a Literal field of ``struct``."""
    parts = path.removeprefix("$.").replace("[...]", ".*").split(".")
    literals = _literals(struct)
    values = literals.get(parts[0]) if len(parts) == 1 else literals.get(f"{parts[0]}.*")
    if not values:
        return reason
    return f"{reason}; {parts[0]} must be one of {', '.join(values)}"
