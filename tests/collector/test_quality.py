"""Tracking plans: loading, each violation kind, actions, naming, inference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.quality.infer import infer
from collector.quality.plan import PlanError, load_plan, parse_plan
from collector.quality.report import summarize
from collector.quality.validate import apply_omit, check

PLAN: dict[str, Any] = {
    "version": 1,
    "action": "flag",
    "unplanned": "block",
    "common": {"type": "object", "required": ["type"]},
    "events": {
        "Order Completed": {
            "action": "quarantine",
            "properties": {
                "type": "object",
                "required": ["order_id", "total"],
                "properties": {
                    "order_id": {"type": "string"},
                    "total": {"type": "number", "minimum": 0},
                    "currency": {"type": "string", "enum": ["EUR", "USD", "CNY"]},
                    "placed_at": {"type": "string", "format": "date-time"},
                },
            },
        },
        "Product Viewed": {
            "action": "omit",
            "properties": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "price": {"type": "number"}},
            },
        },
        "Signed Up": {},
    },
    "identify": {
        "traits": {
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "plan": {"type": "string"},
            },
        }
    },
}


def track(event: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": event, "properties": props}


def kinds(outcome: Any) -> list[tuple[str, str]]:
    return sorted((v.kind, v.path) for v in outcome.violations)


def test_a_planned_valid_event_is_forwarded() -> None:
    plan = parse_plan(PLAN, name="p")
    message = track(
        "Order Completed",
        order_id="A1",
        total=9.5,
        currency="EUR",
        placed_at="2026-11-01T10:00:00Z",
    )
    assert check(plan, message).verdict == "forward"


def test_each_violation_kind_with_its_path() -> None:
    plan = parse_plan(PLAN, name="p")
    outcome = check(
        plan,
        track("Order Completed", total="9.5", currency="GBP", placed_at="yesterday", colour="red"),
        prefix="$.batch[3]",
    )
    assert outcome.verdict == "quarantine"
    assert kinds(outcome) == [
        ("format", "$.batch[3].properties.currency"),
        ("format", "$.batch[3].properties.placed_at"),
        ("required_missing", "$.batch[3].properties.order_id"),
        ("unplanned_property", "$.batch[3].properties.colour"),
        ("wrong_type", "$.batch[3].properties.total"),
    ]
    unplanned = check(plan, track("Cart Abandoned"), prefix="$")
    assert unplanned.verdict == "block"
    assert kinds(unplanned) == [("unplanned_event", "$.event")]


def test_reasons_never_quote_values() -> None:
    plan = parse_plan(PLAN, name="p")
    secret = "jane.doe@example.com"
    outcome = check(plan, track("Order Completed", order_id=1, total=secret, currency=secret))
    text = json.dumps([v.to_builtins() for v in outcome.violations])
    assert secret not in text
    assert outcome.violations


def test_a_key_that_may_be_personal_data_is_masked_in_paths() -> None:
    plan = parse_plan(PLAN, name="p")
    outcome = check(plan, track("Product Viewed", **{"jane@example.com": 1, "13800138000": 2}))
    paths = [v.path for v in outcome.violations]
    assert paths == ["$.properties[key]", "$.properties[key]"]


def test_omit_drops_unplanned_and_invalid_properties_and_keeps_the_rest() -> None:
    plan = parse_plan(PLAN, name="p")
    message = track("Product Viewed", sku="S1", price="cheap", colour="red")
    outcome = check(plan, message)
    assert outcome.verdict == "omit"
    apply_omit(message, outcome.omit)
    assert message["properties"] == {"sku": "S1"}


def test_common_schema_checks_the_message_without_calling_its_standard_fields_unplanned() -> None:
    common = {
        "type": "object",
        "required": ["messageId"],
        "properties": {"messageId": {"type": "string"}},
    }
    plan = parse_plan({"common": common, "events": {"Signed Up": {}}}, name="p")
    message = {**track("Signed Up"), "messageId": "m1", "userId": "u1", "context": {}}
    assert check(plan, message).verdict == "forward"
    assert kinds(check(plan, {**message, "messageId": 7})) == [("wrong_type", "$.messageId")]
    closed = parse_plan(
        {"common": {**common, "additionalProperties": False}, "events": {"Signed Up": {}}}, name="p"
    )
    assert ("unplanned_property", "$.userId") in kinds(check(closed, message))


def test_unplanned_flag_forwards_with_the_violation() -> None:
    plan = parse_plan({**PLAN, "unplanned": "flag"}, name="p")
    outcome = check(plan, track("Cart Abandoned"))
    assert outcome.verdict == "flag"
    assert kinds(outcome) == [("unplanned_event", "$.event")]


def test_format_on_a_pseudonymized_path_is_skipped() -> None:
    plan = parse_plan(PLAN, name="p")
    message = {"type": "identify", "traits": {"email": "k1:Zm9vYmFy", "plan": "pro"}}
    assert check(plan, message).verdict == "flag"  # format email fails on a pseudonym...
    assert check(plan, message, opaque=frozenset({("traits", "email")})).verdict == "forward"


def test_naming_rules() -> None:
    plan = parse_plan(
        {
            "events": {"order completed": {}, "Order Completed": {}},
            "naming": {"events": "object_action", "properties": "snake_case"},
        },
        name="p",
    )
    assert kinds(check(plan, track("order completed"))) == [("naming", "$.event")]
    assert kinds(check(plan, track("Order Completed", orderId=1))) == [
        ("naming", "$.properties.orderId")
    ]
    assert check(plan, track("Order Completed", order_id=1)).verdict == "forward"


@pytest.mark.parametrize(
    ("plan", "needle"),
    [
        ({"events": {}, "actions": "flag"}, "unknown key 'actions'"),
        ({"action": "drop"}, "action must be one of flag, omit, quarantine"),
        (
            {"events": {"X": {"properties": {"type": "strin"}}}},
            "events.X.properties: not a valid draft-07",
        ),
        ({"events": {"X": {"propertes": {}}}}, "events.X: unknown key 'propertes'"),
    ],
)
def test_plan_errors_name_the_key(plan: dict[str, Any], needle: str) -> None:
    with pytest.raises(PlanError, match=None) as info:
        parse_plan(plan, name="plans/p.yaml")
    assert needle in str(info.value)
    assert "plans/p.yaml" in str(info.value)


def test_load_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("events:\n  Signed Up:\n    properties: {type: object}\n")
    (tmp_path / "p.json").write_text(json.dumps(PLAN))
    assert set(load_plan(tmp_path / "p.yaml").events) == {"Signed Up"}
    assert set(load_plan(tmp_path / "p.json").events) == set(PLAN["events"])
    (tmp_path / "bad.yaml").write_text("events: [\n")
    with pytest.raises(PlanError, match="not valid YAML at line"):
        load_plan(tmp_path / "bad.yaml")
    with pytest.raises(PlanError, match="cannot be read"):
        load_plan(tmp_path / "missing.yaml")


def test_summary_counts() -> None:
    plan = parse_plan(PLAN, name="p")
    sample = [
        track("Order Completed", order_id="A", total=1),
        track("Cart Abandoned"),
        track("Order Completed"),
    ]
    summary = summarize(plan, enumerate(sample, 1))
    assert summary.messages == 3
    assert summary.verdicts == {"forward": 1, "block": 1, "quarantine": 1}
    assert summary.events["Order Completed"]["required_missing"] == 2


def test_infer_drafts_a_plan_that_accepts_its_own_sample() -> None:
    sample = [
        track("Order Completed", order_id="A", total=10, currency="EUR", coupon="X"),
        track("Order Completed", order_id="B", total=12.5, currency="USD"),
        track("Order Completed", order_id="C", total=3, currency="EUR"),
        track("Order Completed", order_id="D", total=3, currency="USD"),
        {"type": "identify", "traits": {"email": "k1:x", "plan": "pro"}},
    ]
    draft = infer(sample)
    schema = draft["events"]["Order Completed"]["properties"]
    assert schema["required"] == ["currency", "order_id", "total"]
    assert schema["properties"]["total"]["type"] == "number"
    assert schema["properties"]["currency"]["enum"] == ["EUR", "USD"]
    assert "enum" not in schema["properties"]["order_id"]  # identifier-like keys never become enums
    plan = parse_plan(draft, name="draft")
    assert all(check(plan, m).verdict == "forward" for m in sample)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.text(min_size=1, max_size=6), json_values, max_size=5),
        min_size=1,
        max_size=6,
    )
)
def test_inferred_plan_accepts_every_message_it_was_drafted_from(
    props: list[dict[str, Any]],
) -> None:
    sample = [track("Thing Happened", **p) for p in props]
    plan = parse_plan(infer(sample), name="draft")
    for message in sample:
        outcome = check(plan, message)
        assert outcome.verdict == "forward", outcome.violations


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_check_never_raises_and_never_quotes_a_value(value: Any) -> None:
    plan = parse_plan(PLAN, name="p")
    marker = "zz-secret-value-zz"
    message = track(
        "Order Completed", order_id=value, total=marker, currency=[marker], extra={marker: value}
    )
    outcome = check(plan, message)
    assert outcome.verdict == "quarantine"
    assert marker not in json.dumps([v.to_builtins() for v in outcome.violations])


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collector.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_plan_check_and_infer_commands(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    lines = [
        json.dumps(track("Order Completed", order_id="A", total=3, currency="EUR")),
        json.dumps(track("Order Completed", total="3")),
        json.dumps(track("Cart Abandoned")),
        "not json",
    ]
    sample.write_text("\n".join(lines) + "\n")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(PLAN))
    checked = run_cli("plan", "check", str(plan_file), str(sample), "--json")
    assert checked.returncode == 1, checked.stderr
    summary = json.loads(checked.stdout)
    assert summary["messages"] == 3
    assert summary["verdicts"] == {"forward": 1, "quarantine": 1, "block": 1}
    assert summary["violations"] == {"required_missing": 1, "wrong_type": 1, "unplanned_event": 1}
    assert summary["unreadable_lines"] == [4]
    assert "1 lines are not JSON objects (lines 4)" in checked.stderr
    table = run_cli("plan", "check", str(plan_file), str(sample))
    assert "Order Completed" in table.stdout and "required missing" in table.stdout
    drafted = run_cli("plan", "infer", str(sample))
    assert drafted.returncode == 1  # the unreadable line is reported
    draft_file = tmp_path / "draft.yaml"
    draft_file.write_text(drafted.stdout)
    assert set(load_plan(draft_file).events) == {"Order Completed", "Cart Abandoned"}
    missing = run_cli("plan", "check", str(tmp_path / "nope.yaml"), str(sample))
    assert missing.returncode == 2
    assert (
        missing.stderr.strip().startswith("consentry: tracking plan")
        and "Traceback" not in missing.stderr
    )
