"""Where an event's CPU goes, stage by stage, in one process (no HTTP).

    .venv/bin/python benchmarks/ingest_stages.py [--rounds 7] [--batches 200]

Builds the collector's Runtime with the same three destinations and batches as
benchmarks/ingest.py, warms it (every person seen once, as in a steady state
of mostly returning people), then times per event, median over rounds:
  A  decode + prepare (validation, consent signals, pseudonyms, payloads)
  B1 plan: a returning person's event routed from caches, before the lock
  B2 route under the write lock (re-checks each plan; the full OneID, ledger
     and decision work for the rest) and the outbox/decision inserts
  C  COMMIT with synchronous=FULL (one per 100-event batch here; the server
     groups several batches per commit under load)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import msgspec
from _common import batches
from ingest import local_runtime

from collector.pipeline.decode import decode_message
from collector.pipeline.prepare import Prepared
from collector.runtime import tune_gc
from sdk_python.messages import Batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--no-pii-scan", action="store_true", help="[privacy] pii_scan = false")
    args = ap.parse_args()
    rt, work = local_runtime(
        "bench-stages-", "\n[privacy]\npii_scan = false\n" if args.no_pii_scan else ""
    )
    tune_gc()
    _batch_decoder = msgspec.json.Decoder(Batch)
    bodies = batches(args.batches, 100, people=args.people)
    conn = rt.writer._conn  # the writer thread is idle: we drive the connection ourselves

    def stage_a(body: bytes, now: datetime) -> list[Prepared]:
        envelope = _batch_decoder.decode(body)
        return [
            rt.preparer.prepare(
                decode_message(bytes(raw), index=i, prefix="$"),
                index=i,
                prefix="$",
                received_at=now,
                batch_context=envelope.context,
            )
            for i, raw in enumerate(envelope.batch)
        ]

    def one_round() -> tuple[float, float, float, float]:
        ta = tp = tb = tc = 0.0
        for body in bodies:
            now = datetime.now(UTC)
            t0 = time.perf_counter()
            prepared = stage_a(body, now)
            t1 = time.perf_counter()
            unit = rt.router.unit(prepared, [], source="bench", received_at=now)
            unit.plan()
            t2 = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            rt._on_begin(conn)
            unit(conn)
            rt.router.flush(conn)
            t3 = time.perf_counter()
            conn.execute("COMMIT")
            t4 = time.perf_counter()
            ta, tp, tb, tc = ta + t1 - t0, tp + t2 - t1, tb + t3 - t2, tc + t4 - t3
        n = len(bodies) * 100 / 1e6
        return ta / n, tp / n, tb / n, tc / n

    one_round()  # warm: every person known, caches filled
    rounds = [one_round() for _ in range(args.rounds)]
    a, p, b, c = (statistics.median(r[i] for r in rounds) for i in range(4))
    print(f"{len(bodies) * 100:,} events x {args.rounds} rounds, median µs per event:")
    print(f"  A  decode + prepare            {a:6.1f}   (event loop thread)")
    print(f"  B1 plan from caches            {p:6.1f}   (writer thread, before the write lock)")
    print(f"  B2 route + inserts             {b:6.1f}   (under the write lock)")
    print(
        f"  total CPU                      {a + p + b:6.1f}   -> {1e6 / (a + p + b):,.0f} events/s per core"
    )
    print(f"  C  commit (FULL)               {c:6.1f}   (one commit per 100 events)")
    rt.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
