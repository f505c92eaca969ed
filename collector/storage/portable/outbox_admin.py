"""``ports.OutboxAdmin`` on either backend: the delivery queues as an operator
sees and steers them (``consentry outbox``, the console overview, ``/metrics``).

Rows in flight (sent, not yet confirmed) are counted differently: a SQLite
collector's single forwarder records its count per destination in
``forwarder_state``; on PostgreSQL every replica's forwarder leases the rows
it sends (``leased_until``), so the leased rows are the ones in flight.
Times are Unix seconds; statuses carry ISO 8601 UTC times.
"""

from __future__ import annotations

from datetime import UTC, datetime

from collector.storage.portable import Statements
from collector.storage.ports import empty_status

_IN_FLIGHT = {
    "forwarder_state": "SELECT destination, in_flight FROM forwarder_state",
    "leases": "SELECT destination, count(*) FROM outbox WHERE dead = 0 AND leased_until > ?"
    " GROUP BY destination",
}


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SqlOutboxAdmin:
    """``in_flight``: ``"forwarder_state"`` (SQLite) or ``"leases"`` (PostgreSQL)."""

    def __init__(self, sql: Statements, *, in_flight: str) -> None:
        self._sql = sql
        self._in_flight = _IN_FLIGHT[in_flight]

    def status(self, now: float) -> dict[str, dict[str, object]]:
        sql = self._sql
        out: dict[str, dict[str, object]] = {}
        firsts = {
            str(d): float(first)
            for d, first in sql.rows(
                "SELECT destination, min(next_attempt_at) FROM outbox WHERE dead = 0"
                " GROUP BY destination"
            )
        }
        for dest, until, reason in sql.rows(
            "SELECT destination, until, reason FROM destination_backoff WHERE until > ?", (now,)
        ):
            entry = out.setdefault(dest, empty_status())
            entry["backoff_until"] = _iso(until)
            entry["backoff_reason"] = reason
            if dest in firsts:
                firsts[dest] = max(firsts[dest], until)
        for dest, first in firsts.items():
            entry = out.setdefault(dest, empty_status())
            entry["next_attempt_in_s"] = round(max(0.0, first - now), 1)
            entry["next_attempt_at"] = _iso(max(first, now))
        for dest, dead, n, oldest in sql.rows(
            "SELECT destination, dead, count(*), min(created_at) FROM outbox"
            " GROUP BY destination, dead"
        ):
            entry = out.setdefault(dest, empty_status())
            entry["dead" if dead else "pending"] = int(n)
            if not dead and oldest is not None:
                entry["oldest_age_s"] = round(now - oldest, 1)
        for dest, err in sql.rows(
            "SELECT destination, last_error FROM outbox WHERE id IN"
            " (SELECT max(id) FROM outbox WHERE last_error IS NOT NULL GROUP BY destination)"
        ):
            out.setdefault(dest, empty_status())["last_error"] = err
        for dest, n in sql.rows(
            "SELECT destination, count(*) FROM outbox WHERE dead = 0 AND attempts > 0"
            " GROUP BY destination"
        ):
            out.setdefault(dest, empty_status())["retrying"] = int(n)
        args = (now,) if "?" in self._in_flight else ()
        for dest, n in sql.rows(self._in_flight, args):
            out.setdefault(dest, empty_status())["in_flight"] = int(n)
        return out

    def gauges(self, now: float) -> dict[str, tuple[int, int, float]]:
        out: dict[str, tuple[int, int, float]] = {}
        for dest, pending, dead, first in self._sql.rows(
            "SELECT destination, sum(CASE WHEN dead = 0 THEN 1 ELSE 0 END), sum(dead),"
            " min(CASE WHEN dead = 0 THEN next_attempt_at END) FROM outbox GROUP BY destination"
        ):
            wait = 0.0 if first is None else max(0.0, float(first) - now)
            out[dest] = (int(pending), int(dead), wait)
        for dest, until in self._sql.rows("SELECT destination, until FROM destination_backoff"):
            pending, dead, wait = out.get(dest, (0, 0, 0.0))
            if pending:
                out[dest] = (pending, dead, max(wait, float(until) - now, 0.0))
        return out

    def replay(self, destination: str, since: float | None, now: float) -> int:
        sql = (
            "UPDATE outbox SET dead = 0, attempts = 0, next_attempt_at = ?"
            " WHERE destination = ? AND dead = 1"
        )
        args: list[object] = [now, destination]
        if since is not None:
            sql += " AND created_at >= ?"
            args.append(since)
        return self._sql.change(sql, args)

    def purge_dead(self, destination: str, now: float) -> int:
        self._sql.change(
            "INSERT INTO delivery_outcomes (message_id, destination, outcome, at, attempts, detail)"
            " SELECT message_id, destination, 'purged', ?, attempts, last_error FROM outbox"
            " WHERE destination = ? AND dead = 1",
            (now, destination),
        )
        return self._sql.change(
            "DELETE FROM outbox WHERE destination = ? AND dead = 1", (destination,)
        )

    def retry_now(self, destination: str, now: float) -> int:
        self._sql.change("DELETE FROM destination_backoff WHERE destination = ?", (destination,))
        return self._sql.change(
            "UPDATE outbox SET next_attempt_at = CASE WHEN next_attempt_at > ? THEN ?"
            " ELSE next_attempt_at END WHERE destination = ? AND dead = 0",
            (now, now, destination),
        )

    def due_count(self, now: float) -> int:
        [(n,)] = self._sql.rows(
            "SELECT count(*) FROM outbox WHERE dead = 0 AND next_attempt_at <= ?", (now,)
        )
        return int(n)
