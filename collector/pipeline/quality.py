"""The tracking-plan step: check a message against its source's plan (pure).

Runs inside `Preparer` after pseudonymization (step 4) and before the egress
payloads, on a view of the message in which every identifier the pipeline
found (``userId``, ``traits.email`` …) is already replaced by a placeholder:
the plan never sees a raw identifier, and ``format`` checks on those paths
are skipped (a pseudonym is not an email address). What the PII scan replaced
elsewhere is a placeholder in the message already.

Outcomes (collector.quality.validate): ``forward`` and ``flag`` change nothing
but add warnings and decision notes; ``omit`` removes the offending
properties/traits before any destination payload is built; ``quarantine``
and ``block`` raise `HeldByPlan`, which the caller quarantines (encrypted,
replayable with ``consentry quarantine replay``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from collector.errors import HeldByPlan
from collector.pipeline.warnings import InputWarning
from collector.quality.plan import TrackingPlan
from collector.quality.validate import Violation, apply_omit, check

PLACEHOLDER = "<pseudonym>"
_MAX_IN_REASON = 5


@dataclass(frozen=True, slots=True)
class PlanResult:
    """What a plan said about a kept message."""

    verdict: str  # forward | flag | omit
    violations: tuple[Violation, ...]
    event: str  # metric label: the planned event name, "(unplanned)" or "(type)"

    def notes(self) -> tuple[str, ...]:
        """Decision notes: ``plan <verdict>: <kind> at <path>`` (no values)."""
        return tuple(f"plan {self.verdict}: {v.kind} at {v.path}" for v in self.violations)

    def warnings(self, index: int) -> list[InputWarning]:
        return [
            InputWarning(
                index,
                "plan_violation",
                f"{v.kind}: {v.reason} (tracking plan: {self.verdict})",
                v.path,
            )
            for v in self.violations
        ]


def _view(data: dict[str, Any], paths: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """`data` with the value at each path replaced by `PLACEHOLDER`; only the
    containers along those paths are copied."""
    view = dict(data)
    for path in paths:
        if not path:
            continue
        node: Any = view
        for key in path[:-1]:
            child = node.get(key) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                node = None
                break
            child = dict(child)
            node[key] = child
            node = child
        if isinstance(node, dict) and path[-1] in node:
            node[path[-1]] = PLACEHOLDER
    return view


def event_label(plan: TrackingPlan, data: dict[str, Any]) -> str:
    """A bounded metric label: planned event names only (an attacker's random
    event names must not grow the metric without limit)."""
    if data.get("type") != "track":
        return f"({data.get('type')})"
    event = data.get("event")
    return event if isinstance(event, str) and event in plan.events else "(unplanned)"


def apply_plan(
    plan: TrackingPlan,
    data: dict[str, Any],
    identifier_paths: Iterable[Sequence[Any]],
    *,
    prefix: str,
    held: Callable[[], bytes],
) -> PlanResult:
    """Check `data` (changed in place under ``omit``). Raises `HeldByPlan`
    for ``quarantine``/``block``, carrying ``held()``: the bytes to keep in
    the encrypted quarantine for a replay."""
    paths = [tuple(p) for p in identifier_paths if p]
    outcome = check(plan, _view(data, paths), prefix=prefix, opaque=frozenset(paths))
    if outcome.verdict in ("quarantine", "block"):
        shown = "; ".join(f"{v.kind} at {v.path}" for v in outcome.violations[:_MAX_IN_REASON])
        more = len(outcome.violations) - _MAX_IN_REASON
        reason = f"tracking plan ({outcome.verdict}): {shown}" + (
            f"; {more} more" if more > 0 else ""
        )
        raise HeldByPlan(
            reason,
            outcome.violations[0].path,
            violations=tuple((v.kind, v.path, v.reason) for v in outcome.violations),
            kept=held(),
            verdict=outcome.verdict,
            event=event_label(plan, data),
        )
    if outcome.verdict == "omit":
        apply_omit(data, outcome.omit)
    return PlanResult(outcome.verdict, outcome.violations, event_label(plan, data))
