"""Our SDK against Segment's analytics-python, same run, same local sink.

    .venv/bin/python benchmarks/sdk_vs_segment.py [--calls 50000] [--seconds 10]

1. Caller-side cost per track(): median µs over rounds of calls, sender running,
   queue large enough that nothing is dropped.
2. A producer calling track() in a tight loop for N seconds, then shutdown with a
   bounded drain: events delivered to the sink, events dropped, delivered/s.
The sink is benchmarks/baseline_server.py (decodes every batch, counts messages).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import segment.analytics as segment_analytics

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Proc, free_port

from sdk_python import Client

PROPS = {
    "product_id": "SKU-1",
    "price": 129.95,
    "currency": "EUR",
    "quantity": 1,
    "category": "Shoes",
}


def sink() -> Proc:
    port = free_port()
    return Proc(
        [sys.executable, str(ROOT / "benchmarks" / "baseline_server.py"), str(port)],
        dict(os.environ),
        f"http://127.0.0.1:{port}",
        "/healthz",
    )


def received(s: Proc) -> int:
    return int(httpx.get(s.url + "/count").text)


def caller_cost(make, calls: int, rounds: int = 5) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(rounds):
        client = make(max_queue_size=calls * 2)
        t = time.perf_counter()
        for i in range(calls):
            client.track(f"user-{i % 1000}", "Product Added", PROPS)
        samples.append((time.perf_counter() - t) / calls * 1e6)
        client.shutdown() if hasattr(client, "shutdown") else client.flush()
    return statistics.median(samples)


def tight_loop(make, seconds: float, s: Proc, drain: float = 60.0) -> tuple[int, int, int, float]:  # type: ignore[no-untyped-def]
    before = received(s)
    client = make()
    calls = 0
    start = time.perf_counter()
    end = start + seconds
    while time.perf_counter() < end:
        for _ in range(100):
            client.track("loop-user", "Product Added", PROPS)
        calls += 100
    produced = time.perf_counter() - start
    t = time.perf_counter()
    if isinstance(client, Client):
        client.shutdown(timeout=drain)
    else:
        client.flush()
        client.join()
    total = produced + (time.perf_counter() - t)
    time.sleep(0.5)
    delivered = received(s) - before
    return calls, delivered, calls - delivered, total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    s = sink()
    spool_dir = tempfile.mkdtemp(prefix="bench-spool-")
    try:

        def seg(**kw):  # type: ignore[no-untyped-def]
            return segment_analytics.Client("k", host=s.url, **kw)

        def ours(**kw):  # type: ignore[no-untyped-def]
            return Client(
                "k", host=s.url, spool_path=Path(spool_dir) / f"s-{time.time_ns()}.db", **kw
            )

        seg_cost = caller_cost(seg, args.calls)
        our_cost = caller_cost(ours, args.calls)
        print(f"caller-side cost per track() ({args.calls:,} calls, median of 5 rounds):")
        print(f"  analytics-python {segment_analytics.VERSION:<8} {seg_cost:6.2f} us")
        print(
            f"  consentry sdk            {our_cost:6.2f} us   ({our_cost / seg_cost:.2f}x of Segment's)"
        )
        print(f"\ntight loop for {args.seconds:.0f} s, then shutdown (drain bounded at 60 s):")
        results = []
        for name, make in (("analytics-python", seg), ("consentry sdk", ours)):
            calls, delivered, lost, total = tight_loop(make, args.seconds, s)
            results.append((delivered, total))
            print(
                f"  {name:<17} calls {calls:>10,}  delivered {delivered:>10,}  dropped {lost:>10,}"
                f"  ({lost / calls:5.1%})  per s of the loop {delivered / args.seconds:>9,.0f}"
                f"  per s incl. drain {delivered / total:>9,.0f}"
            )
        (d_seg, t_seg), (d_our, t_our) = results
        print(
            f"  ours / Segment's: delivered {d_our / d_seg:.1f}x;"
            f" per second including each one's drain {(d_our / t_our) / (d_seg / t_seg):.1f}x"
        )
    finally:
        s.stop()


if __name__ == "__main__":
    main()
