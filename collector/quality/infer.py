"""Draft a tracking plan from observed events, for a human to edit.

`infer(messages)` looks at decoded messages (dicts, as in a JSONL sample) and
writes, per track event and for identify/group traits, a draft-07 schema:
each property's JSON type(s) (``integer`` widened to ``number`` when both are
seen), ``required`` for properties present in every occurrence, and ``enum``
for strings with a small set of values (at most `enum_max` distinct values,
each seen at least twice; never for keys that name identifiers, so a sample
cannot put a pseudonym or a personal value into a plan). Nested objects get
their own schema; arrays keep their item types.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_IDENTIFYING = ("id", "email", "phone", "name", "address", "ip", "token", "key", "url")


@dataclass
class _Field:
    seen: int = 0
    types: set[str] = field(default_factory=set)
    strings: Counter[str] = field(default_factory=Counter)
    children: dict[str, _Field] = field(default_factory=dict)
    objects: int = 0
    items: set[str] = field(default_factory=set)


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _observe(fields: dict[str, _Field], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        f = fields.setdefault(key, _Field())
        f.seen += 1
        kind = _type(value)
        f.types.add(kind)
        if kind == "string" and len(f.strings) <= 64:
            f.strings[value] += 1
        elif kind == "object":
            f.objects += 1
            _observe(f.children, value)
        elif kind == "array":
            f.items.update(_type(v) for v in value)


def _types(types: set[str]) -> str | list[str]:
    if {"integer", "number"} <= types:
        types = types - {"integer"}
    ordered = sorted(types)
    return ordered[0] if len(ordered) == 1 else ordered


def _schema(fields: Mapping[str, _Field], total: int, enum_max: int) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for key in sorted(fields):
        f = fields[key]
        entry: dict[str, Any] = {"type": _types(f.types)}
        identifying = any(word in key.lower() for word in _IDENTIFYING)
        if (
            f.types == {"string"}
            and not identifying
            and 0 < len(f.strings) <= enum_max
            and min(f.strings.values()) >= 2
        ):
            entry["enum"] = sorted(f.strings)
        if f.children and f.types == {"object"}:
            entry.update(_schema(f.children, f.objects, enum_max))
        if f.items:
            entry["items"] = {"type": _types(f.items)}
        props[key] = entry
    schema: dict[str, Any] = {"type": "object", "properties": props}
    required = sorted(k for k, f in fields.items() if f.seen == total)
    if required:
        schema["required"] = required
    return schema


def infer(messages: Iterable[Mapping[str, Any]], *, enum_max: int = 8) -> dict[str, Any]:
    """A draft plan (the `collector.quality.plan` file shape) from `messages`."""
    events: dict[str, dict[str, _Field]] = defaultdict(dict)
    counts: Counter[str] = Counter()
    traits: dict[str, dict[str, _Field]] = {"identify": {}, "group": {}}
    trait_counts: Counter[str] = Counter()
    for message in messages:
        kind = message.get("type")
        if kind == "track" and isinstance(message.get("event"), str):
            name = message["event"]
            counts[name] += 1
            props = message.get("properties")
            _observe(events[name], props if isinstance(props, dict) else {})
        elif kind in traits:
            trait_counts[kind] += 1
            values = message.get("traits")
            _observe(traits[kind], values if isinstance(values, dict) else {})
    plan: dict[str, Any] = {"version": 1, "action": "flag", "unplanned": "flag", "events": {}}
    for name in sorted(events):
        plan["events"][name] = {
            "description": f"seen {counts[name]} times in the sample",
            "properties": _schema(events[name], counts[name], enum_max),
        }
    for kind in ("identify", "group"):
        if trait_counts[kind]:
            plan[kind] = {"traits": _schema(traits[kind], trait_counts[kind], enum_max)}
    return plan
