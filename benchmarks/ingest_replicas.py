"""SQLite against PostgreSQL with 1..N `consentry serve` replicas, same run
(issue 18, Performance); called by `benchmarks/ingest.py --backend postgres`.

Every configuration gets a fresh store: SQLite in a new data directory, or a
new PostgreSQL database (``consentry_bench_<random>``, dropped afterwards)
migrated with `consentry db migrate`. A replica is one `consentry serve
--workers 1 --no-forward` process on its own port with its own data directory
holding a copy of the same keyring (master key and write key from the
environment), all replicas sharing the one database. wrk drives them with one
instance per replica, all at once, the connections and threads split evenly;
events/s is their sum and p50/p99 come from their merged latency
distributions. Each configuration first takes --warmup seconds of the same
load unmeasured (the first sight of each person creates a OneID; a server
that has been up a while knows most of them). Every request carries new
messageIds (a repeat within the dedupe window would be stored once, making
later requests cheaper).

CPU per 1000 acknowledged events, per component, over the measured window
(from wrk's start to its exit): each replica process (/proc/<pid>/stat), the
PostgreSQL backends serving the benchmark's database plus the server's shared
processes (WAL writer, checkpointer, ...; found by walking /proc), and wrk
(its rusage); "server" is replicas plus PostgreSQL, the figure to size
machines by. Backends of other databases on a shared server are reported
apart, as noise. PostgreSQL's WAL bytes (pg_current_wal_lsn before and after,
cluster-wide), commits and WAL fsyncs are read around the run including its
drain; what the database's active backends wait for (the advisory write lock,
the WAL flush) is sampled every 50 ms during the window. After each
configuration: every acknowledged event must have a recorded decision (no
loss).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from _common import WRITE_KEY, Proc, ServerExited, Wrk, batches, free_port, merged_percentile
from _pgwait import WaitSampler
from _procstat import PostgresCpu, cpu_seconds, machine_busy
from psycopg import sql

MASTER_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
PG_STORAGE = '\n[storage]\nbackend = "postgres"\n'


@dataclass
class Row:
    """One configuration's figures; ``unavailable`` says why it has none."""

    label: str
    replicas: int = 1
    unavailable: str | None = None
    load: float = 0.0
    events_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    acked: int = 0  # events acknowledged in the measured window
    warm_acked: int = 0  # ... in the warm-up before it
    errors: int = 0
    wall_s: float = 0.0
    # component -> CPU seconds over the window ("replica 1", ..., "postgres", "wrk")
    cpu: dict[str, float] = field(default_factory=dict)
    pg_others_cpu: float = 0.0
    machine_cpu: float = 0.0  # CPU seconds of the whole machine over the window
    stored: int = 0  # decisions recorded in all (warm-up, window, drain)
    stored_window: int = 0  # ... from the window's start (PostgreSQL rows)
    outbox: int = 0
    pg: dict[str, int] = field(default_factory=dict)  # _pg_counters' differences
    pg_span_s: float = 0.0  # seconds between the PostgreSQL readings (run and drain)
    waits: dict[str, float] = field(default_factory=dict)  # state -> mean active backends
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # (inserted, updated)
    db_growth: int = 0  # bytes the database grew by over the whole run (nothing delivered)

    def per_1000(self, component: str) -> float:
        return self.cpu[component] / self.acked * 1000 * 1000 if self.acked else float("nan")


def _env(dsn: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "CONSENTRY_WRITE_KEY": WRITE_KEY,
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
    }
    if dsn is not None:
        env["CONSENTRY_DATABASE_DSN"] = dsn
    return env


def _cli(args: list[str], env: dict[str, str]) -> str:
    """Run ``consentry ARGS``; its output, or RuntimeError with it."""
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"consentry {' '.join(args[:2])}: {done.stdout}{done.stderr}".strip())
    return done.stdout


def _serve(cfg: Path, data_dir: Path, env: dict[str, str]) -> Proc:
    port = free_port()
    cmd = [sys.executable, "-m", "collector.cli", "serve", "--config", str(cfg)]
    cmd += ["--data-dir", str(data_dir), "--port", str(port), "--workers", "1", "--no-forward"]
    return Proc(cmd, env, f"http://127.0.0.1:{port}", "/readyz")


