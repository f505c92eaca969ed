"""Tracking-plan validation cost per event: fastjsonschema vs jsonschema, same run.

    .venv/bin/python benchmarks/tracking_plan.py [--rounds 7] [--events 20000]

Validates the benchmark's storefront messages (`_common.message`, the events
`benchmarks/ingest.py` sends) against `benchmarks/plans/storefront.yaml`
(about 50 events), valid and with violations, four ways, interleaved round by
round so machine noise hits all alike; prints the median µs per event:

  fastjsonschema   compiled validator, yes/no (stops at the first error)
  jsonschema       Draft7Validator.is_valid (yes/no)
  jsonschema all   Draft7Validator.iter_errors (every violation with its path)
  plan check       collector.quality.validate.check (fastjsonschema first,
                   jsonschema only to list the violations of a failing message)
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import message

from collector.quality.plan import load_plan
from collector.quality.validate import check

PLAN = Path(__file__).resolve().parent / "plans" / "storefront.yaml"


def samples(n: int, *, broken: bool) -> list[dict[str, Any]]:
    rng = random.Random(3)
    out = []
    for i in range(n):
        m = message(rng, i % 500, consent={"analytics": True})
        if broken:
            props = m["properties"]
            assert isinstance(props, dict)
            props["price"] = "129.95"  # wrong type
            props["colour"] = "blue"  # unplanned
            del props["product_id"]  # required
        out.append(m)
    return out


def timed(fn: Callable[[dict[str, Any]], object], events: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for e in events:
        fn(e)
    return (time.perf_counter() - start) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--events", type=int, default=20000, help="events per round")
    args = parser.parse_args()
    plan = load_plan(PLAN)
    rule = plan.events["Product Added"]
    assert rule.properties is not None
    fast = rule.properties.is_valid
    slow = rule.properties.validator

    ways: dict[str, Callable[[dict[str, Any]], object]] = {
        "fastjsonschema": lambda m: fast(m["properties"]),
        "jsonschema": lambda m: slow.is_valid(m["properties"]),
        "jsonschema all": lambda m: list(slow.iter_errors(m["properties"])),
        "plan check": lambda m: check(plan, m),
    }
    for label, broken in (("valid events", False), ("events with 3 violations", True)):
        events = samples(args.events, broken=broken)
        results: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(args.rounds):
            for name, fn in ways.items():
                results[name].append(timed(fn, events))
        base = statistics.median(results["fastjsonschema"])
        print(f"{label} ({args.events} per round, {args.rounds} rounds, median µs/event):")
        for name, values in results.items():
            med = statistics.median(values)
            print(f"  {name:16s} {med:8.2f} µs   {med / base:5.1f}x fastjsonschema")


if __name__ == "__main__":
    main()
