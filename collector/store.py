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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    message_id: str
    one_id: int
    jurisdiction: str
    gpc: bool
    pi: frozenset[str]
    payload: bytes
    created_at: float
    attempts: int


def due_rows(conn: sqlite3.Connection, destination: str, now: float, limit: int) -> list[OutboxRow]:
    rows = conn.execute(
        "SELECT id, message_id, one_id, jurisdiction, gpc, pi, payload, created_at, attempts"
        " FROM outbox WHERE destination = ? AND dead = 0 AND next_attempt_at <= ?"
        " ORDER BY id LIMIT ?",
        (destination, now, limit),
    )
    return [
        OutboxRow(
            r[0],
            r[1],
            r[2],
            r[3],
            bool(r[4]),
            frozenset(filter(None, r[5].split(","))),
            r[6],
            r[7],
            r[8],
        )
        for r in rows
    ]


def next_due(conn: sqlite3.Connection, destination: str) -> float | None:
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM outbox WHERE destination = ? AND dead = 0", (destination,)
    ).fetchone()
    return row[0]


def delete_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> int:
    return conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids]).rowcount


def retry_rows(conn: sqlite3.Connection, plans: Iterable[tuple[int, float, bool, str]]) -> None:
    """plans: (id, next_attempt_at, dead, error)."""
    conn.executemany(
        "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, dead = ?, last_error = ?"
        " WHERE id = ?",
        [(at, int(dead), err[:2000], i) for i, at, dead, err in plans],
    )


def log_delivery(
    conn: sqlite3.Connection,
    destination: str,
    event: str,
    count: int,
    detail: str | None,
    at: float,
) -> None:
    conn.execute(
        "INSERT INTO delivery_log (destination, event, count, detail, at) VALUES (?, ?, ?, ?, ?)",
        (destination, event, count, detail, at),
    )


def set_in_flight(destination: str, n: int, at: float, conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO forwarder_state (destination, in_flight, updated_at) VALUES (?, ?, ?)",
        (destination, n, at),
    )


def empty_status() -> dict[str, object]:
    return {
        "pending": 0,
        "in_flight": 0,
        "retrying": 0,
        "dead": 0,
        "oldest_age_s": None,
        "last_error": None,
    }


def status(conn: sqlite3.Connection, now: float) -> dict[str, dict[str, object]]:
    """Per destination: pending (not dead, including in flight and retrying),
    in flight (sent, not yet confirmed), retrying (failed at least once), dead,
    age of the oldest pending row, last error."""
    out: dict[str, dict[str, object]] = {}
    for dest, dead, n, oldest in conn.execute(
        "SELECT destination, dead, count(*), min(created_at) FROM outbox GROUP BY destination, dead"
    ):
        entry = out.setdefault(dest, empty_status())
        entry["dead" if dead else "pending"] = n
        if not dead and oldest is not None:
            entry["oldest_age_s"] = round(now - oldest, 1)
    for dest, err in conn.execute(
        "SELECT destination, last_error FROM outbox WHERE last_error IS NOT NULL"
        " AND id IN (SELECT max(id) FROM outbox WHERE last_error IS NOT NULL GROUP BY destination)"
    ):
        out.setdefault(dest, empty_status())
        out[dest]["last_error"] = err
    for dest, n in conn.execute(
        "SELECT destination, count(*) FROM outbox WHERE dead = 0 AND attempts > 0 GROUP BY destination"
    ):
        out.setdefault(dest, empty_status())["retrying"] = n
    for dest, n in conn.execute("SELECT destination, in_flight FROM forwarder_state"):
        out.setdefault(dest, empty_status())["in_flight"] = n
    return out


def replay(conn: sqlite3.Connection, destination: str, since: float | None, now: float) -> int:
    sql = "UPDATE outbox SET dead = 0, attempts = 0, next_attempt_at = ? WHERE destination = ? AND dead = 1"
    args: list[object] = [now, destination]
    if since is not None:
        sql += " AND created_at >= ?"
        args.append(since)
    return conn.execute(sql, args).rowcount


def purge_dead(conn: sqlite3.Connection, destination: str) -> int:
    return conn.execute(
        "DELETE FROM outbox WHERE destination = ? AND dead = 1", (destination,)
    ).rowcount


def expire_quarantine(conn: sqlite3.Connection, now: float) -> int:
    return conn.execute("DELETE FROM quarantine WHERE expires_at < ?", (now,)).rowcount


def pending_erasures(conn: sqlite3.Connection) -> list[tuple[int, str, list[int]]]:
    rows = conn.execute(
        "SELECT id, destination, one_ids FROM erasures WHERE status = 'pending' ORDER BY id"
    )
    return [(r[0], r[1], [int(x) for x in r[2].split(",") if x]) for r in rows]


def finish_erasure(
    conn: sqlite3.Connection,
    erasure_id: int,
    status: str,
    deleted: int | None,
    detail: str | None,
    at: float,
) -> None:
    conn.execute(
        "UPDATE erasures SET status = ?, remote_rows_deleted = ?, detail = ?, done_at = ? WHERE id = ?",
        (status, deleted, detail, at, erasure_id),
    )
