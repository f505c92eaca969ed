"""``AuditStore`` over a SQLite database (``uow.audit``): what `consentry
audit` and the console read. It only reads, so `consentry audit` opens it
read-only (``storage.open.open_uow(readonly=True)``) and an auditor can point
it at a copy."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.storage.ports import DecisionRecord, DeliveryOutcome, ErasureEntry, OptInCount
from collector.storage.sqlite import graph, ledger
from collector.storage.sqlite.decisions import decisions_for
from consent.ledger import ConsentRecord, VerifyResult, opened, verify
from identity.graph import Conflict, MergeRecord, OneId


class SqliteAuditStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def decisions(self, message_id: str) -> list[tuple[float, DecisionRecord]]:
        return decisions_for(self._conn, message_id)

    def records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        one_id: int | None = None,
        seqs: Sequence[int] | None = None,
    ) -> Iterator[ConsentRecord]:
        # Subjects and signals unsealed for the auditor; "<erased>" once erased.
        keys = ledger.SqliteSubjectKeys(self._conn)
        records = ledger.read_records(
            self._conn, since=since, until=until, one_id=one_id, seqs=seqs
        )
        return (opened(r, keys) for r in records)

    def one_id_of(self, pseudonym: str) -> int | None:
        return graph.one_id_of(self._conn, pseudonym)

    def verify(
        self, public_key: Ed25519PublicKey | None, *, anchor: tuple[int, bytes] | None
    ) -> VerifyResult:
        return verify(ledger.SqliteLedgerStore(self._conn), public_key, anchor=anchor)

    def outcome(self, message_id: str, destination: str) -> DeliveryOutcome | None:
        row = self._conn.execute(
            "SELECT dead, attempts, last_error, next_attempt_at FROM outbox"
            " WHERE message_id = ? AND destination = ? ORDER BY id DESC LIMIT 1",
            (message_id, destination),
        ).fetchone()
        if row is not None:
            dead, attempts, error, next_at = row
            if dead:
                return DeliveryOutcome("dead", None, attempts, error=error)
            return DeliveryOutcome("pending", next_at, attempts, error=error)
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivery_outcomes'"
        ).fetchone()
        if exists is None:  # nothing was forwarded yet by a version that records outcomes
            return None
        row = self._conn.execute(
            "SELECT outcome, at, batch, attempts, records, detail FROM delivery_outcomes"
            " WHERE message_id = ? AND destination = ? ORDER BY rowid DESC LIMIT 1",
            (message_id, destination),
        ).fetchone()
        if row is None:
            return None
        status, at, batch, attempts, records, detail = row
        seqs = tuple(int(s) for s in records.split(",")) if records else ()
        error = detail if status == "purged" else None
        return DeliveryOutcome(
            status,
            at,
            attempts,
            batch=batch,
            error=error,
            records=seqs,
            detail=None if status == "purged" else detail,
        )

    def chain_hashes(self, seqs: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        wanted = sorted(set(seqs))
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            rows = self._conn.execute(
                f"SELECT seq, hash FROM consent_ledger WHERE seq IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out.update((int(seq), bytes(digest)) for seq, digest in rows)
        return out

    def erasures(self, one_id: int | None = None) -> list[ErasureEntry]:
        sql = (
            "SELECT one_id, destination, status, outbox_rows_deleted, remote_rows_deleted,"
            " detail, at, done_at FROM erasures"
        )
        args: tuple[object, ...] = ()
        if one_id is not None:
            sql += " WHERE one_id = ?"
            args = (one_id,)
        return [ErasureEntry(*row) for row in self._conn.execute(sql + " ORDER BY id", args)]

    def merges(self, one_id: int) -> list[MergeRecord]:
        rows = self._conn.execute(
            "SELECT one_id, absorbed, cause_kind, cause, at FROM id_merges"
            " WHERE one_id = ? OR absorbed = ? ORDER BY id",
            (one_id, one_id),
        )
        return [MergeRecord(OneId(r[0]), OneId(r[1]), r[2], r[3], r[4]) for r in rows]

    def conflicts(self, one_id: int | None = None) -> list[Conflict]:
        sql = "SELECT kind, pseudonym, reason, other_one_id FROM id_conflicts"
        args: tuple[object, ...] = ()
        if one_id is not None:
            sql += " WHERE one_id = ? OR other_one_id = ?"
            args = (one_id, one_id)
        rows = self._conn.execute(sql + " ORDER BY id", args)
        return [Conflict(r[0], r[1], r[2], None if r[3] is None else OneId(r[3])) for r in rows]

    def opt_in_counts(self, since: datetime) -> list[OptInCount]:
        return opt_in_counts(self._conn, since)


_CHOICES = "('grant', 'deny', 'withdraw', 'update')"


def _first_seq_since(conn: sqlite3.Connection, since: str) -> int:
    """The first ledger seq received at or after `since` (ISO 8601 UTC), by
    binary search: records are appended in the order received, so the scan
    that follows reads the window and no older record."""
    row = conn.execute("SELECT min(seq), max(seq) FROM consent_ledger").fetchone()
    if row is None or row[0] is None:
        return 1
    lo, hi = int(row[0]), int(row[1]) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        got = conn.execute(
            "SELECT json_extract(CAST(body AS TEXT), '$.received_at') FROM consent_ledger"
            " WHERE seq >= ? ORDER BY seq LIMIT 1",
            (mid,),
        ).fetchone()
        if got is None or str(got[0]) >= since:
            hi = mid
        else:
            lo = mid + 1
    return lo


def opt_in_counts(conn: sqlite3.Connection, since: datetime) -> list[OptInCount]:
    """Per day received (UTC), law and purpose: consent choices (grant, deny,
    withdraw, update records; not merges or erasures) that named the purpose,
    and how many of them said yes; from the day `since` falls on. Aggregate
    only. Cost: a binary search for the window's first seq, then one scan of
    the records received since."""
    # Whole days: from midnight (UTC) of the day `since` falls on.
    start = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    # An hour of slack: writer processes may append a batch received a moment
    # before the one ahead of it in the ledger.
    first = _first_seq_since(conn, (start - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    rows = conn.execute(
        "SELECT substr(json_extract(b, '$.received_at'), 1, 10) AS day,"
        " json_extract(b, '$.jurisdiction') AS law, p.key, sum(p.value = 1), count(*)"
        " FROM (SELECT CAST(body AS TEXT) AS b FROM consent_ledger WHERE seq >= ?) AS l,"
        " json_each(l.b, '$.purposes') AS p"
        f" WHERE json_extract(b, '$.action') IN {_CHOICES} AND day >= ?"
        " GROUP BY day, law, p.key ORDER BY day, law, p.key",
        (first, start.date().isoformat()),
    )
    return [OptInCount(str(d), str(law), str(k), int(g), int(n)) for d, law, k, g, n in rows]
