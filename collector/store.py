"""Collector tables: outbox, decisions, quarantine, and the SQL that touches them.

Outbox ids are SQLite rowids, so they are time-ordered: appends hit the end
of the b-tree and a destination's queue is read in arrival order. A row holds
only the payload already transformed for its destination (pseudonyms in that
destination's domain), never raw identifiers.
"""

from __future__ import annotations

import functools
import hashlib
import sqlite3
from collections.abc import Sequence

import msgspec

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    message_id TEXT NOT NULL,
    one_id INTEGER NOT NULL,
    jurisdiction TEXT NOT NULL,
    gpc INTEGER NOT NULL DEFAULT 0,
    pi TEXT NOT NULL DEFAULT '',
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    next_attempt_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_queue ON outbox(destination, dead, id);
-- No index on one_id: erasure is rare and may scan, while every ingest would pay for it.
DROP INDEX IF EXISTS outbox_one_id;
-- Decisions repeat (a person's state and an event's facts decide them, and
-- both repeat): each distinct record list is kept once and rows refer to it.
CREATE TABLE IF NOT EXISTS decision_bodies (
    id INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS decisions (
    message_id TEXT NOT NULL,
    at REAL NOT NULL,
    body_id INTEGER NOT NULL
);
-- No index on message_id: ids are random, so every insert would dirty another
-- b-tree page (and WAL frame). `audit why` scans this table instead.
DROP INDEX IF EXISTS decisions_message;
CREATE TABLE IF NOT EXISTS delivery_log (
    id INTEGER PRIMARY KEY,
    destination TEXT NOT NULL,
    event TEXT NOT NULL,
    count INTEGER NOT NULL,
    detail TEXT,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS forwarder_state (
    destination TEXT PRIMARY KEY,
    in_flight INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
-- A destination that failed (or asked to be left alone with Retry-After) gets no
-- batch before `until` (Unix seconds): the back-off is per destination, not per batch.
CREATE TABLE IF NOT EXISTS destination_backoff (
    destination TEXT PRIMARY KEY,
    until REAL NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    path TEXT NOT NULL,
    sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS erasures (
    id INTEGER PRIMARY KEY,
    one_id INTEGER NOT NULL,
    one_ids TEXT NOT NULL,
    destination TEXT NOT NULL,
    outbox_rows_deleted INTEGER NOT NULL,
    status TEXT NOT NULL,
    remote_rows_deleted INTEGER,
    detail TEXT,
    at REAL NOT NULL,
    done_at REAL
);
"""


def create(conn: sqlite3.Connection) -> None:
    columns = {r[1] for r in conn.execute("PRAGMA table_info(decisions)")}
    if "body" in columns:
        # Rows from before decision bodies were shared: kept, and still read.
        conn.execute("ALTER TABLE decisions RENAME TO decisions_v1")
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


class DecisionRecord(msgspec.Struct, frozen=True, array_like=True):
    """One destination's decision for one message, as kept for `audit why`."""

    destination: str
    outcome: str
    jurisdiction: str
    legal_basis: str
    reasons: tuple[str, ...]
    record_ids: tuple[int, ...]


decisions_encoder = msgspec.msgpack.Encoder()
decisions_decoder = msgspec.msgpack.Decoder(list[DecisionRecord])


_CHUNK = 256  # rows per statement at most: 9 columns x 256 stays under SQLite's 32,766 variables


@functools.cache
def _insert_sql(head: str, width: int, rows: int) -> str:
    return head + ",".join([f"({','.join('?' * width)})"] * rows)


def _insert_rows(conn: sqlite3.Connection, head: str, width: int, params: list[object]) -> None:
    """Insert rows given as one flat parameter list, in a few multi-row INSERT
    statements: chunk sizes are powers of two, so each statement text repeats
    and stays in the connection's statement cache.

    Few statements, few sqlite3_step calls: the sqlite3 module releases and
    retakes the GIL on every step, and in a busy worker each retake waits for
    the event loop's thread while we hold the write lock that all workers
    share. Bound parameters cost about 4 µs a row where a json_each over one
    JSON argument cost about 7; B2 of benchmarks/ingest_stages.py fell by about
    2.7 µs per event."""
    rows = len(params) // width
    start = 0
    while rows:
        n = min(_CHUNK, 1 << (rows.bit_length() - 1))
        conn.execute(_insert_sql(head, width, n), params[start : start + n * width])
        start += n * width
        rows -= n


def insert_outbox(conn: sqlite3.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """Rows of (destination, message_id, one_id, jurisdiction, gpc, pi, created_at, payload)."""
    params: list[object] = []
    for destination, message_id, one_id, jurisdiction, gpc, pi, created_at, payload in rows:
        params += (destination, message_id, one_id, jurisdiction, gpc, pi, created_at, created_at)
        params.append(payload)
    _insert_rows(
        conn,
        "INSERT INTO outbox (destination, message_id, one_id, jurisdiction, gpc, pi,"
        " created_at, next_attempt_at, payload) VALUES ",
        9,
        params,
    )


def insert_decisions(conn: sqlite3.Connection, rows: Sequence[tuple[str, float, int]]) -> None:
    """Rows of (message_id, at, body id)."""
    params: list[object] = []
    for row in rows:
        params += row
    _insert_rows(conn, "INSERT INTO decisions (message_id, at, body_id) VALUES ", 3, params)


def decision_body_id(conn: sqlite3.Connection, body: bytes) -> int:
    """The id of a decision body, stored on first use (any process may have)."""
    digest = hashlib.sha256(body).digest()
    conn.execute(
        "INSERT OR IGNORE INTO decision_bodies (digest, body) VALUES (?, ?)", (digest, body)
    )
    row = conn.execute("SELECT id FROM decision_bodies WHERE digest = ?", (digest,)).fetchone()
    return int(row[0])


def decisions_for(conn: sqlite3.Connection, message_id: str) -> list[tuple[float, DecisionRecord]]:
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
            out.extend((at, d) for d in decisions_decoder.decode(body))
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
        if any(seqs.intersection(d.record_ids) for d in decisions_decoder.decode(body))
    ]
    n = 0
    for body_id in bodies:
        n += conn.execute("DELETE FROM decisions WHERE body_id = ?", (body_id,)).rowcount
        conn.execute("DELETE FROM decision_bodies WHERE id = ?", (body_id,))
    return n


def expire_quarantine(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute("DELETE FROM quarantine WHERE expires_at < ?", (now,)).rowcount
