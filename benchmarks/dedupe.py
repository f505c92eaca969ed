"""The dedupe window's cost per message, in process (CPU time, not wall time).

    .venv/bin/python benchmarks/dedupe.py [--messages 200000] [--batch 100]

Each design runs the same batches of new message ids inside write transactions
on a SQLite file (WAL, synchronous=NORMAL; fsync is excluded on purpose: it is
shared by every design and dominated by the disk): (a) no check, (b) the seen
set Consentry uses (63-bit BLAKE2b keys appended to a log, kept in memory
until merged in sorted runs into a generation table keyed by them,
collector.storage.sqlite.dedupe), (c) the earlier probe's design, a TEXT
column of random UUIDs with a UNIQUE index. Each writes one stand-in outbox row
per message so the figure is relative to real work. Prints µs of CPU per
message for each, with the table sizes reached.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from collector.pipeline.dedupe import dedupe_key
from collector.storage.sqlite.dedupe import SeenSet

PAYLOAD = b"x" * 600


def _conn(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, message_id TEXT, payload BLOB)")
    return conn


def run(design: str, batches: list[list[str]], work: Path) -> float:
    conn = _conn(work / f"{design}.db")
    seen = SeenSet(window_s=86400) if design == "seen set" else None
    if design == "uuid unique index":
        conn.execute("CREATE TABLE seen (message_id TEXT NOT NULL UNIQUE)")
    start = time.process_time()
    for ids in batches:
        conn.execute("BEGIN IMMEDIATE")
        if seen is not None:
            keys = [dedupe_key("src", m) for m in ids]
            seen.seen(conn, keys, now=0.0)
        elif design == "uuid unique index":
            conn.executemany(
                "INSERT OR IGNORE INTO seen (message_id) VALUES (?)", [(m,) for m in ids]
            )
        conn.executemany(
            "INSERT INTO outbox (message_id, payload) VALUES (?, ?)", [(m, PAYLOAD) for m in ids]
        )
        conn.execute("COMMIT")
    spent = time.process_time() - start
    conn.close()
    return spent


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    ids = [str(uuid.uuid4()) for _ in range(args.messages)]
    batches = [ids[i : i + args.batch] for i in range(0, len(ids), args.batch)]
    with tempfile.TemporaryDirectory(prefix="bench-dedupe-") as tmp:
        work = Path(tmp)
        results = {}
        for design in ("no check", "seen set", "uuid unique index", "no check", "seen set"):
            path = work / f"{design.replace(' ', '_')}-{len(results)}"
            path.mkdir()
            cpu = run(design, batches, path)
            results.setdefault(design, []).append(cpu)
            print(
                f"{design:<20} {cpu * 1e6 / args.messages:>7.2f} µs CPU/message ({args.messages:,} messages, batches of {args.batch})"
            )
        base = min(results["no check"])
        for design in ("seen set", "uuid unique index"):
            extra = min(results[design]) - base
            print(
                f"{design:<20} +{extra * 1e6 / args.messages:.2f} µs/message over no check ({min(results[design]) / base:.2f}x)"
            )


if __name__ == "__main__":
    main()
