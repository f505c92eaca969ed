"""The consent ledger's tables: consent.ledger.LedgerStore and LedgerReader over SQLite.

``consent_ledger`` holds the chained records (seq, canonical body, hash),
``consent_checkpoints`` the signed checkpoints, ``consent_state`` the latest
record per OneID and state key (derived; rebuilt from the ledger if lost),
``consent_subject_keys`` the per-person keys that seal subjects (consent.shred).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

from consent.ledger import ConsentRecord, StateRow, decode
from consent.state import ConsentState, PurposeState

_PUT_STATE = (
    "INSERT OR REPLACE INTO consent_state"
    " (one_id, key, granted, record_id, guardian, at, scope, notice)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# The head (seq, hash), for a caller that reads several heads in one statement.
HEAD_SQL = "SELECT seq, hash FROM consent_ledger ORDER BY seq DESC LIMIT 1"


class SqliteLedgerStore:
    """consent.ledger.LedgerStore and LedgerReader on one connection; runs in
    the caller's transaction (or autocommits each statement without one)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- LedgerStore -------------------------------------------------------
    def head(self) -> tuple[int, bytes] | None:
        row = self.conn.execute(HEAD_SQL).fetchone()
        return None if row is None else (row[0], row[1])

    def sealed(self) -> tuple[int, str] | None:
        row = self.conn.execute(
            "SELECT seq, signed_at FROM consent_checkpoints ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def bodies_after(self, seq: int) -> Iterable[bytes]:
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT body FROM consent_ledger WHERE seq > ? ORDER BY seq", (seq,)
            )
        ]

    def state(self, one_id: int) -> ConsentState:
        return read_state(self.conn, one_id)

    def append(self, seq: int, body: bytes, digest: bytes) -> None:
        self.conn.execute(
            "INSERT INTO consent_ledger (seq, body, hash) VALUES (?, ?, ?)", (seq, body, digest)
        )

    def put_state(self, one_id: int, rows: Sequence[StateRow]) -> None:
        self.conn.executemany(
            _PUT_STATE,
            [
                (one_id, key, int(granted), seq, int(guardian), at, scope, notice)
                for key, granted, seq, guardian, at, scope, notice in rows
            ],
        )

    def drop_state(self, one_id: int) -> None:
        self.conn.execute("DELETE FROM consent_state WHERE one_id = ?", (one_id,))

    def add_checkpoint(
        self, seq: int, digest: bytes, signature: bytes, public_key: bytes, signed_at: str
    ) -> None:
        self.conn.execute(
            "INSERT INTO consent_checkpoints (seq, hash, signature, public_key, signed_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (seq, digest, signature, public_key, signed_at),
        )

    # -- LedgerReader ------------------------------------------------------
    def chain_rows(self) -> Iterable[tuple[int, object, object]]:
        return self.conn.execute("SELECT seq, body, hash FROM consent_ledger ORDER BY seq")

    def checkpoint_rows(self) -> Iterable[tuple[int, object, object, object, str]]:
        return self.conn.execute(
            "SELECT seq, hash, signature, public_key, signed_at FROM consent_checkpoints"
        )

    def hash_at(self, seq: int) -> object | None:
        row = self.conn.execute("SELECT hash FROM consent_ledger WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else row[0]

    def key_holders(self) -> set[int]:
        return {r[0] for r in self.conn.execute("SELECT one_id FROM consent_subject_keys")}


class SqliteSubjectKeys:
    """consent.shred.SubjectKeys in ``consent_subject_keys``, written inside the
    caller's transaction. Erasure deletes the row; with ``PRAGMA
    secure_delete`` and a truncated WAL no copy of the key remains."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, one_id: int) -> bytes | None:
        try:
            row = self.conn.execute(
                "SELECT key FROM consent_subject_keys WHERE one_id = ?", (one_id,)
            ).fetchone()
        except sqlite3.OperationalError:  # a read-only copy from before version 4
            return None
        return None if row is None else bytes(row[0])

    def create(self, one_id: int, key: bytes) -> None:
        self.conn.execute(
            "INSERT INTO consent_subject_keys (one_id, key) VALUES (?, ?)", (one_id, key)
        )

    def destroy(self, one_ids: list[int]) -> int:
        return sum(
            self.conn.execute(
                "DELETE FROM consent_subject_keys WHERE one_id = ?", (one_id,)
            ).rowcount
            for one_id in one_ids
        )


def read_state(conn: sqlite3.Connection, one_id: int) -> ConsentState:
    """The effective state from any connection (the forwarder's read-only one)."""
    rows = conn.execute(
        "SELECT key, granted, record_id, guardian, scope, notice, at FROM consent_state"
        " WHERE one_id = ?",
        (one_id,),
    )
    return ConsentState(
        {
            r[0]: PurposeState(
                bool(r[1]),
                r[2],
                bool(r[3]),
                frozenset(r[4].split(",")) if r[4] else None,
                r[5],
                _epoch(r[6]),
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


def head_seq(conn: sqlite3.Connection) -> int:
    """The last record's seq (0 for an empty ledger)."""
    row = conn.execute("SELECT max(seq) FROM consent_ledger").fetchone()
    return int(row[0] or 0)


def read_records(
    conn: sqlite3.Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    one_id: int | None = None,
    seqs: Sequence[int] | None = None,
) -> Iterator[ConsentRecord]:
    """Ledger records from any connection (an auditor's read-only copy):
    the given ``seqs``, or all in order filtered by received time and OneID."""
    if seqs is not None:
        for seq in seqs:
            row = conn.execute("SELECT body FROM consent_ledger WHERE seq = ?", (seq,)).fetchone()
            if row:
                yield decode(row[0])
        return
    for (body,) in conn.execute("SELECT body FROM consent_ledger ORDER BY seq"):
        record = decode(body)
        if since and record.received_at < since:
            continue
        if until and record.received_at > until:
            continue
        if one_id is not None and record.one_id != one_id:
            continue
        yield record
