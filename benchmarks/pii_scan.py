"""What the PII scan (issue 14 §1) costs per event, in process, interleaved.

    .venv/bin/python benchmarks/pii_scan.py [--rounds 9] [--batches 20]

Prepares the ingest benchmark's messages (no identifier-shaped values, as most
storefront events) with the scan on and off, alternating rounds so load on a
shared machine hits both alike; prints the fastest round of each in µs per
event, then the same with one email and one phone planted in every message
(the scan's slow path: regexes and libphonenumber).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import batches

from collector.pipeline.decode import decode_message
from collector.pipeline.prepare import Preparer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    from ingest import local_runtime

    rt, work = local_runtime("bench-pii-")
    try:
        on = rt.preparer
        off = Preparer(rt.pseudonymizer, type(on._opt)(**{**_fields(on._opt), "scrub": None}))
        plain = [m for b in batches(args.batches, 100, people=2000) for m in json.loads(b)["batch"]]
        planted = [
            {
                **m,
                "properties": {
                    **m["properties"],
                    "note": "call +86 138 0013 8000",
                    "contact": "Jane@Example.com",
                },
            }
            for m in plain
        ]
        for label, messages in (("no identifiers", plain), ("email + phone planted", planted)):
            raws = [json.dumps(m).encode() for m in messages]
            best = {"scan on": float("inf"), "scan off": float("inf")}
            for _ in range(args.rounds):
                for name, preparer in (("scan on", on), ("scan off", off)):
                    best[name] = min(best[name], _round(preparer, raws))
            extra = best["scan on"] - best["scan off"]
            print(
                f"{label:<24} scan on {best['scan on']:7.1f} µs/event   scan off"
                f" {best['scan off']:7.1f}   difference {extra:+6.1f} µs"
                f" ({extra / best['scan off'] * 100:+.0f}%)"
            )
    finally:
        rt.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _fields(options: object) -> dict[str, object]:
    return {k: getattr(options, k) for k in options.__dataclass_fields__}  # type: ignore[attr-defined]


def _round(preparer: Preparer, raws: list[bytes]) -> float:
    now = datetime.now(UTC)
    start = time.perf_counter()
    for i, raw in enumerate(raws):
        preparer.prepare(
            decode_message(raw, index=i, prefix="$"), index=i, prefix="$", received_at=now
        )
    return (time.perf_counter() - start) / len(raws) * 1e6


if __name__ == "__main__":
    main()
