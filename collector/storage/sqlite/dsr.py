"""Data subject requests, the access log and a person's facts (schema version 7).

Requests are stored as their JSON body plus the columns the queue orders by;
the access log never holds a raw identifier (its ``subject`` is a OneID or a
request id). Times are Unix seconds.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """One use of a permission: who (principal, role), when, what, on which
    request or person (a OneID, never a raw identifier), and the outcome."""

    at: float
    principal: str
    role: str
    permission: str
    action: str
    request_id: str | None
    subject: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class DestinationCount:
    """Events of one person routed to one destination, first and last time,
    and the latest message's id (None when routed before schema version 8)."""

    destination: str
    events: int
    first_at: float
    last_at: float
    last_message_id: str | None = None


def save_request(
    conn: sqlite3.Connection,
    *,
    id: str,
    type: str,
    state: str,
    received_at: float,
    due_at: float,
    body: bytes,
) -> None:
    conn.execute(
        "INSERT INTO dsr_requests (id, type, state, received_at, due_at, body)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
        " state = excluded.state, due_at = excluded.due_at, body = excluded.body",
        (id, type, state, received_at, due_at, body),
    )


def load_request(conn: sqlite3.Connection, id: str) -> bytes | None:
    row = conn.execute("SELECT body FROM dsr_requests WHERE id = ?", (id,)).fetchone()
    return None if row is None else bytes(row[0])


def list_requests(conn: sqlite3.Connection) -> list[bytes]:
    """Every request, the most urgent (earliest due) first."""
    return [bytes(r[0]) for r in conn.execute("SELECT body FROM dsr_requests ORDER BY due_at, id")]


def log_access(conn: sqlite3.Connection, entry: AccessEntry) -> None:
    conn.execute(
        "INSERT INTO access_log (at, principal, role, permission, action, request_id, subject,"
        " outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            entry.at,
            entry.principal,
            entry.role,
            entry.permission,
            entry.action,
            entry.request_id,
            entry.subject,
            entry.outcome,
        ),
    )


def access_log(
    conn: sqlite3.Connection, *, subject: str | None = None, limit: int = 1000
) -> list[AccessEntry]:
    """The newest `limit` entries, newest first; of one subject if given."""
    sql = (
        "SELECT at, principal, role, permission, action, request_id, subject, outcome"
        " FROM access_log"
    )
    args: tuple[object, ...] = ()
    if subject is not None:
        sql += " WHERE subject = ?"
        args = (subject,)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
    return [AccessEntry(*r) for r in rows]


def identifier_kinds(
    conn: sqlite3.Connection, one_ids: Sequence[int]
) -> list[tuple[str, int, str, str]]:
    """(kind, how many, first linked, last linked) per identifier kind of these
    OneIDs; link times are ISO 8601 as the graph stores them."""
    if not one_ids:
        return []
    marks = ",".join("?" * len(one_ids))
    rows = conn.execute(
        "SELECT kind, count(*), min(linked_at), max(linked_at) FROM id_links"
        f" WHERE one_id IN ({marks}) GROUP BY kind ORDER BY kind",
        list(one_ids),
    )
    return [(str(k), int(n), str(a), str(b)) for k, n, a, b in rows]


def destination_counts(conn: sqlite3.Connection, one_ids: Sequence[int]) -> list[DestinationCount]:
    """Per destination, the events of these OneIDs routed to it."""
    if not one_ids:
        return []
    marks = ",".join("?" * len(one_ids))
    # SQLite: with max(), a bare column comes from the row holding the maximum.
    rows = conn.execute(
        "SELECT destination, sum(events), min(first_at), max(last_at), last_message_id"
        f" FROM subject_destinations WHERE one_id IN ({marks})"
        " GROUP BY destination ORDER BY destination",
        list(one_ids),
    )
    return [
        DestinationCount(str(d), int(n), float(a), float(b), None if m is None else str(m))
        for d, n, a, b, m in rows
    ]


def decision_totals(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    """(destination, events queued) over everyone: the overview's counts."""
    rows = conn.execute(
        "SELECT destination, sum(events) FROM subject_destinations GROUP BY destination"
        " ORDER BY destination"
    )
    return [(str(d), int(n)) for d, n in rows]


def pseudonyms(conn: sqlite3.Connection, one_ids: Sequence[int]) -> list[tuple[str, str]]:
    """(kind, pseudonym) of every identifier linked to these OneIDs."""
    if not one_ids:
        return []
    marks = ",".join("?" * len(one_ids))
    rows = conn.execute(
        f"SELECT kind, pseudonym FROM id_links WHERE one_id IN ({marks}) ORDER BY kind",
        list(one_ids),
    )
    return [(str(k), str(p)) for k, p in rows]


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), for the CLI's short writes."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
