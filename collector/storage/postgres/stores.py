"""Decisions, quarantine, erasures, webhook delivery ids and the dedupe window
on PostgreSQL: the ``collector.storage.ports`` stores the pipeline writes in
the writer's transaction (same tables and meaning as the SQLite adapters).

The dedupe window is one row per messageId key with the time it was seen;
``INSERT ... ON CONFLICT DO UPDATE ... WHERE seen_at < now - window`` both
checks and records, so two replicas receiving the same messageId at once
store it once: the second insert waits for the first's row lock and then
finds it (no in-memory copy that could go stale across replicas).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg

from collector.storage.ports import QuarantinedRow, SealFn, decode_decisions
from consent.ledger import decode

Conn = psycopg.Connection[Any]
DELIVERY_KEEP_SECONDS = 30 * 86400.0  # as collector.storage.sqlite.deliveries


class PostgresDecisionStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def body_id(self, body: bytes) -> int:
        digest = hashlib.sha256(body).digest()
        row = self.conn.execute(
            "INSERT INTO decision_bodies (digest, body) VALUES (%s, %s)"
            " ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest RETURNING id",
            (digest, body),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def insert(self, rows: Sequence[tuple[str, float, int]]) -> None:
        """All rows in one statement (arrays per column): one round trip under
        the write lock, not one per row."""
        if not rows:
            return
        message_ids, ats, body_ids = zip(*rows, strict=True)
        self.conn.execute(
            "INSERT INTO decisions (message_id, at, body_id)"
            " SELECT * FROM unnest(%b::text[], %b::float8[], %b::bigint[])",
            (list(message_ids), list(ats), list(body_ids)),
        )

    def forget_people(self, one_ids: Sequence[int]) -> int:
        """Delete decisions citing any ledger record of these OneIDs (GDPR Art. 17)."""
        people = set(one_ids)
        seqs = {
            int(r[0])
            for r in self.conn.execute("SELECT seq, body FROM consent_ledger")
            if decode(bytes(r[1])).one_id in people
        }
        if not seqs:
            return 0
        bodies = [
            int(r[0])
            for r in self.conn.execute("SELECT id, body FROM decision_bodies")
            if any(seqs.intersection(d.record_ids) for d in decode_decisions(bytes(r[1])))
        ]
        n = self.conn.execute("DELETE FROM decisions WHERE body_id = ANY(%s)", (bodies,)).rowcount
        self.conn.execute("DELETE FROM decision_bodies WHERE id = ANY(%s)", (bodies,))
        return n


class PostgresQuarantineStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def add(
        self,
        *,
        received_at: float,
        expires_at: float,
        source: str,
        reason: str,
        path: str,
        seal: SealFn,
    ) -> int:
        row = self.conn.execute(
            "INSERT INTO quarantine (received_at, expires_at, source, reason, path, sealed)"
            " VALUES (%s, %s, %s, %s, %s, '') RETURNING id",
            (received_at, expires_at, source, reason, path),
        ).fetchone()
        assert row is not None
        row_id = int(row[0])
        self.conn.execute("UPDATE quarantine SET sealed = %s WHERE id = %s", (seal(row_id), row_id))
        return row_id

    def expire(self, now: float) -> int:
        return self.conn.execute("DELETE FROM quarantine WHERE expires_at < %s", (now,)).rowcount

    def rows(
        self, *, source: str | None = None, ids: Sequence[int] = (), limit: int = 10_000
    ) -> list[QuarantinedRow]:
        sql = "SELECT id, received_at, expires_at, source, reason, path, sealed FROM quarantine"
        where: list[str] = []
        args: list[object] = []
        if source is not None:
            where.append("source = %s")
            args.append(source)
        if ids:
            where.append("id = ANY(%s)")
            args.append(list(ids))
        if where:
            sql += " WHERE " + " AND ".join(where)
        args.append(limit)
        return [
            QuarantinedRow(
                int(r[0]), float(r[1]), float(r[2]), str(r[3]), str(r[4]), str(r[5]), bytes(r[6])
            )
            for r in self.conn.execute(sql + " ORDER BY id LIMIT %s", args)
        ]

    def delete(self, ids: Sequence[int]) -> int:
        if not ids:
            return 0
        return self.conn.execute("DELETE FROM quarantine WHERE id = ANY(%s)", (list(ids),)).rowcount


class PostgresErasureStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def add(
        self, *, one_id: int, one_ids: Sequence[int], destination: str, deleted: int, at: float
    ) -> None:
        self.conn.execute(
            "INSERT INTO erasures (one_id, one_ids, destination, outbox_rows_deleted, status, at)"
            " VALUES (%s, %s, %s, %s, 'pending', %s)",
            (one_id, ",".join(map(str, one_ids)), destination, deleted, at),
        )

    def status(self, one_ids: Sequence[int]) -> list[dict[str, object]]:
        if not one_ids:
            return []
        rows = self.conn.execute(
            "SELECT destination, status, outbox_rows_deleted, remote_rows_deleted, detail"
            " FROM erasures WHERE one_id = ANY(%s) ORDER BY id",
            (list(one_ids),),
        )
        keys = ("destination", "status", "outbox_rows_deleted", "remote_rows_deleted", "detail")
        return [dict(zip(keys, r, strict=True)) for r in rows]


class PostgresDeliveryStore:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def claim(self, source: str, delivery_id: str, at: float) -> bool:
        cur = self.conn.execute(
            "INSERT INTO webhook_deliveries (source, delivery_id, received_at)"
            " VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (source, delivery_id, at),
        )
        return cur.rowcount == 1

    def prune(self, now: float) -> int:
        return self.conn.execute(
            "DELETE FROM webhook_deliveries WHERE received_at < %s",
            (now - DELIVERY_KEEP_SECONDS,),
        ).rowcount


class PostgresDedupeStore:
    """collector.storage.ports.DedupeStore: exact across replicas and restarts."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def seen(self, keys: Sequence[int], *, now: float, window_s: float) -> set[int]:
        if not keys:
            return set()
        fresh = self.conn.execute(
            "INSERT INTO dedupe_seen (k, seen_at) SELECT unnest(%s::bigint[]), %s"
            " ON CONFLICT (k) DO UPDATE SET seen_at = excluded.seen_at"
            " WHERE dedupe_seen.seen_at < %s RETURNING k",
            (list(keys), now, now - window_s),
        ).fetchall()
        new = {int(r[0]) for r in fresh}
        return {k for k in keys if k not in new}

    def prune(self, now: float, window_s: float) -> int:
        """Forget keys older than the window; returns how many."""
        return self.conn.execute(
            "DELETE FROM dedupe_seen WHERE seen_at < %s", (now - window_s,)
        ).rowcount

    def discard(self) -> None:
        """Nothing is cached in memory: a rolled-back transaction left nothing."""
