"""The shared outbox on PostgreSQL: every replica's pipeline queues rows, and
every replica's forwarder claims them.

A claim is ``FOR UPDATE SKIP LOCKED`` plus a lease: the rows a forwarder
takes get ``leased_until = now + lease_s`` in one short transaction, so
other replicas skip them (locked while the claim commits, leased after) and
nothing is held open while the destination is called. A replica that dies
mid-batch only delays its rows until the lease expires; another replica then
claims them again (at-least-once; ``message_id`` is the idempotency key the
destination sees). Claims are per destination, so one failing destination
never stalls another. Times are Unix seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from collector.storage.ports import OutboxInsert, OutboxRow

Conn = psycopg.Connection[Any]

_INSERT = (
    "INSERT INTO outbox (destination, message_id, one_id, jurisdiction, gpc, pi,"
    " created_at, next_attempt_at, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_CLAIM = (
    "UPDATE outbox SET leased_until = %(until)s WHERE id IN ("
    " SELECT id FROM outbox WHERE destination = %(dest)s AND dead = 0"
    " AND next_attempt_at <= %(now)s AND leased_until <= %(now)s"
    " ORDER BY id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
    " RETURNING id, message_id, one_id, jurisdiction, gpc, pi, payload, created_at, attempts"
)


class PostgresOutboxStore:
    """collector.storage.ports.OutboxStore in the writer's transaction."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def insert(self, rows: Sequence[OutboxInsert]) -> None:
        if not rows:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                _INSERT,
                [(d, m, o, j, g, pi, at, at, payload) for d, m, o, j, g, pi, at, payload in rows],
            )

    def delete_people(self, destination: str, one_ids: Sequence[int]) -> int:
        return self.conn.execute(
            "DELETE FROM outbox WHERE destination = %s AND one_id = ANY(%s)",
            (destination, list(one_ids)),
        ).rowcount

    def depth(self) -> list[tuple[str, int]]:
        rows = self.conn.execute(
            "SELECT destination, count(*) FROM outbox WHERE dead = 0 GROUP BY destination"
            " ORDER BY destination"
        ).fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]


def claim(
    conn: Conn, destination: str, *, now: float, limit: int, lease_s: float
) -> list[OutboxRow]:
    """Lease up to ``limit`` due rows of the destination, oldest first, that no
    other forwarder holds; commits the lease at once (``conn`` in autocommit)."""
    with conn.transaction():
        rows = conn.execute(
            _CLAIM, {"until": now + lease_s, "dest": destination, "now": now, "limit": limit}
        ).fetchall()
    out = [
        OutboxRow(
            id=int(r[0]),
            message_id=str(r[1]),
            one_id=int(r[2]),
            jurisdiction=str(r[3]),
            gpc=bool(r[4]),
            pi=frozenset(p for p in str(r[5]).split(",") if p),
            payload=bytes(r[6]),
            created_at=float(r[7]),
            attempts=int(r[8]),
        )
        for r in rows
    ]
    out.sort(key=lambda row: row.id)
    return out


def delivered(conn: Conn, ids: Sequence[int]) -> int:
    """Remove delivered rows; returns how many were still there."""
    return conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (list(ids),)).rowcount


def retry_later(conn: Conn, ids: Sequence[int], *, error: str, at: float, dead_after: int) -> int:
    """A failed send: count the attempt, release the lease and make the rows
    due again at ``at``; rows past ``dead_after`` attempts become dead letters."""
    return conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s,"
        " leased_until = 0, dead = CASE WHEN attempts + 1 >= %s THEN 1 ELSE 0 END"
        " WHERE id = ANY(%s)",
        (error, at, dead_after, list(ids)),
    ).rowcount