def _wrk_all(
    replicas: list[Proc], bodies: list[bytes], args: argparse.Namespace, seconds: int, tag: str
) -> list[Wrk]:
    n = len(replicas)
    return [
        Wrk(
            r.url,
            "/v1/batch",
            bodies,
            seconds=seconds,
            connections=max(1, args.connections // n),
            threads=max(1, 2 // n),
            id_prefix=f"{tag}{i}-",
        )
        for i, r in enumerate(replicas)
    ]


def _acked(results: list[dict[str, Any]]) -> int:
    return sum(int(r["requests"] - r["status_errors"]) for r in results) * 100


def _warm_up(row: Row, replicas: list[Proc], bodies: list[bytes], args: argparse.Namespace) -> None:
    """Load, unmeasured, for ``args.warmup`` seconds, then wait for the
    replicas to go idle: the window then sees most people already known (the
    first sight of each creates a OneID) and warm caches, like a server that
    has been up for a while."""
    if args.warmup <= 0:
        return
    row.warm_acked = _acked(
        [w.result() for w in _wrk_all(replicas, bodies, args, args.warmup, "w")]
    )
    for r in replicas:
        r.settle()


def _drive(
    row: Row,
    replicas: list[Proc],
    bodies: list[bytes],
    args: argparse.Namespace,
    dbname: str | None,
) -> None:
    """One wrk per replica, all at once; fills the row's rate, latency and CPU."""
    before = [cpu_seconds(r.proc.pid) or 0.0 for r in replicas]
    pg = PostgresCpu(dbname) if dbname else None
    busy0, _ = machine_busy()
    started = time.monotonic()
    runs = _wrk_all(replicas, bodies, args, args.seconds, "r")
    # Replica CPU read as soon as each wrk is done, before the drain.
    results = []
    for i, run in enumerate(runs):
        results.append(run.result())
        row.cpu[f"replica {i + 1}"] = (cpu_seconds(replicas[i].proc.pid) or 0.0) - before[i]
    row.wall_s = time.monotonic() - started
    row.machine_cpu = machine_busy()[0] - busy0
    if pg is not None:
        used = pg.delta()
        row.cpu["postgres"] = used["ours"] + used["shared"]
        row.pg_others_cpu = used["others"]
    row.cpu["wrk"] = sum(r["cpu_s"] for r in results)
    row.acked = _acked(results)
    row.errors = sum(int(r["errors"]) for r in results)
    row.events_s = sum(r["rps"] for r in results) * 100
    row.p50_ms = merged_percentile(results, 50) / 1000
    row.p99_ms = merged_percentile(results, 99) / 1000


def sqlite_row(args: argparse.Namespace, config: str, bodies: list[bytes]) -> Row:
    row = Row("sqlite, 1 process", load=os.getloadavg()[0])
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    try:
        (work / "c.toml").write_text(config)
        server = _serve(work / "c.toml", work / "data", _env(None))
        try:
            _warm_up(row, [server], bodies, args)
            _drive(row, [server], bodies, args, None)
            server.settle()
        finally:
            server.stop()
        conn = sqlite3.connect(work / "data" / "consentry.db")
        row.stored = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
        row.outbox = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
        conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return row


COUNTERS = ("wal", "commits", "wal_syncs", "fetched", "inserted", "updated", "deleted")


def _pg_counters(conn: psycopg.Connection[Any], dbname: str) -> dict[str, int]:
    """The WAL position in bytes and the server's WAL fsyncs, and the commits
    and rows fetched/inserted/updated/deleted in ``dbname`` (``COUNTERS``)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, d.xact_commit,"
        " (SELECT wal_sync FROM pg_stat_wal), d.tup_fetched, d.tup_inserted, d.tup_updated,"
        " d.tup_deleted FROM pg_stat_database d WHERE d.datname = %s",
        (dbname,),
    ).fetchone()
    assert row is not None
    return {k: int(v) for k, v in zip(COUNTERS, row, strict=True)}


def _table_rows(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, int]]:
    """table -> (rows inserted, rows updated) since the database was made."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    found = conn.execute(
        "SELECT relname, n_tup_ins, n_tup_upd FROM pg_stat_user_tables"
        " WHERE n_tup_ins + n_tup_upd > 0 ORDER BY n_tup_ins + n_tup_upd DESC"
    ).fetchall()
    return {str(name): (int(ins), int(upd)) for name, ins, upd in found}


def _db_size(conn: psycopg.Connection[Any]) -> int:
    found = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return int(found[0]) if found else 0


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    found = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    ).fetchone()
    return int(found[0]) if found else 0


