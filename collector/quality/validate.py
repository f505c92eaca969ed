"""Check one message against a tracking plan (pure).

`check(plan, message, prefix=…, opaque=…)` returns an `Outcome`: the
violations, each with its kind and JSON path, and the action to take:

==========  ==============================================================
forward     no violation
flag        forward, with the violations recorded on the decision
omit        forward without the unplanned or invalid properties/traits
            (top-level keys of ``properties``/``traits``); violations that
            cannot be omitted (a required property missing) are flagged
quarantine  keep the whole message in the encrypted quarantine with its
            violations, replayable once the plan is fixed
block       an unplanned event under ``unplanned: block``: quarantined
            too (never dropped silently)
==========  ==============================================================

The message given here is the pseudonymized view (identifier values already
replaced by pseudonyms): validation never sees a raw identifier. The paths in
`opaque` hold pseudonyms, so ``format`` checks there (``format: email`` on an
email trait, say) are skipped rather than failing on every event.

No reason quotes a value; a key that may itself be personal data (one that
holds an ``@`` or a run of digits) is masked in paths as ``[key]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from collector.quality.lint import event_name_ok, property_name_ok
from collector.quality.plan import Schema, TrackingPlan

Kind = Literal[
    "unplanned_event", "required_missing", "wrong_type", "unplanned_property", "format", "naming"
]
Verdict = Literal["forward", "flag", "omit", "quarantine", "block"]
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PERSONAL_KEY = re.compile(r"@|\d{5,}")
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
_VALUE_KEYWORDS = {
    "format": "does not match format {v}",
    "enum": "is not one of the allowed values",
    "const": "is not the required constant",
    "pattern": "does not match the pattern",
    "minimum": "is below the minimum {v}",
    "maximum": "is above the maximum {v}",
    "exclusiveMinimum": "is not above {v}",
    "exclusiveMaximum": "is not below {v}",
    "minLength": "is shorter than {v} characters",
    "maxLength": "is longer than {v} characters",
    "minItems": "has fewer than {v} items",
    "maxItems": "has more than {v} items",
    "multipleOf": "is not a multiple of {v}",
    "uniqueItems": "has repeated items",
}


@dataclass(frozen=True)
class Violation:
    """One finding. `path` is absolute (``$.batch[2].properties.total``)."""

    kind: Kind
    path: str
    reason: str

    def to_builtins(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    violations: tuple[Violation, ...] = ()
    # (section, key) pairs to remove under `omit`, e.g. ("properties", "colour").
    omit: tuple[tuple[str, str], ...] = ()


def key_path(prefix: str, keys: Iterator[Any] | tuple[Any, ...] | list[Any]) -> str:
    """A JSON path from `prefix` and keys, masking keys that may be personal data."""
    out = prefix
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _PERSONAL_KEY.search(key):
            out += "[key]"
        elif _SIMPLE_KEY.match(key):
            out += f".{key}"
        else:
            out += "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return _JSON_TYPES.get(type(value), "value")


def _schema_violations(
    schema: Schema, instance: Any, *, base: tuple[str, ...], prefix: str, planned: bool = True
) -> list[tuple[Violation, tuple[Any, ...]]]:
    """Violations with their location relative to the message. With `planned`,
    keys the schema does not declare are unplanned properties (event properties
    and traits); without it (the common schema over the whole message, whose
    standard fields no plan lists) only `additionalProperties: false` says so."""
    found: list[tuple[Violation, tuple[Any, ...]]] = []
    if planned:
        found.extend(_unplanned(schema.source, instance, base, prefix))
    if schema.is_valid(instance):
        return found
    seen_required: set[tuple[Any, ...]] = set()
    for error in schema.validator.iter_errors(instance):
        where = (*base, *error.absolute_path)
        keyword = str(error.validator)
        if keyword == "additionalProperties":
            if not planned and isinstance(error.instance, dict):
                declared = error.schema.get("properties") or {}
                for key in error.instance:
                    if key not in declared:
                        loc = (*where, key)
                        found.append(
                            (
                                Violation(
                                    "unplanned_property",
                                    key_path(prefix, loc),
                                    "property is not in the plan",
                                ),
                                loc,
                            )
                        )
            continue  # with `planned`, `_unplanned` reports them key by key
        if keyword == "required":
            # jsonschema yields one error per missing name, each carrying the whole list.
            present = error.instance if isinstance(error.instance, dict) else {}
            for name in error.validator_value:
                if name not in present and (*where, name) not in seen_required:
                    seen_required.add((*where, name))
                    loc = (*where, name)
                    found.append(
                        (
                            Violation(
                                "required_missing",
                                key_path(prefix, loc),
                                "required property is missing",
                            ),
                            loc,
                        )
                    )
        elif keyword == "type":
            expected = error.validator_value
            expected_text = " or ".join(expected) if isinstance(expected, list) else str(expected)
            reason = f"expected {expected_text}, got {_json_type(error.instance)}"
            found.append((Violation("wrong_type", key_path(prefix, where), reason), where))
        else:
            template = _VALUE_KEYWORDS.get(keyword, f"fails the schema's {keyword} rule")
            value = error.validator_value if keyword != "pattern" else ""
            reason = template.format(v=value)
            found.append((Violation("format", key_path(prefix, where), reason), where))
    return found


def _unplanned(
    schema: Mapping[str, Any], instance: Any, base: tuple[Any, ...], prefix: str
) -> Iterator[tuple[Violation, tuple[Any, ...]]]:
    """Keys an object schema does not declare (unless it allows them explicitly)."""
    if not isinstance(instance, dict) or not isinstance(schema, dict):
        return
    declared = schema.get("properties")
    if not isinstance(declared, dict):
        return
    patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
    open_schema = schema.get("additionalProperties") is True
    for key, value in instance.items():
        if key in declared:
            yield from _unplanned(declared[key], value, (*base, key), prefix)
        elif not open_schema and not any(p.search(key) for p in patterns):
            loc = (*base, key)
            yield (
                Violation(
                    "unplanned_property", key_path(prefix, loc), "property is not in the plan"
                ),
                loc,
            )


def _naming(
    plan: TrackingPlan, message: Mapping[str, Any], prefix: str
) -> Iterator[tuple[Violation, tuple[Any, ...]]]:
    rule = plan.naming
    event = message.get("event")
    if (
        rule.events
        and message.get("type") == "track"
        and isinstance(event, str)
        and not event_name_ok(event, rule.events)
    ):
        yield (
            Violation("naming", f"{prefix}.event", "event name is not Object Action in Title Case"),
            ("event",),
        )
    if rule.properties:
        for section in ("properties", "traits"):
            values = message.get(section)
            if isinstance(values, dict):
                for key in values:
                    if not property_name_ok(key, rule.properties):
                        loc = (section, key)
                        yield (
                            Violation(
                                "naming", key_path(prefix, loc), f"name is not {rule.properties}"
                            ),
                            loc,
                        )


def check(
    plan: TrackingPlan,
    message: Mapping[str, Any],
    *,
    prefix: str = "$",
    opaque: frozenset[tuple[str, ...]] = frozenset(),
) -> Outcome:
    """Validate `message` (a decoded, pseudonymized message) against `plan`.

    `prefix` is the message's own JSON path in its request; `opaque` lists
    paths (as key tuples) whose values are pseudonyms.
    """
    msg_type = message.get("type")
    found: list[tuple[Violation, tuple[Any, ...]]] = []
    verdict_if_any: Verdict = "quarantine" if plan.action == "quarantine" else plan.action
    if plan.common is not None:
        found += _schema_violations(plan.common, message, base=(), prefix=prefix, planned=False)
    if msg_type == "track":
        event = message.get("event")
        rule = plan.events.get(event) if isinstance(event, str) else None
        if rule is None:
            found.append(
                (
                    Violation(
                        "unplanned_event", f"{prefix}.event", "event is not in the tracking plan"
                    ),
                    ("event",),
                )
            )
            if plan.unplanned == "block":
                return Outcome("block", tuple(v for v, _ in found))
        else:
            verdict_if_any = rule.action
            if rule.properties is not None:
                props = message.get("properties") or {}
                found += _schema_violations(
                    rule.properties, props, base=("properties",), prefix=prefix
                )
    elif msg_type in ("identify", "group"):
        schema = plan.identify_traits if msg_type == "identify" else plan.group_traits
        if schema is not None:
            traits = message.get("traits") or {}
            found += _schema_violations(schema, traits, base=("traits",), prefix=prefix)
    found += list(_naming(plan, message, prefix))
    kept = [(v, loc) for v, loc in found if not (v.kind == "format" and tuple(loc) in opaque)]
    if not kept:
        return Outcome("forward")
    violations = tuple(v for v, _ in kept)
    if verdict_if_any != "omit":
        return Outcome(verdict_if_any, violations)
    omit = sorted(
        {
            (str(loc[0]), str(loc[1]))
            for v, loc in kept
            if len(loc) >= 2 and loc[0] in ("properties", "traits") and v.kind != "required_missing"
        }
    )
    return Outcome("omit", violations, tuple(omit))


def apply_omit(message: dict[str, Any], omit: tuple[tuple[str, str], ...]) -> None:
    """Remove the (section, key) pairs an `omit` outcome names, in place."""
    for section, key in omit:
        values = message.get(section)
        if isinstance(values, dict):
            values.pop(key, None)
