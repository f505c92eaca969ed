"""A summary of a sample checked against a plan (`consentry plan check`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.quality.plan import TrackingPlan
from collector.quality.validate import Violation, check


@dataclass
class Summary:
    """Counts per event name: messages, verdicts and violation kinds."""

    messages: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    events: dict[str, Counter[str]] = field(default_factory=dict)
    kinds: Counter[str] = field(default_factory=Counter)
    # The first findings, as (line number, violation), for the operator to look at.
    examples: list[tuple[int, Violation]] = field(default_factory=list)


def _label(message: Mapping[str, Any]) -> str:
    if message.get("type") == "track":
        return str(message.get("event"))
    return f"({message.get('type')})"


def summarize(
    plan: TrackingPlan, messages: Iterable[tuple[int, Mapping[str, Any]]], *, examples: int = 20
) -> Summary:
    """Check each (line number, message) against `plan` and count the results."""
    summary = Summary()
    for line, message in messages:
        outcome = check(plan, message, prefix=f"$[{line}]")
        summary.messages += 1
        summary.verdicts[outcome.verdict] += 1
        per_event = summary.events.setdefault(_label(message), Counter())
        per_event["messages"] += 1
        per_event[outcome.verdict] += 1
        for violation in outcome.violations:
            per_event[violation.kind] += 1
            summary.kinds[violation.kind] += 1
            if len(summary.examples) < examples:
                summary.examples.append((line, violation))
    return summary