def postgres_row(args: argparse.Namespace, config: str, bodies: list[bytes], replicas: int) -> Row:
    """``replicas`` serve processes on one new database; dropped afterwards."""
    label = f"postgres, {replicas} replica{'s' if replicas > 1 else ''}"
    row = Row(label, replicas=replicas, load=os.getloadavg()[0])
    dbname = f"consentry_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(args.pg_dsn, autocommit=True)
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    dsn = psycopg.conninfo.make_conninfo(args.pg_dsn, dbname=dbname)
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    servers: list[Proc] = []
    try:
        env = _env(dsn)
        cfg = work / "c.toml"
        cfg.write_text(config + PG_STORAGE)
        dirs = [work / f"replica{i + 1}" for i in range(replicas)]
        _cli(["db", "migrate", "--config", str(cfg), "--data-dir", str(dirs[0])], env)
        _cli(["keys", "init", "--config", str(cfg), "--data-dir", str(dirs[0])], env)
        for d in dirs[1:]:
            d.mkdir(mode=0o700)
            shutil.copy2(dirs[0] / "keyring.json", d / "keyring.json")
        try:
            for d in dirs:
                servers.append(_serve(cfg, d, env))
        except ServerExited as exc:
            row.unavailable = (
                exc.output.strip().splitlines()[-1] if exc.output.strip() else str(exc)
            )
            return row
        with psycopg.connect(dsn, autocommit=True) as conn:
            size0 = _db_size(conn)
        _warm_up(row, servers, bodies, args)
        with psycopg.connect(dsn, autocommit=True) as conn:
            stored0 = _count(conn, "decisions")
            before = _pg_counters(conn, dbname)
            t0 = time.monotonic()
            sampler = WaitSampler(dsn, dbname)
            try:
                _drive(row, servers, bodies, args, dbname)
            finally:
                sampler.stop()
            row.waits = sampler.summary()
            for s in servers:
                s.settle()
            time.sleep(1.0)  # cumulative statistics are flushed about once a second
            after = _pg_counters(conn, dbname)
            row.pg = {k: after[k] - before[k] for k in COUNTERS}
            row.pg_span_s = time.monotonic() - t0
            row.stored = _count(conn, "decisions")
            row.stored_window = row.stored - stored0
            row.tables = _table_rows(conn)
            row.db_growth = _db_size(conn) - size0
            row.outbox = _count(conn, "outbox")
    finally:
        for s in servers:
            s.stop()
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
        )
        admin.close()
        shutil.rmtree(work, ignore_errors=True)
    return row


