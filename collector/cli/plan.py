"""`consentry plan`: check a sample against a tracking plan, or draft a plan."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from collector.cli.common import add_common, fail
from collector.quality.infer import infer
from collector.quality.plan import load_plan
from collector.quality.report import summarize

_KINDS = (
    "unplanned_event",
    "required_missing",
    "wrong_type",
    "unplanned_property",
    "format",
    "naming",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="tracking plans: check a sample, draft a plan")
    psub = p.add_subparsers(dest="plan_cmd", required=True)
    check = psub.add_parser("check", help="validate a JSONL sample of messages against a plan")
    check.add_argument("plan", type=Path, help="tracking plan file (.yaml, .yml or .json)")
    check.add_argument("sample", type=Path, help="JSONL file, one Segment message per line")
    check.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_common(check)
    draft = psub.add_parser("infer", help="draft a plan (YAML) from a JSONL sample")
    draft.add_argument("sample", type=Path, help="JSONL file, one Segment message per line")
    draft.add_argument(
        "--enum-max", type=int, default=8, help="largest value set drafted as an enum"
    )
    add_common(draft)
    p.set_defaults(fn=cmd_plan)


def _messages(path: Path, bad: list[int]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                bad.append(number)
                continue
            if isinstance(value, dict):
                yield number, value
            else:
                bad.append(number)


def cmd_plan(args: argparse.Namespace) -> int:
    if not args.sample.is_file():
        return fail(f"sample {args.sample}: no such file")
    bad: list[int] = []
    if args.plan_cmd == "infer":
        draft = infer((m for _, m in _messages(args.sample, bad)), enum_max=args.enum_max)
        sys.stdout.write(yaml.safe_dump(draft, sort_keys=False, width=100))
        return _report_bad(bad)
    plan = load_plan(args.plan)
    summary = summarize(plan, _messages(args.sample, bad))
    if args.json:
        print(
            json.dumps(
                {
                    "messages": summary.messages,
                    "verdicts": dict(summary.verdicts),
                    "violations": dict(summary.kinds),
                    "events": {k: dict(v) for k, v in summary.events.items()},
                    "unreadable_lines": bad,
                },
                indent=2,
                sort_keys=True,
            )
        )
    else:
        _table(summary)
    _report_bad(bad)
    return 1 if summary.kinds or bad else 0


def _table(summary: Any) -> None:
    console = Console()
    table = Table(title=f"{summary.messages} messages checked")
    table.add_column("event", overflow="fold")
    table.add_column("messages", justify="right")
    table.add_column("forwarded", justify="right")
    table.add_column("violations", overflow="fold")
    for event in sorted(summary.events):
        counts = summary.events[event]
        found = ", ".join(f"{k.replace('_', ' ')} {counts[k]}" for k in _KINDS if counts[k])
        table.add_row(event, str(counts["messages"]), str(counts["forward"]), found or "none")
    console.print(table)
    for line, violation in summary.examples:
        console.print(
            f"line {line}: {violation.kind} at {violation.path}: {violation.reason}",
            markup=False,
            soft_wrap=True,
        )


def _report_bad(bad: list[int]) -> int:
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" …" if len(bad) > 10 else "")
        print(f"consentry: {len(bad)} lines are not JSON objects (lines {shown})", file=sys.stderr)
        return 1
    return 0
