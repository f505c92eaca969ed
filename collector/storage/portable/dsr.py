"""``ports.DsrStore`` on either backend: data subject requests, the access log
and a person's facts (tables ``dsr_requests``, ``access_log``,
``subject_destinations`` kept by triggers on ``outbox``, and ``id_links``).
The access log never holds a raw identifier: its ``subject`` is a OneID or
``*``."""

from __future__ import annotations

from collections.abc import Sequence

from collector.storage.portable import Statements, marks
from collector.storage.ports import AccessEntry, DestinationCount

_ACCESS_COLUMNS = "at, principal, role, permission, action, request_id, subject, outcome"


class SqlDsrStore:
    def __init__(self, sql: Statements) -> None:
        self._sql = sql

    def save_request(
        self, *, id: str, type: str, state: str, received_at: float, due_at: float, body: bytes
    ) -> None:
        self._sql.change(
            "INSERT INTO dsr_requests (id, type, state, received_at, due_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
            " state = excluded.state, due_at = excluded.due_at, body = excluded.body",
            (id, type, state, received_at, due_at, body),
        )

    def load_request(self, id: str) -> bytes | None:
        rows = self._sql.rows("SELECT body FROM dsr_requests WHERE id = ?", (id,))
        return bytes(rows[0][0]) if rows else None

    def list_requests(self) -> list[bytes]:
        rows = self._sql.rows("SELECT body FROM dsr_requests ORDER BY due_at, id")
        return [bytes(r[0]) for r in rows]

    def log_access(self, entry: AccessEntry) -> None:
        self._sql.change(
            f"INSERT INTO access_log ({_ACCESS_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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

    def access_log(self, *, subject: str | None = None, limit: int = 1000) -> list[AccessEntry]:
        where, args = ("", ()) if subject is None else (" WHERE subject = ?", (subject,))
        rows = self._sql.rows(
            f"SELECT {_ACCESS_COLUMNS} FROM access_log{where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [
            AccessEntry(float(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), r[5], r[6], r[7])
            for r in rows
        ]

    def identifier_kinds(self, one_ids: Sequence[int]) -> list[tuple[str, int, str, str]]:
        if not one_ids:
            return []
        rows = self._sql.rows(
            "SELECT kind, count(*), min(linked_at), max(linked_at) FROM id_links"
            f" WHERE one_id IN ({marks(len(one_ids))}) GROUP BY kind",
            list(one_ids),
        )
        return sorted((str(k), int(n), str(a), str(b)) for k, n, a, b in rows)

    def pseudonyms(self, one_ids: Sequence[int]) -> list[tuple[str, str]]:
        if not one_ids:
            return []
        rows = self._sql.rows(
            f"SELECT kind, pseudonym FROM id_links WHERE one_id IN ({marks(len(one_ids))})",
            list(one_ids),
        )
        return sorted((str(k), str(p)) for k, p in rows)

    def destination_counts(self, one_ids: Sequence[int]) -> list[DestinationCount]:
        if not one_ids:
            return []
        rows = self._sql.rows(
            "SELECT destination, events, first_at, last_at, last_message_id"
            f" FROM subject_destinations WHERE one_id IN ({marks(len(one_ids))})",
            list(one_ids),
        )
        # Combined in Python (a lineage has a few OneIDs): the latest message
        # is the one of the row with the latest time, the same on both backends.
        by_name: dict[str, DestinationCount] = {}
        for name, events, first_at, last_at, message in rows:
            row = DestinationCount(str(name), int(events), float(first_at), float(last_at), message)
            c = by_name.get(row.destination)
            if c is not None:
                latest = row if row.last_at >= c.last_at else c
                row = DestinationCount(
                    row.destination,
                    c.events + row.events,
                    min(c.first_at, row.first_at),
                    latest.last_at,
                    latest.last_message_id,
                )
            by_name[row.destination] = row
        return sorted(by_name.values(), key=lambda c: c.destination)

    def decision_totals(self) -> list[tuple[str, int]]:
        rows = self._sql.rows(
            "SELECT destination, sum(events) FROM subject_destinations GROUP BY destination"
        )
        return sorted((str(d), int(n)) for d, n in rows)
