"""Ledger verification speed on a ledger of 1 million records (records/s),
with the append rate that built it.

    .venv/bin/python benchmarks/consent_ledger_verify.py [--records 1000000] [--plain]

Subjects and signals are sealed under per-person keys as `consentry serve`
does (issue 14 §4); ``--plain`` appends without, for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.progress import Progress

from collector.storage.sqlite.connection import open_database
from consent.ledger import Ledger, verify


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--plain", action="store_true", help="no per-person sealing")
    args = ap.parse_args()
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as d:
        conn = open_database(Path(d) / "ledger.db")
        ledger = Ledger(
            conn.ledger_store,
            signer=key,
            checkpoint_every=1000,
            checkpoint_seconds=3600,
            state_cache_size=0,
            subject_keys=None if args.plain else conn.subject_keys,
        )
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        start = time.perf_counter()
        with Progress(transient=True) as progress:
            task = progress.add_task(f"appending {args.records:,} records", total=args.records)
            for base in range(0, args.records, 10_000):
                conn.execute("BEGIN")
                for i in range(base, min(args.records, base + 10_000)):
                    at = t0 + timedelta(seconds=i)
                    ledger.append(
                        one_id=i % 50_000 + 1,
                        subject=f"ps1.k1.{i % 50_000:043d}",
                        purposes={"analytics": i % 3 != 0, "advertising": i % 5 == 0},
                        jurisdiction=("GDPR", "PIPL", "CCPA")[i % 3],
                        method="banner_accept",
                        given_at=at,
                        received_at=at,
                        notice_id="cookie-banner",
                        notice_version="7",
                        signal='{"categoryPreferences":{"analytics":true}}',
                    )
                    if ledger.due(at):
                        ledger.checkpoint(at)
                conn.execute("COMMIT")
                progress.update(task, completed=min(args.records, base + 10_000))
        built = time.perf_counter() - start
        size = (Path(d) / "ledger.db").stat().st_size + (Path(d) / "ledger.db-wal").stat().st_size
        t = time.perf_counter()
        result = verify(conn.ledger_store, key.public_key())
        took = time.perf_counter() - t
        assert result.ok, result.problem
        print(f"ledger: {result.records:,} records, {size / 1e6:,.0f} MB, checkpoint every 1,000")
        print(
            f"append: {args.records / built:,.0f} records/s (hash chain + state table,"
            f" {'plain' if args.plain else 'subject and signal sealed'}, 10k per transaction)"
        )
        print(
            f"verify: {result.records / took:,.0f} records/s ({took:.1f} s; chain, canonical form, "
            f"{result.records // 1000:,} Ed25519 checkpoints)"
        )


if __name__ == "__main__":
    main()