def print_rows(rows: list[Row]) -> None:
    base = rows[0]
    print(
        f"\n{'configuration':<22} {'load':>5} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7}"
        f"  {'CPU ms per 1000 events: replicas (each) | postgres | server | wrk':<56} {'vs sqlite':>9}"
    )
    for row in rows:
        head = f"{row.label:<22} {row.load:>5.2f}"
        if row.unavailable:
            print(f"{head} not available: {row.unavailable}")
            continue
        each = [row.per_1000(f"replica {i + 1}") for i in range(row.replicas)]
        replicas = " + ".join(f"{x:.0f}" for x in each)
        if row.replicas > 1:
            replicas += f" = {sum(each):.0f}"
        pg = row.per_1000("postgres") if "postgres" in row.cpu else 0.0
        server = sum(each) + pg
        pg_text = f"{pg:.0f}" if "postgres" in row.cpu else "-"
        cpu = f"{replicas} | {pg_text} | {server:.0f} | {row.per_1000('wrk'):.0f}"
        print(
            f"{head} {row.events_s:>9,.0f} {row.p50_ms:>7.1f} {row.p99_ms:>7.1f}"
            f"  {cpu:<56} {row.events_s / base.events_s:>8.2f}x"
        )
    measured = [r for r in rows if not r.unavailable]
    print(
        f"\ncores busy over each window (CPU s / wall s), of {os.cpu_count()}; the rest of"
        " the machine is everything else running on it:"
    )
    for row in measured:
        parts = ", ".join(f"{k} {v / row.wall_s:.2f}" for k, v in row.cpu.items())
        ours = sum(row.cpu.values())
        print(
            f"  {row.label:<22} {ours / row.wall_s:.2f} ({parts});"
            f" rest of the machine {(row.machine_cpu - ours) / row.wall_s:.2f}"
        )
    pg_rows = [r for r in measured if r.pg]
    if pg_rows:
        print(
            "\nPostgreSQL over each run and its drain (WAL position and fsyncs are"
            " server-wide; commits count read-only transactions too):"
        )
        for row in pg_rows:
            span, stats = row.pg_span_s, row.pg
            events = max(1, row.stored_window)
            print(
                f"  {row.label:<22} WAL {stats['wal'] / events:,.0f} bytes/event"
                f" ({stats['wal'] / span / 1e6:.1f} MB/s over {span:.0f} s);"
                f" {stats['wal_syncs']:,} WAL fsyncs ({stats['wal_syncs'] / span:.0f}/s,"
                f" {events / max(1, stats['wal_syncs']):.0f} events each); {stats['commits']:,} commits;"
                f" other databases' backends {row.pg_others_cpu:.2f} CPU s"
            )
            print(
                f"  {'':<22} rows per event: fetched {stats['fetched'] / events:.1f},"
                f" inserted {stats['inserted'] / events:.1f}, updated {stats['updated'] / events:.2f},"
                f" deleted {stats['deleted'] / events:.2f}"
            )
            per_table = ", ".join(
                f"{name} +{ins / max(1, row.stored):.2f}"
                + (f" ~{upd / max(1, row.stored):.2f}" if upd else "")
                for name, (ins, upd) in list(row.tables.items())[:8]
            )
            print(f"  {'':<22} by table, whole run (+inserted ~updated per event): {per_table}")
            print(
                f"  {'':<22} database size, whole run: +{row.db_growth / max(1, row.stored):,.0f}"
                " bytes/event (outbox rows undelivered: --no-forward)"
            )
            waits = ", ".join(f"{k} {v:.2f}" for k, v in row.waits.items()) or "none seen"
            print(f"  {'':<22} backends by state (mean over the window): {waits}")
    singles = [r for r in measured if r.label.startswith("postgres")]
    if len(singles) > 1:
        print(
            "\nscaling, postgres: "
            + ", ".join(
                f"{r.replicas} replicas {r.events_s / singles[0].events_s:.2f}x"
                for r in singles[1:]
            )
            + " of 1 replica"
        )
    print("\nloss check (decisions recorded per acknowledged event):")
    for row in measured:
        acked = row.acked + row.warm_acked
        verdict = "no loss" if row.stored >= acked else "LOSS"
        print(
            f"  {row.label:<22} acknowledged {acked:,}, decided {row.stored:,},"
            f" outbox rows {row.outbox:,}, errors {row.errors}: {verdict}"
        )


def run(args: argparse.Namespace, config: str) -> bool:
    """SQLite, then PostgreSQL with 1..``args.replicas`` replicas; prints the
    table; False when an acknowledged event was lost."""
    os.environ["BENCH_UNIQUE_IDS"] = "1"
    bodies = batches(400, 100, people=args.people)
    print(
        f"100-event batches, {args.people} people, new messageIds per request;"
        f" wrk -c{args.connections} -t2 -d{args.seconds}s split over the replicas"
        f" after {args.warmup} s of unmeasured warm-up;"
        f" serve --workers 1 --no-forward per replica; {os.cpu_count()} cores"
    )
    rows = [sqlite_row(args, config, bodies)]
    for n in range(1, args.replicas + 1):
        rows.append(postgres_row(args, config, bodies, n))
    print_rows(rows)
    return all(r.stored >= r.acked + r.warm_acked for r in rows if not r.unavailable)
