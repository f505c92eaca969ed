"""The shared outbox on PostgreSQL: every replica's pipeline queues rows, and
every replica's forwarder claims them.

A claim is ``FOR UPDATE SKIP LOCKED`` plus a lease: the rows a forwarder
takes get ``leased_until = now + lease_s`` in one short transaction, so
other replicas skip them (locked while the claim commits, leased after) and
nothing is held open while the destination is called. A replica that dies
mid-batch only delays its rows until the lease expires; another replica then
claims them again (at-least-once; ``message_id`` is the idempotency key the
destination sees). Claims are per destination, so one failing destination
never stalls another. Times are Unix seconds, from the replicas' clocks
(keep them in sync, as for any lease).

``record_delivered``, ``record_dropped`` and ``retry_rows`` record exactly
what ``collector.storage.sqlite.outbox`` records (delivery log, outcomes,
back-off, in-flight marker) and release the lease of the rows they keep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from collector.storage.portable.outbox_admin import SqlOutboxAdmin
from collector.storage.ports import Drop, OutboxInsert, OutboxRow
from collector.storage.postgres.statements import PostgresStatements

Conn = psycopg.Connection[Any]
# LISTEN/NOTIFY channel: a commit that queued rows wakes every replica's lanes.
CHANNEL = "consentry_outbox"

# One statement for the whole group's rows, each column one array: one round
# trip and one parse while the write lock is held, where executemany sends a
# statement per row. WITH ORDINALITY keeps the ids in the order routed.
_INSERT = (
    "INSERT INTO outbox (destination, message_id, one_id, jurisdiction, gpc, pi,"
    " created_at, next_attempt_at, payload)"
    " SELECT d, m, o, j, g, pi, at, at, p FROM unnest("
    "%b::text[], %b::text[], %b::bigint[], %b::text[], %b::int[], %b::text[],"
    " %b::float8[], %b::bytea[]) WITH ORDINALITY AS t(d, m, o, j, g, pi, at, p, n) ORDER BY n"
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
        # Rows were queued in the open transaction: the commit notifies the
        # replicas' forwarders (``CHANNEL``).
        self.queued = False

    def insert(self, rows: Sequence[OutboxInsert]) -> None:
        if not rows:
            return
        self.queued = True
        self.conn.execute(_INSERT, [list(column) for column in zip(*rows, strict=True)])

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

    def gauges(self, now: float) -> dict[str, tuple[int, int, float]]:
        return gauges(self.conn, now)

    def due_count(self, now: float) -> int:
        return due_count(self.conn, now)


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


def next_due(conn: Conn, destination: str) -> float | None:
    """When the destination's next row can be claimed: due, and its lease (if
    another forwarder holds it) run out. None: nothing queued."""
    row = conn.execute(
        "SELECT min(greatest(next_attempt_at, leased_until)) FROM outbox"
        " WHERE destination = %s AND dead = 0",
        (destination,),
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def backoff_until(conn: Conn, destination: str) -> float | None:
    row = conn.execute(
        "SELECT until FROM destination_backoff WHERE destination = %s", (destination,)
    ).fetchone()
    return None if row is None else float(row[0])


def record_delivered(conn: Conn, destination: str, rows: Sequence[OutboxRow], at: float) -> int:
    """The destination confirmed ``rows``: log the batch, record each row's
    outcome under the batch's id, delete the rows. Returns the batch id."""
    found = conn.execute(
        "INSERT INTO delivery_log (destination, event, count, detail, at)"
        " VALUES (%s, 'delivered', %s, NULL, %s) RETURNING id",
        (destination, len(rows), at),
    ).fetchone()
    assert found is not None
    batch = int(found[0])
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO delivery_outcomes (message_id, destination, outcome, at, batch, attempts)"
            " VALUES (%s, %s, 'delivered', %s, %s, %s)",
            [(r.message_id, destination, at, batch, r.attempts + 1) for r in rows],
        )
    delivered(conn, [r.id for r in rows])
    return batch


def record_dropped(conn: Conn, destination: str, drops: Sequence[Drop], at: float) -> None:
    """Consent no longer allows these rows (or the person was erased): record
    why, delete them, log the drop."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO delivery_outcomes"
            " (message_id, destination, outcome, at, attempts, records, detail)"
            " VALUES (%s, %s, 'dropped', %s, %s, %s, %s)",
            [
                (
                    d.row.message_id,
                    destination,
                    at,
                    d.row.attempts,
                    ",".join(map(str, d.records)) or None,
                    d.detail,
                )
                for d in drops
            ],
        )
    delivered(conn, [d.row.id for d in drops])
    conn.execute(
        "INSERT INTO delivery_log (destination, event, count, detail, at)"
        " VALUES (%s, 'dropped_for_consent', %s, NULL, %s)",
        (destination, len(drops), at),
    )


def retry_rows(conn: Conn, plans: Sequence[tuple[int, float, bool, str]]) -> None:
    """plans: (id, next_attempt_at, dead, error); each row's lease is released."""
    with conn.cursor() as cur:
        cur.executemany(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = %s, dead = %s,"
            " last_error = %s, leased_until = 0 WHERE id = %s",
            [(at, int(dead), err[:2000], i) for i, at, dead, err in plans],
        )


def set_in_flight(conn: Conn, destination: str, n: int, at: float) -> None:
    conn.execute(
        "INSERT INTO forwarder_state (destination, in_flight, updated_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (destination) DO UPDATE SET in_flight = excluded.in_flight,"
        " updated_at = excluded.updated_at",
        (destination, n, at),
    )


def set_backoff(conn: Conn, destination: str, until: float, reason: str) -> None:
    conn.execute(
        "INSERT INTO destination_backoff (destination, until, reason) VALUES (%s, %s, %s)"
        " ON CONFLICT (destination) DO UPDATE SET until = excluded.until,"
        " reason = excluded.reason",
        (destination, until, reason[:2000]),
    )


def clear_backoff(conn: Conn, destination: str) -> None:
    conn.execute("DELETE FROM destination_backoff WHERE destination = %s", (destination,))


def gauges(conn: Conn, now: float) -> dict[str, tuple[int, int, float]]:
    """``OutboxAdmin.gauges`` (the same SQL as the SQLite adapter's)."""
    return _admin(conn).gauges(now)


def due_count(conn: Conn, now: float) -> int:
    """``OutboxAdmin.due_count``: rows of every destination not dead and due at ``now``."""
    return _admin(conn).due_count(now)


def _admin(conn: Conn) -> SqlOutboxAdmin:
    return SqlOutboxAdmin(PostgresStatements(conn), in_flight="leases")
