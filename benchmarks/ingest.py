"""Ingest throughput: `consentry serve` against a decode-only baseline, same run.

    .venv/bin/python benchmarks/ingest.py [--seconds 10] [--connections 32]
        [--unique-ids] [--dedupe-hours H]
    .venv/bin/python benchmarks/ingest.py --backend postgres [--replicas 2]
        [--pg-dsn postgresql://postgres@127.0.0.1:5432/test]

The second form compares SQLite with PostgreSQL and 1..N replicas instead
(benchmarks/ingest_replicas.py). The first:

(a) baseline: Starlette + msgspec decode of the same batches, answers 200;
(b) `consentry serve` with its durable defaults (synchronous=FULL, group commit),
    three destinations with different purposes, a realistic consent mix;
(c) both driven by wrk with a Lua script cycling through 100-event batches of
    ~600-byte Segment messages from several thousand people (most returning);
(d) prints events/s, p50/p99 ack latency, server CPU, ratio full/baseline; then
    single-message requests; then load at 50% of the measured peak; then checks
    that every acknowledged event has its decisions and outbox rows (no loss).
Before consentry starts, 10 s of fdatasync on the same disk alone: acks wait for
it (synchronous=FULL), so its stalls are a floor for every p99 printed here.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, WRITE_KEY, Proc, batches, free_port, wrk
from disk_fsync import probe, summary

CONFIG = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]

[[destinations]]
name = "ads"
type = "jsonl"
purposes = ["advertising"]

[[destinations]]
name = "crm"
type = "jsonl"
purposes = ["personalization", "analytics"]
"""


def local_runtime(prefix: str, extra_config: str = "") -> tuple[Any, Path]:
    """This benchmark's configuration as an in-process Runtime (no HTTP), in a
    new temporary directory; for the per-stage and memory benchmarks."""
    from collector import config as config_mod
    from collector.runtime import Runtime

    os.environ.setdefault("CONSENTRY_WRITE_KEY", "bench")
    os.environ.setdefault("CONSENTRY_MASTER_KEY", "A" * 43 + "=")
    work = Path(tempfile.mkdtemp(prefix=prefix))
    (work / "c.toml").write_text(CONFIG + extra_config)
    return Runtime(config_mod.load(work / "c.toml", data_dir=str(work / "data"))), work


