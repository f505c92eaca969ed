"""A tracking plan: the per-source standard for event names, properties and traits.

File shape (YAML or JSON; the keys below are a contract shared with other
deployments, so plans are portable)::

    version: 1
    action: flag              # flag | omit | quarantine   (default for every event)
    unplanned: block          # flag | block               (events the plan does not name)
    naming: {events: object_action, properties: snake_case}   # optional lint rules
    common: {...}             # JSON Schema (draft-07) for the whole message
    events:
      Order Completed:
        description: "..."
        version: 3
        action: quarantine    # overrides the plan's action for this event
        properties: {...}     # JSON Schema for `properties`
    identify: {traits: {...}} # JSON Schema for identify traits
    group: {traits: {...}}    # JSON Schema for group traits

Schemas are JSON Schema draft-07, the dialect Segment Protocols and RudderStack
tracking plans use. Each is compiled once, when the plan is loaded: with
`fastjsonschema` for the fast yes/no that almost every event takes, and with
`jsonschema` (`Draft7Validator.iter_errors`) only for a message that failed, to
list every violation with its path (fastjsonschema stops at the first one).
``benchmarks/tracking_plan.py`` measures both on our events.

Errors: `PlanError` (a `ConfigError`) names the file and the key that is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import fastjsonschema
import jsonschema
import yaml

from collector.errors import ConfigError

Action = Literal["flag", "omit", "quarantine"]
UnplannedAction = Literal["flag", "block"]
ACTIONS: tuple[str, ...] = ("flag", "omit", "quarantine")
UNPLANNED_ACTIONS: tuple[str, ...] = ("flag", "block")
NAMING_EVENTS: tuple[str, ...] = ("object_action",)
NAMING_PROPERTIES: tuple[str, ...] = ("snake_case", "camelCase")
_PLAN_KEYS = {"version", "action", "unplanned", "naming", "common", "events", "identify", "group"}
_EVENT_KEYS = {"description", "version", "action", "properties"}


class PlanError(ConfigError):
    """A tracking plan file that cannot be used; the message names file and key."""


@dataclass(frozen=True)
class Schema:
    """One compiled JSON Schema: a fast check and a complete error lister."""

    source: Mapping[str, Any]
    is_valid: Callable[[Any], bool]
    validator: jsonschema.Draft7Validator


@dataclass(frozen=True)
class EventRule:
    name: str
    properties: Schema | None
    action: Action
    version: int | str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Naming:
    events: str | None = None  # "object_action"
    properties: str | None = None  # "snake_case" | "camelCase"


@dataclass(frozen=True)
class TrackingPlan:
    """A loaded plan. `events` maps an event name to its rule."""

    name: str
    version: int | str | None
    action: Action
    unplanned: UnplannedAction
    common: Schema | None
    events: Mapping[str, EventRule]
    identify_traits: Schema | None
    group_traits: Schema | None
    naming: Naming = field(default_factory=Naming)


def compile_schema(schema: Any, *, where: str) -> Schema:
    """Compile a draft-07 schema once; `where` names it in errors."""
    if not isinstance(schema, dict):
        raise PlanError(f"{where}: a JSON Schema must be an object")
    try:
        jsonschema.Draft7Validator.check_schema(schema)
        fast = fastjsonschema.compile(schema)
    except (jsonschema.SchemaError, fastjsonschema.JsonSchemaDefinitionException) as exc:
        reason = getattr(exc, "message", None) or str(exc)
        raise PlanError(f"{where}: not a valid draft-07 JSON Schema ({reason})") from None

    def is_valid(instance: Any) -> bool:
        try:
            fast(instance)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    return Schema(schema, is_valid, jsonschema.Draft7Validator(schema, format_checker=checker))


def _choice(value: Any, allowed: tuple[str, ...], *, where: str) -> str:
    if value not in allowed:
        raise PlanError(f"{where} must be one of {', '.join(allowed)}")
    return str(value)


def parse_plan(data: Any, *, name: str) -> TrackingPlan:
    """Build a `TrackingPlan` from decoded YAML/JSON; `name` is used in errors.

    Raises `PlanError` naming the key for unknown keys, bad actions and
    invalid schemas.
    """
    if not isinstance(data, dict):
        raise PlanError(f"{name}: a tracking plan is a mapping with an `events` key")
    unknown = sorted(set(data) - _PLAN_KEYS)
    if unknown:
        raise PlanError(
            f"{name}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_PLAN_KEYS))})"
        )
    action = _choice(data.get("action", "flag"), ACTIONS, where=f"{name}: action")
    unplanned = _choice(
        data.get("unplanned", "flag"), UNPLANNED_ACTIONS, where=f"{name}: unplanned"
    )
    events_raw = data.get("events") or {}
    if not isinstance(events_raw, dict):
        raise PlanError(f"{name}: events must map event names to rules")
    events: dict[str, EventRule] = {}
    for event, rule in events_raw.items():
        where = f"{name}: events.{event}"
        rule = rule or {}
        if not isinstance(rule, dict):
            raise PlanError(f"{where} must be a mapping")
        bad = sorted(set(rule) - _EVENT_KEYS)
        if bad:
            raise PlanError(
                f"{where}: unknown key {bad[0]!r} (known: {', '.join(sorted(_EVENT_KEYS))})"
            )
        props = rule.get("properties")
        events[str(event)] = EventRule(
            name=str(event),
            properties=None
            if props is None
            else compile_schema(props, where=f"{where}.properties"),
            action=_choice(rule.get("action", action), ACTIONS, where=f"{where}.action"),  # type: ignore[arg-type]
            version=rule.get("version"),
            description=rule.get("description"),
        )
    naming_raw = data.get("naming") or {}
    if not isinstance(naming_raw, dict) or set(naming_raw) - {"events", "properties"}:
        raise PlanError(f"{name}: naming takes `events` and `properties`")
    naming = Naming(
        events=None
        if naming_raw.get("events") is None
        else _choice(naming_raw["events"], NAMING_EVENTS, where=f"{name}: naming.events"),
        properties=None
        if naming_raw.get("properties") is None
        else _choice(
            naming_raw["properties"], NAMING_PROPERTIES, where=f"{name}: naming.properties"
        ),
    )
    return TrackingPlan(
        name=name,
        version=data.get("version"),
        action=action,  # type: ignore[arg-type]
        unplanned=unplanned,  # type: ignore[arg-type]
        common=_optional(data.get("common"), where=f"{name}: common"),
        events=events,
        identify_traits=_traits(data.get("identify"), where=f"{name}: identify"),
        group_traits=_traits(data.get("group"), where=f"{name}: group"),
        naming=naming,
    )


def _optional(schema: Any, *, where: str) -> Schema | None:
    return None if schema is None else compile_schema(schema, where=where)


def _traits(section: Any, *, where: str) -> Schema | None:
    if section is None:
        return None
    if not isinstance(section, dict) or set(section) - {"traits"}:
        raise PlanError(f"{where} takes one key, `traits` (a JSON Schema)")
    return _optional(section.get("traits"), where=f"{where}.traits")


def load_plan(path: str | Path) -> TrackingPlan:
    """Read and compile a plan file (``.yaml``/``.yml`` or ``.json``).

    Raises `PlanError` when the file is missing or unreadable, naming it.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"tracking plan {p}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise PlanError(
            f"tracking plan {p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}{at}"
        ) from None
    return parse_plan(data, name=str(p))
