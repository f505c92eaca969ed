"""The consent ledger's tables on PostgreSQL: consent.ledger.LedgerStore and
LedgerReader (same tables and meaning as ``collector.storage.sqlite.ledger``).

Appends are serialized across replicas: ``head()`` takes the write lock
(``locks.WRITE_LOCK``, a ``pg_advisory_xact_lock``) before reading the head,
and holds it until the transaction commits, so no other replica can read the
same head and append a second record with the same seq.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from collector.storage.postgres.locks import take_write_lock
from consent.ledger import StateRow
from consent.state import ConsentState, PurposeState

Conn = psycopg.Connection[Any]

HEAD_SQL = "SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1"
_PUT_STATE = (
    "INSERT INTO consent_state (one_id, key, granted, record_id, guardian, at, scope, notice)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (one_id, key) DO UPDATE SET"
    " granted = excluded.granted, record_id = excluded.record_id,"
    " guardian = excluded.guardian, at = excluded.at, scope = excluded.scope,"
    " notice = excluded.notice"
)


class PostgresLedgerStore:
    """consent.ledger.LedgerStore and LedgerReader on one connection; runs in
    the caller's transaction (``with conn.transaction(): ...``)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    # -- LedgerStore -------------------------------------------------------
    def head(self) -> tuple[int, bytes] | None:
        """(seq, hash) of the last record; inside a transaction it takes the
        write lock first, so the head cannot move before the commit."""
        if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            take_write_lock(self.conn)
        row = self.conn.execute(HEAD_SQL).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def sealed(self) -> tuple[int, str] | None:
        row = self.conn.execute(
            "SELECT seq, signed_at FROM consent_checkpoints ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def bodies_after(self, seq: int) -> Iterable[bytes]:
        return [
            bytes(r[0])
            for r in self.conn.execute(
                "SELECT body FROM consent_ledger WHERE seq > %s ORDER BY seq", (seq,)
            )
        ]

    def state(self, one_id: int) -> ConsentState:
        return read_state(self.conn, one_id)

    def append(self, seq: int, body: bytes, digest: bytes) -> None:
        self.conn.execute(
            "INSERT INTO consent_ledger (seq, body, hash) VALUES (%s, %s, %s)", (seq, body, digest)
        )

    def put_state(self, one_id: int, rows: Sequence[StateRow]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(
                _PUT_STATE,
                [
                    (one_id, key, int(granted), seq, int(guardian), at, scope, notice)
                    for key, granted, seq, guardian, at, scope, notice in rows
                ],
            )

    def drop_state(self, one_id: int) -> None:
        self.conn.execute("DELETE FROM consent_state WHERE one_id = %s", (one_id,))

    def add_checkpoint(
        self, seq: int, digest: bytes, signature: bytes, public_key: bytes, signed_at: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO consent_checkpoints (seq, hash, signature, public_key, signed_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (seq) DO NOTHING",
            (seq, digest, signature, public_key, signed_at),
        )

    # -- LedgerReader ------------------------------------------------------
    def chain_rows(self) -> Iterable[tuple[int, object, object]]:
        return [
            (int(r[0]), bytes(r[1]), bytes(r[2]))
            for r in self.conn.execute("SELECT seq, body, hash FROM consent_ledger ORDER BY seq")
        ]

    def checkpoint_rows(self) -> Iterable[tuple[int, object, object, object, str]]:
        return [
            (int(r[0]), bytes(r[1]), bytes(r[2]), bytes(r[3]), str(r[4]))
            for r in self.conn.execute(
                "SELECT seq, hash, signature, public_key, signed_at FROM consent_checkpoints"
                " ORDER BY seq"
            )
        ]

    def hash_at(self, seq: int) -> object | None:
        row = self.conn.execute("SELECT hash FROM consent_ledger WHERE seq = %s", (seq,)).fetchone()
        return None if row is None else bytes(row[0])

    def key_holders(self) -> set[int]:
        return {int(r[0]) for r in self.conn.execute("SELECT one_id FROM consent_subject_keys")}


class PostgresSubjectKeys:
    """consent.shred.SubjectKeys in ``consent_subject_keys`` (caller's transaction)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def get(self, one_id: int) -> bytes | None:
        row = self.conn.execute(
            "SELECT key FROM consent_subject_keys WHERE one_id = %s", (one_id,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def create(self, one_id: int, key: bytes) -> None:
        self.conn.execute(
            "INSERT INTO consent_subject_keys (one_id, key) VALUES (%s, %s)", (one_id, key)
        )

    def destroy(self, one_ids: list[int]) -> int:
        cur = self.conn.execute(
            "DELETE FROM consent_subject_keys WHERE one_id = ANY(%s)", (list(one_ids),)
        )
        return cur.rowcount


def read_state(conn: Conn, one_id: int) -> ConsentState:
    """The effective state from any connection (a forwarder's)."""
    rows = conn.execute(
        "SELECT key, granted, record_id, guardian, scope, notice, at FROM consent_state"
        " WHERE one_id = %s",
        (one_id,),
    ).fetchall()
    return ConsentState(
        {
            str(r[0]): PurposeState(
                bool(r[1]),
                int(r[2]),
                bool(r[3]),
                frozenset(str(r[4]).split(",")) if r[4] else None,
                None if r[5] is None else str(r[5]),
                _epoch(str(r[6])),
            )
            for r in rows
        }
    )


def _epoch(at: str) -> float | None:
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
