"""Ledger append rate with a signed checkpoint at every commit (issue 14 §6)
against the earlier policy (every 1,000 records or 10 s), in one sitting,
interleaved, for commits of 1, 10 and 100 records; "every commit" also
appends each checkpoint to a witness file, as the collector does.

    .venv/bin/python benchmarks/ledger_checkpoints.py [--seconds 1.0] [--rounds 3]

Prints records/s per policy and commit size (median of the rounds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector.audit.witness import FileWitness
from collector.storage.sqlite.connection import open_database
from consent.ledger import Ledger

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def run(directory: Path, *, per_commit: int, every_commit: bool, seconds: float) -> float:
    """Append for about ``seconds``; returns records/s."""
    key = Ed25519PrivateKey.generate()
    path = directory / f"l-{per_commit}-{every_commit}-{time.monotonic_ns()}.db"
    conn = open_database(path)
    conn.execute("PRAGMA synchronous=NORMAL")
    every = 1 if every_commit else 1000
    ledger = Ledger(
        conn.ledger_store,
        signer=key,
        checkpoint_every=every,
        checkpoint_seconds=10.0,
        state_cache_size=0,
        subject_keys=conn.subject_keys,
    )
    witness = FileWitness(path.with_suffix(".witness")) if every_commit else None
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        sealed = []
        for _ in range(per_commit):
            at = T0 + timedelta(seconds=n)
            ledger.append(
                one_id=n % 50_000 + 1,
                subject=f"ps1.k1.{n % 50_000:043d}",
                purposes={"analytics": n % 3 != 0, "advertising": n % 5 == 0},
                jurisdiction="GDPR",
                method="banner_accept",
                given_at=at,
                received_at=at,
                notice_id="cookie-banner",
                notice_version="7",
            )
            n += 1
        if ledger.due(at):
            cp = ledger.checkpoint(at)
            if cp is not None:
                sealed.append(cp)
        conn.execute("COMMIT")
        if witness is not None:
            witness.append(sealed)
    took = time.perf_counter() - start
    conn.close()
    if witness is not None:
        witness.close()
    return n / took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ledger-cp-") as d:
        for size in (1, 10, 100):
            before: list[float] = []
            after: list[float] = []
            for _ in range(args.rounds):
                before.append(
                    run(Path(d), per_commit=size, every_commit=False, seconds=args.seconds)
                )
                after.append(run(Path(d), per_commit=size, every_commit=True, seconds=args.seconds))
            b, a = statistics.median(before), statistics.median(after)
            print(
                f"{size:>4} records/commit: every 1,000 records {b:>9,.0f} records/s;"
                f" every commit + witness {a:>9,.0f} records/s ({a / b - 1:+.0%})"
            )


if __name__ == "__main__":
    main()
