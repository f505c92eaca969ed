"""Decisions kept for `audit why` (``decisions``, ``decision_bodies``, and
``decisions_v1`` in databases from before bodies were shared).

Decisions repeat (a person's state and an event's facts decide them, and both
repeat): each distinct body is kept once, by its SHA-256, and rows refer to it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence

from collector.storage.ports import DecisionRecord, decode_decisions
from collector.storage.sqlite.outbox import insert_rows


class SqliteDecisionStore:
    """collector.storage.ports.DecisionStore on one connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def body_id(self, body: bytes) -> int:
        return decision_body_id(self.conn, body)

    def insert(self, rows: Sequence[tuple[str, float, int]]) -> None:
        insert_decisions(self.conn, rows)

    def forget_people(self, one_ids: Sequence[int]) -> int:
        return forget_decisions(self.conn, one_ids)


def insert_decisions(conn: sqlite3.Connection, rows: Sequence[tuple[str, float, int]]) -> None:
    """Rows of (message_id, at, body id)."""
    params: list[object] = []
    for row in rows:
        params += row
    insert_rows(conn, "INSERT INTO decisions (message_id, at, body_id) VALUES ", 3, params)


def decision_body_id(conn: sqlite3.Connection, body: bytes) -> int:
    """The id of a decision body, stored on first use (any process may have)."""
    digest = hashlib.sha256(body).digest()
    conn.execute(
        "INSERT OR IGNORE INTO decision_bodies (digest, body) VALUES (?, ?)", (digest, body)
    )
    row = conn.execute("SELECT id FROM decision_bodies WHERE digest = ?", (digest,)).fetchone()
    return int(row[0])


def decisions_for(conn: sqlite3.Connection, message_id: str) -> list[tuple[float, DecisionRecord]]:
    """(at, decision) for a message, oldest first, from any connection."""
    out: list[tuple[float, DecisionRecord]] = []
    old = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'decisions_v1'"
    ).fetchone()
    queries = (
        ["SELECT at, body FROM decisions_v1 WHERE message_id = ? ORDER BY rowid"] if old else []
    )
    queries.append(
        "SELECT d.at, b.body FROM decisions d JOIN decision_bodies b ON b.id = d.body_id"
        " WHERE d.message_id = ? ORDER BY d.rowid"
    )
    for sql in queries:
        for at, body in conn.execute(sql, (message_id,)):
            out.extend((at, d) for d in decode_decisions(body))
    return out


def forget_decisions(conn: sqlite3.Connection, one_ids: Sequence[int]) -> int:
    """Delete the decisions that cite any ledger record of these OneIDs (they
    link messages to the person; GDPR Art. 17), with their bodies. A body that
    cites no record (default deny) is shared by everyone and names nobody: kept.
    Scans the ledger and the bodies: erasure is rare. Returns rows deleted."""
    if not one_ids:
        return 0
    marks = ",".join("?" * len(one_ids))
    seqs = {
        r[0]
        for r in conn.execute(
            f"SELECT seq FROM consent_ledger WHERE json_extract(body, '$.one_id') IN ({marks})",
            tuple(one_ids),
        )
    }
    if not seqs:
        return 0
    bodies = [
        body_id
        for body_id, body in conn.execute("SELECT id, body FROM decision_bodies")
        if any(seqs.intersection(d.record_ids) for d in decode_decisions(body))
    ]
    n = 0
    for body_id in bodies:
        n += conn.execute("DELETE FROM decisions WHERE body_id = ?", (body_id,)).rowcount
        conn.execute("DELETE FROM decision_bodies WHERE id = ?", (body_id,))
    return n
