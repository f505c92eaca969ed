"""Naming standards a tracking plan can switch on.

- ``object_action``: event names in Segment's "Object Action" form, each word
  capitalised ("Order Completed", "Product Added"; Segment's naming
  conventions guide recommends a noun then a past-tense verb, Title Case).
- ``snake_case`` / ``camelCase``: property and trait names.

Pure functions over names; they never see values.
"""

from __future__ import annotations

import re

_OBJECT_ACTION = re.compile(r"^[A-Z][A-Za-z0-9]*( [A-Z][A-Za-z0-9]*)+$")
_PROPERTY = {
    "snake_case": re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"),
    "camelCase": re.compile(r"^[a-z][a-z0-9]*([A-Z][a-z0-9]*)*$"),
}


def event_name_ok(name: str, rule: str) -> bool:
    """True when `name` follows `rule` (only ``object_action`` exists)."""
    return rule != "object_action" or bool(_OBJECT_ACTION.match(name))


def property_name_ok(name: str, rule: str) -> bool:
    """True when `name` follows ``snake_case`` or ``camelCase`` (`rule`)."""
    return bool(_PROPERTY[rule].match(name))
