"""The outbox as the forwarder and the operator see it: due rows, retries,
dead letters, delivery log, in-flight markers and erasure fan-out.

Functions take the connection first (the forwarder's read connection, or the
writer's inside ``Writer.run``). What an operator does with the queues is
``portable.outbox_admin`` (``uow.outbox_admin``).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Sequence

from collector.storage.portable.outbox_admin import SqlOutboxAdmin
from collector.storage.ports import Drop, OutboxInsert, OutboxRow
from collector.storage.sqlite.ledger import head_seq
from collector.storage.sqlite.statements import SqliteStatements

__all__ = ["Drop", "OutboxRow", "SqliteOutboxStore"]

_CHUNK = 256  # rows per statement at most: 9 columns x 256 stays under SQLite's 32,766 variables


class SqliteOutboxStore:
    """collector.storage.ports.OutboxStore on the writer's connection (in its transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def insert(self, rows: Sequence[OutboxInsert]) -> None:
        insert_outbox(self.conn, rows)

    def delete_people(self, destination: str, one_ids: Sequence[int]) -> int:
        marks = ",".join("?" * len(one_ids))
        return self.conn.execute(
            f"DELETE FROM outbox WHERE destination = ? AND one_id IN ({marks})",
            (destination, *one_ids),
        ).rowcount

    def depth(self) -> list[tuple[str, int]]:
        return list(
            self.conn.execute(
                "SELECT destination, count(*) FROM outbox WHERE dead = 0 GROUP BY destination"
            )
        )

    def due_count(self, now: float) -> int:
        return due_count(self.conn, now)

    def gauges(self, now: float) -> dict[str, tuple[int, int, float]]:
        return gauges(self.conn, now=now)


@functools.cache
def _insert_sql(head: str, width: int, rows: int) -> str:
    return head + ",".join([f"({','.join('?' * width)})"] * rows)


def insert_rows(conn: sqlite3.Connection, head: str, width: int, params: list[object]) -> None:
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


def insert_outbox(conn: sqlite3.Connection, rows: Sequence[OutboxInsert]) -> None:
    """Rows of (destination, message_id, one_id, jurisdiction, gpc, pi, created_at, payload)."""
    params: list[object] = []
    for destination, message_id, one_id, jurisdiction, gpc, pi, created_at, payload in rows:
        params += (destination, message_id, one_id, jurisdiction, gpc, pi, created_at, created_at)
        params.append(payload)
    insert_rows(
        conn,
        "INSERT INTO outbox (destination, message_id, one_id, jurisdiction, gpc, pi,"
        " created_at, next_attempt_at, payload) VALUES ",
        9,
        params,
    )


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


def record_delivered(
    conn: sqlite3.Connection, destination: str, rows: Sequence[OutboxRow], at: float
) -> int:
    """The destination confirmed ``rows``: log the batch, record each row's
    outcome under the batch's id, delete the rows. Returns the batch id."""
    cur = conn.execute(
        "INSERT INTO delivery_log (destination, event, count, detail, at)"
        " VALUES (?, 'delivered', ?, NULL, ?)",
        (destination, len(rows), at),
    )
    batch = int(cur.lastrowid or 0)
    conn.executemany(
        "INSERT INTO delivery_outcomes (message_id, destination, outcome, at, batch, attempts)"
        " VALUES (?, ?, 'delivered', ?, ?, ?)",
        [(r.message_id, destination, at, batch, r.attempts + 1) for r in rows],
    )
    delete_rows(conn, [r.id for r in rows])
    return batch


def record_dropped(
    conn: sqlite3.Connection, destination: str, drops: Sequence[Drop], at: float
) -> None:
    """Consent no longer allows these rows (or the person was erased): record
    why, delete them, log the drop."""
    conn.executemany(
        "INSERT INTO delivery_outcomes"
        " (message_id, destination, outcome, at, attempts, records, detail)"
        " VALUES (?, ?, 'dropped', ?, ?, ?, ?)",
        [
            (d.row.message_id, destination, at, d.row.attempts, _seqs(d.records), d.detail)
            for d in drops
        ],
    )
    delete_rows(conn, [d.row.id for d in drops])
    log_delivery(conn, destination, "dropped_for_consent", len(drops), None, at)


def _seqs(records: Sequence[int]) -> str | None:
    return ",".join(map(str, records)) or None


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


def backoff_until(conn: sqlite3.Connection, destination: str) -> float | None:
    """No batch goes to ``destination`` before this (Unix seconds); None: no back-off."""
    row = conn.execute(
        "SELECT until FROM destination_backoff WHERE destination = ?", (destination,)
    ).fetchone()
    return None if row is None else float(row[0])


def set_backoff(destination: str, until: float, reason: str, conn: sqlite3.Connection) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO destination_backoff (destination, until, reason) VALUES (?, ?, ?)",
        (destination, until, reason[:2000]),
    )


def clear_backoff(destination: str, conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM destination_backoff WHERE destination = ?", (destination,))


def gauges(conn: sqlite3.Connection, *, now: float) -> dict[str, tuple[int, int, float]]:
    """``OutboxAdmin.gauges`` on this connection."""
    return _admin(conn).gauges(now)


def _admin(conn: sqlite3.Connection) -> SqlOutboxAdmin:
    return SqlOutboxAdmin(SqliteStatements(conn), in_flight="forwarder_state")


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


def due_count(conn: sqlite3.Connection, now: float) -> int:
    """Rows of every destination that are not dead and due at ``now`` (Unix seconds)."""
    return _admin(conn).due_count(now)


def ledger_seq(conn: sqlite3.Connection) -> int:
    """The consent ledger's head seq (0 when empty), to see whether it moved."""
    return head_seq(conn)