def start_consentry(data_dir: Path, extra: list[str], extra_config: str = "") -> Proc:
    port = free_port()
    cfg = data_dir.parent / "bench.toml"
    cfg.write_text(CONFIG + extra_config)
    env = {
        **os.environ,
        "CONSENTRY_WRITE_KEY": WRITE_KEY,
        "CONSENTRY_MASTER_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    }
    cmd = [
        sys.executable,
        "-m",
        "collector.cli",
        "serve",
        "--config",
        str(cfg),
        "--data-dir",
        str(data_dir),
        "--port",
        str(port),
        *extra,
    ]
    return Proc(cmd, env, f"http://127.0.0.1:{port}", "/readyz")


def start_baseline() -> Proc:
    port = free_port()
    cmd = [sys.executable, str(ROOT / "benchmarks" / "baseline_server.py"), str(port)]
    return Proc(cmd, dict(os.environ), f"http://127.0.0.1:{port}", "/healthz")


def report(name: str, r: dict[str, float], per_request: int, cpu: float) -> None:
    print(
        f"{name:<34} {r['rps'] * per_request:>10,.0f} ev/s {r['rps']:>8,.0f} req/s"
        f"  p50 {r['p50_us'] / 1000:>6.1f} ms  p99 {r['p99_us'] / 1000:>7.1f} ms"
        f"  server CPU {cpu:>5.1f} s  errors {int(r['errors'])}"
    )


def compare_plan(args: argparse.Namespace) -> None:
    """consentry serve without a tracking plan, then with one on its source,
    alternating for `args.rounds` rounds; prints each run and the median cost."""
    import statistics

    plan_source = (
        '\n[[sources]]\nname = "default"\nwrite_key_env = "CONSENTRY_WRITE_KEY"\n'
        f'tracking_plan = "{args.plan.resolve()}"\n'
    )
    bodies = batches(400, 100, people=args.people)
    extra = ["--no-forward"] + (["--workers", str(args.workers)] if args.workers else [])
    results: dict[str, list[float]] = {"without plan": [], "with plan": []}
    for _ in range(args.rounds):
        for label, extra_config in (("without plan", ""), ("with plan", plan_source)):
            work = Path(tempfile.mkdtemp(prefix="bench-plan-"))
            server = start_consentry(work / "data", extra, extra_config)
            try:
                c0 = server.cpu_seconds()
                r = wrk(
                    server.url,
                    "/v1/batch",
                    bodies,
                    seconds=args.seconds,
                    connections=args.connections,
                )
                cpu = server.cpu_seconds() - c0
                report(f"consentry serve, {label}", r, 100, cpu)
                events = r["rps"] * 100 * args.seconds
                results[label].append(cpu / events * 1e6 if events else float("nan"))
                results[label + " ev/s"] = [*results.get(label + " ev/s", []), r["rps"] * 100]
            finally:
                server.stop()
                shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(results["without plan"])
    planned = statistics.median(results["with plan"])
    rate = statistics.median(results["with plan ev/s"]) / statistics.median(
        results["without plan ev/s"]
    )
    print(
        f"\nserver CPU per event (median of {args.rounds}): without plan {base:.1f} µs,"
        f" with plan {planned:.1f} µs: {planned - base:+.1f} µs per event;"
        f" events/s with/without {rate:.2f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument(
        "--workers", type=int, default=0, help="consentry serve --workers (0: its default)"
    )
    ap.add_argument(
        "--unique-ids",
        action="store_true",
        help="every request's messageIds new (wrk otherwise cycles through the same bodies)",
    )
    ap.add_argument(
        "--dedupe-hours",
        type=float,
        default=None,
        help="[ingest] dedupe_window_hours for the server (default: its own default)",
    )
    ap.add_argument(
        "--soak", type=int, default=0, help="then run N more seconds at 50%% and report RSS"
    )
    ap.add_argument(
        "--no-pii-scan",
        action="store_true",
        help="[privacy] pii_scan = false: the cost of the PII scan by difference (issue 14 §1)",
    )
    ap.add_argument(
        "--plan",
        type=Path,
        default=None,
        help="only compare consentry serve without and with this tracking plan on its"
        " source (interleaved rounds; issue 17)",
    )
    ap.add_argument("--rounds", type=int, default=2, help="with --plan: rounds of each")
    ap.add_argument(
        "--backend",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: only compare SQLite (one process) with PostgreSQL and 1..--replicas"
        " `consentry serve --workers 1` replicas on one database (issue 18; see"
        " benchmarks/ingest_replicas.py)",
    )
    ap.add_argument("--replicas", type=int, default=2, help="with --backend postgres: at most N")
    ap.add_argument(
        "--warmup",
        type=int,
        default=3,
        help="with --backend postgres: seconds of unmeasured load before each window",
    )
    ap.add_argument(
        "--pg-dsn",
        default=os.environ.get(
            "CONSENTRY_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        help="with --backend postgres: a database to connect to; the benchmark creates"
        " (and drops) its own beside it (default: $CONSENTRY_TEST_PG_DSN or the local test one)",
    )
    args = ap.parse_args()
    if args.backend == "postgres":
        from ingest_replicas import run

        sys.exit(0 if run(args, CONFIG) else 1)
    if args.plan is not None:
        compare_plan(args)
        return
    if args.unique_ids:
        os.environ["BENCH_UNIQUE_IDS"] = "1"
    extra_config = (
        f"\n[ingest]\ndedupe_window_hours = {args.dedupe_hours}\n"
        if args.dedupe_hours is not None
        else ""
    )
    if args.no_pii_scan:
        extra_config += "\n[privacy]\npii_scan = false\n"

    bodies = batches(400, 100, people=args.people)
    singles = [
        json.dumps(json.loads(b)["batch"][0]).encode()
        for b in batches(2000, 1, people=args.people, seed=9)
    ]
    avg = sum(len(b) for b in bodies) / len(bodies) / 100
    print(
        f"batches: 100 events, ~{avg:.0f} bytes/event, {args.people} people; wrk -c{args.connections}"
        f" -d{args.seconds}s\n"
    )

    base = start_baseline()
    try:
        c0 = base.cpu_seconds()
        rb = wrk(base.url, "/v1/batch", bodies, seconds=args.seconds, connections=args.connections)
        report("baseline (decode only), batches", rb, 100, base.cpu_seconds() - c0)
        if not args.skip_single:
            c0 = base.cpu_seconds()
            rbs = wrk(
                base.url, "/v1/track", singles, seconds=args.seconds, connections=args.connections
            )
            report("baseline (decode only), single", rbs, 1, base.cpu_seconds() - c0)
    finally:
        base.stop()

    work = Path(tempfile.mkdtemp(prefix="bench-consentry-"))
    # The floor for any p99 below: acks wait for fdatasync (synchronous=FULL).
    print(f"{'disk alone, fdatasync 64 KB x 10 s':<34} {summary(*probe(str(work), 10, 25))}")
    extra = ["--no-forward"] + (["--workers", str(args.workers)] if args.workers else [])
    full = start_consentry(work / "data", extra, extra_config)
    try:
        rss0 = full.rss_mb()
        c0 = full.cpu_seconds()
        rf = wrk(full.url, "/v1/batch", bodies, seconds=args.seconds, connections=args.connections)
        report("consentry serve, batches", rf, 100, full.cpu_seconds() - c0)
        print(f"{'ratio full/baseline (events/s)':<34} {rf['rps'] / rb['rps']:>10.2f}x")
        acked_batches = rf["requests"] - rf["status_errors"]
        half = max(1, int(rf["rps"] / 2))
        full.settle()
        c0 = full.cpu_seconds()
        rh = wrk(
            full.url,
            "/v1/batch",
            bodies,
            seconds=args.seconds,
            connections=args.connections,
            rate=half,
        )
        report(f"consentry serve, at 50% ({half} req/s)", rh, 100, full.cpu_seconds() - c0)
        acked_batches += rh["requests"] - rh["status_errors"]
        if not args.skip_single:
            full.settle()
            c0 = full.cpu_seconds()
            rfs = wrk(
                full.url, "/v1/track", singles, seconds=args.seconds, connections=args.connections
            )
            report("consentry serve, single", rfs, 1, full.cpu_seconds() - c0)
            print(f"{'ratio full/baseline (single req/s)':<34} {rfs['rps'] / rbs['rps']:>10.2f}x")
        print(f"RSS {rss0:.0f} MB -> {full.rss_mb():.0f} MB")
        if args.soak:
            full.settle()
            rss_start = full.rss_mb()
            rs = wrk(
                full.url,
                "/v1/batch",
                bodies,
                seconds=args.soak,
                connections=args.connections,
                rate=half,
            )
            acked_batches += rs["requests"] - rs["status_errors"]
            print(
                f"soak {args.soak} s at 50%: {rs['rps'] * 100:,.0f} ev/s, p99 {rs['p99_us'] / 1000:.1f} ms,"
                f" RSS {rss_start:.0f} MB -> {full.rss_mb():.0f} MB"
            )
    finally:
        full.stop()

    conn = sqlite3.connect(work / "data" / "consentry.db")
    # One decision row per message accepted (decisions = "all"); wrk repeats the
    # same bodies, so ids repeat and rows, not distinct ids, are counted. The
    # server may have acknowledged a few more than wrk saw before it stopped.
    decided = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    outbox = dict(
        conn.execute("SELECT destination, count(*) FROM outbox GROUP BY destination").fetchall()
    )
    expected = int(acked_batches) * 100 + (
        0 if args.skip_single else int(rfs["requests"] - rfs["status_errors"])
    )
    if not args.unique_ids and args.dedupe_hours != 0:
        # wrk repeats the same bodies and the dedupe window (on by default)
        # decides each messageId once: at most one row per distinct id is owed.
        distinct = len(bodies) * 100 + (0 if args.skip_single else len(singles))
        expected = min(expected, distinct)
    print(
        f"\nacknowledged events {expected:,}; with a recorded decision {decided:,}; outbox rows {outbox}"
    )
    print("no loss" if decided >= expected else "LOSS: fewer decided messages than acknowledged")
    conn.close()
    shutil.rmtree(work, ignore_errors=True)  # gigabytes after a soak


if __name__ == "__main__":
    time.sleep(0)
    main()
