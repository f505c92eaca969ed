"""Delivery into PostgreSQL from an outbox backlog, against a plain COPY and a
plain executemany of the same rows into the same table, same run.

    CONSENTRY_TEST_PG_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/delivery_postgres.py [--rows 1000000] [--batch 1000]

The forwarder path includes everything it does in production: reading due rows,
the consent re-check per row against the ledger state, adding the destination's
OneID pseudonym, staging COPY + INSERT ... ON CONFLICT DO NOTHING, deleting the
delivered outbox rows through the group-commit writer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid

import psycopg
from psycopg import sql
from rich.progress import Progress

from collector import config as config_mod
from collector.delivery.destinations.postgres import COLUMNS, row
from collector.runtime import Runtime


def payload(i: int) -> bytes:
    return json.dumps(
        {
            "type": "track",
            "messageId": str(uuid.UUID(int=i)),
            "event": "Product Added",
            "userId": f"ps1.k2.{i % 10_000:043d}",
            "anonymousId": f"ps1.k2.{i:043d}",
            "timestamp": "2026-11-20T10:15:30.123Z",
            "receivedAt": "2026-11-20T10:15:31.001+00:00",
            "properties": {
                "sku": "SKU-1",
                "price": 129.95,
                "quantity": 1,
                "currency": "EUR",
                "category": "Shoes",
            },
            "context": {
                "ip": "203.0.113.0",
                "locale": "de-DE",
                "page": {"path": "/p/trail-runner-2"},
                "consentry": {"jurisdiction": None, "domain": "dest:warehouse"},
            },
        },
        separators=(",", ":"),
    ).encode()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    dsn = os.environ.get("CONSENTRY_TEST_PG_DSN")
    if not dsn:
        sys.exit("set CONSENTRY_TEST_PG_DSN (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    table = f"bench_{uuid.uuid4().hex[:8]}"
    os.environ["CONSENTRY_MASTER_KEY"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    os.environ["BENCH_DSN"] = dsn
    data_dir = tempfile.mkdtemp(prefix="bench-delivery-")
    cfg = config_mod.parse(f"""
[storage]
data_dir = "{data_dir}"
[[destinations]]
name = "warehouse"
type = "postgres"
purposes = ["analytics"]
dsn_env = "BENCH_DSN"
table = "{table}"
batch_size = {args.batch}
""")
    rt = Runtime(cfg)
    payloads = [payload(i) for i in range(args.rows)]

    def fill(conn):  # type: ignore[no-untyped-def]
        conn.executemany(
            "INSERT INTO id_people (one_id, created_at) VALUES (?, 'x')",
            [(i,) for i in range(1, 10_001)],
        )
        conn.executemany(
            "INSERT INTO consent_state (one_id, key, granted, record_id, guardian, at) VALUES (?, 'analytics', 1, 1, 0, 'x')",
            [(i,) for i in range(1, 10_001)],
        )
        conn.executemany(
            "INSERT INTO outbox (destination, message_id, one_id, jurisdiction, payload, created_at, next_attempt_at)"
            " VALUES ('warehouse', ?, ?, 'GDPR', ?, 0, 0)",
            [(str(uuid.UUID(int=i)), i % 10_000 + 1, p) for i, p in enumerate(payloads)],
        )

    t = time.perf_counter()
    rt.writer.call(fill)
    print(
        f"backlog: {args.rows:,} outbox rows (~{sum(map(len, payloads)) / len(payloads):.0f} bytes each),"
        f" written in {time.perf_counter() - t:.1f} s; forwarder batch size {args.batch}"
    )

    async def forward() -> float:
        fwd = rt.make_forwarder()
        reader = fwd.open_reader()
        start = time.perf_counter()
        with Progress(transient=True) as progress:
            task = progress.add_task("forwarding", total=args.rows)
            done = 0
            while await fwd.drain_once("warehouse", reader):
                done += args.batch
                progress.update(task, completed=min(done, args.rows))
        took = time.perf_counter() - start
        await fwd.stop()
        return took

    took = asyncio.run(forward())
    with psycopg.connect(dsn) as pg:
        landed = pg.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        ).fetchone()[0]  # type: ignore[index]
    left = rt.writer.call(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0])
    rt.close()
    print(
        f"consentry forwarder: {landed / took:>10,.0f} rows/s  ({landed:,} rows in {took:.1f} s, outbox left {left})"
    )

    rows = [row(p) for p in payloads]
    cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
    with psycopg.connect(dsn) as pg:
        pg.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        pg.commit()
        t = time.perf_counter()
        with pg.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table), cols)
        ) as copy:
            for r in rows:
                copy.write_row(r)
        pg.commit()
        copy_rate = len(rows) / (time.perf_counter() - t)
        pg.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        pg.commit()
        subset = rows[: min(len(rows), 200_000)]
        t = time.perf_counter()
        with pg.cursor() as cur:
            cur.executemany(
                sql.SQL(
                    "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (message_id) DO NOTHING"
                ).format(
                    sql.Identifier(table),
                    cols,
                    sql.SQL(", ").join(sql.Placeholder() * len(COLUMNS)),
                ),
                subset,
            )
        pg.commit()
        many_rate = len(subset) / (time.perf_counter() - t)
        pg.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))
        pg.commit()
    print(f"plain COPY (same rows, same table):     {copy_rate:>10,.0f} rows/s")
    print(f"plain executemany ({len(subset):,} rows):      {many_rate:>10,.0f} rows/s")
    print(
        f"forwarder / COPY: {landed / took / copy_rate:.2f}x   forwarder / executemany: {landed / took / many_rate:.2f}x"
    )


if __name__ == "__main__":
    main()
