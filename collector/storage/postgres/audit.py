"""``AuditStore`` over PostgreSQL (``uow.audit``): what `consentry audit` and
the console read when ``[storage] backend = "postgres"``. It only reads, so
`consentry audit` opens it read-only (``storage.open.open_uow(readonly=True)``)
and an auditor may use a role or a standby that cannot write; results are
those of the SQLite AuditStore."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.storage.ports import (
    DecisionRecord,
    DeliveryOutcome,
    ErasureEntry,
    OptInCount,
    decode_decisions,
)
from collector.storage.postgres.ledger import PostgresLedgerStore, PostgresSubjectKeys
from consent.ledger import ConsentRecord, VerifyResult, decode, opened, verify
from identity.graph import Conflict, MergeRecord, OneId


class PostgresAuditStore:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def decisions(self, message_id: str) -> list[tuple[float, DecisionRecord]]:
        rows = self._conn.execute(
            "SELECT d.at, b.body FROM decisions d JOIN decision_bodies b ON b.id = d.body_id"
            " WHERE d.message_id = %s ORDER BY d.ctid",
            (message_id,),
        )
        return [(float(at), rec) for at, body in rows for rec in decode_decisions(bytes(body))]

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        one_id: int | None = None,
        seqs: Sequence[int] | None = None,
    ) -> Iterator[ConsentRecord]:
        keys = PostgresSubjectKeys(self._conn)
        if seqs is not None:
            rows = self._conn.execute(
                "SELECT body FROM consent_ledger WHERE seq = ANY(%s) ORDER BY seq", (list(seqs),)
            ).fetchall()
        else:
            rows = self._conn.execute("SELECT body FROM consent_ledger ORDER BY seq").fetchall()
        for (body,) in rows:
            record = decode(bytes(body))
            if seqs is None and (
                (since and record.received_at < since)
                or (until and record.received_at > until)
                or (one_id is not None and record.one_id != one_id)
            ):
                continue
            yield opened(record, keys)

    def one_id_of(self, pseudonym: str) -> int | None:
        row = self._conn.execute(
            "SELECT one_id FROM id_links WHERE pseudonym = %s", (pseudonym,)
        ).fetchone()
        return None if row is None else int(row[0])

    def verify(
        self, public_key: Ed25519PublicKey | None, *, anchor: tuple[int, bytes] | None
    ) -> VerifyResult:
        return verify(PostgresLedgerStore(self._conn), public_key, anchor=anchor)

    def outcome(self, message_id: str, destination: str) -> DeliveryOutcome | None:
        row = self._conn.execute(
            "SELECT dead, attempts, last_error, next_attempt_at FROM outbox"
            " WHERE message_id = %s AND destination = %s ORDER BY id DESC LIMIT 1",
            (message_id, destination),
        ).fetchone()
        if row is not None:
            dead, attempts, error, next_at = row
            if dead:
                return DeliveryOutcome("dead", None, attempts, error=error)
            return DeliveryOutcome("pending", next_at, attempts, error=error)
        row = self._conn.execute(
            "SELECT outcome, at, batch, attempts, records, detail FROM delivery_outcomes"
            " WHERE message_id = %s AND destination = %s ORDER BY ctid DESC LIMIT 1",
            (message_id, destination),
        ).fetchone()
        if row is None:
            return None
        status, at, batch, attempts, records, detail = row
        purged = status == "purged"
        return DeliveryOutcome(
            status,
            at,
            attempts,
            batch=batch,
            error=detail if purged else None,
            records=tuple(int(s) for s in records.split(",")) if records else (),
            detail=None if purged else detail,
        )

    def chain_hashes(self, seqs: Sequence[int]) -> dict[int, bytes]:
        rows = self._conn.execute(
            "SELECT seq, hash FROM consent_ledger WHERE seq = ANY(%s)", (sorted(set(seqs)),)
        )
        return {int(seq): bytes(digest) for seq, digest in rows}

    def erasures(self, one_id: int | None = None) -> list[ErasureEntry]:
        sql = (
            "SELECT one_id, destination, status, outbox_rows_deleted, remote_rows_deleted,"
            " detail, at, done_at FROM erasures"
        )
        args: tuple[object, ...] = ()
        if one_id is not None:
            sql += " WHERE one_id = %s"
            args = (one_id,)
        return [ErasureEntry(*row) for row in self._conn.execute(sql + " ORDER BY id", args)]

    def merges(self, one_id: int) -> list[MergeRecord]:
        rows = self._conn.execute(
            "SELECT one_id, absorbed, cause_kind, cause, at FROM id_merges"
            " WHERE one_id = %s OR absorbed = %s ORDER BY id",
            (one_id, one_id),
        )
        return [MergeRecord(OneId(r[0]), OneId(r[1]), r[2], r[3], r[4]) for r in rows]

    def conflicts(self, one_id: int | None = None) -> list[Conflict]:
        sql = "SELECT kind, pseudonym, reason, other_one_id FROM id_conflicts"
        args: tuple[object, ...] = ()
        if one_id is not None:
            sql += " WHERE one_id = %s OR other_one_id = %s"
            args = (one_id, one_id)
        rows = self._conn.execute(sql + " ORDER BY id", args)
        return [Conflict(r[0], r[1], r[2], None if r[3] is None else OneId(r[3])) for r in rows]

    def opt_in_counts(self, since: datetime) -> list[OptInCount]:
        return opt_in_counts(self._conn, since)


def _received(conn: psycopg.Connection[Any], seq: int) -> str | None:
    row = conn.execute(
        "SELECT convert_from(body, 'UTF8')::jsonb ->> 'received_at' FROM consent_ledger"
        " WHERE seq >= %s ORDER BY seq LIMIT 1",
        (seq,),
    ).fetchone()
    return None if row is None else str(row[0])


def opt_in_counts(conn: psycopg.Connection[Any], since: datetime) -> list[OptInCount]:
    """As the SQLite store's: per day, law and purpose, the consent choices
    received from `since` on and how many said yes (binary search for the
    window's first seq, then one aggregate over it)."""
    # Whole days: from midnight (UTC) of the day `since` falls on.
    start = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    floor = (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")
    row = conn.execute("SELECT min(seq), max(seq) FROM consent_ledger").fetchone()
    if row is None or row[0] is None:
        return []
    lo, hi = int(row[0]), int(row[1]) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        got = _received(conn, mid)
        if got is None or got >= floor:
            hi = mid
        else:
            lo = mid + 1
    rows = conn.execute(
        "SELECT substr(l.b ->> 'received_at', 1, 10) AS day, l.b ->> 'jurisdiction' AS law,"
        " p.key, count(*) FILTER (WHERE p.value = 'true'::jsonb), count(*)"
        " FROM (SELECT convert_from(body, 'UTF8')::jsonb AS b FROM consent_ledger"
        "       WHERE seq >= %s) AS l,"
        " jsonb_each(l.b -> 'purposes') AS p"
        " WHERE l.b ->> 'action' IN ('grant', 'deny', 'withdraw', 'update')"
        " AND substr(l.b ->> 'received_at', 1, 10) >= %s"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        (lo, start.date().isoformat()),
    )
    return [OptInCount(str(d), str(law), str(k), int(g), int(n)) for d, law, k, g, n in rows]
