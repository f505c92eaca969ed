"""Opt-in counts for the overview charts, on both backends (a SQLite file and
a fresh PostgreSQL database): the aggregate equals a count over the ledger
records themselves, the window leaves older records out, merges and
erasures are no choices."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.storage.ports import OptInCount
from collector.storage.postgres.audit import PostgresAuditStore
from collector.storage.postgres.connection import connect as pg_connect
from collector.storage.sqlite.audit import SqliteAuditStore
from collector.storage.sqlite.connection import open_database
from consent.ledger import ConsentRecord, Ledger, LedgerStore
from tests.collector.pg import pg_dsn

__all__ = ["pg_dsn"]
NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)
LAWS = ("GDPR", "CCPA", "PIPL")


def fill(store: LedgerStore) -> None:
    """40 days of choices, four a day, under three laws (a choice that changes
    nothing is not recorded by the ledger)."""
    ledger = Ledger(store)
    for n in range(160):
        at = NOW - timedelta(days=40) + timedelta(hours=6 * n)
        purposes = {"analytics": n % 4 != 0, "advertising": n % 5 == 0}
        if n % 7 == 0:
            purposes = {"analytics": False}
        ledger.append(
            one_id=n % 11 + 1,
            subject=f"ps1.k1.s{n % 11}",
            purposes=purposes,
            jurisdiction=LAWS[n % 3],
            method="banner_accept",
            given_at=at - timedelta(days=3),  # the person's clock: not what the window reads
            received_at=at,
        )
    merged = ledger.merge(1, [2], subject="ps1.k1.s0", jurisdiction="GDPR", now=NOW)
    assert merged is not None  # a merge is no choice: not counted


def expected(records: list[ConsentRecord], since: datetime) -> list[OptInCount]:
    """The counts, computed from the decoded records themselves."""
    start = since.date().isoformat()
    made = [
        (r.received_at.date().isoformat(), r.jurisdiction, p, v)
        for r in records
        if r.action in ("grant", "deny", "withdraw", "update")
        for p, v in r.purposes.items()
    ]
    choices = Counter((d, law, p) for d, law, p, _ in made if d >= start)
    yes = Counter((d, law, p) for d, law, p, v in made if v and d >= start)
    return [
        OptInCount(d, law, p, yes[(d, law, p)], n) for (d, law, p), n in sorted(choices.items())
    ]


def test_sqlite_counts_equal_the_records(tmp_path: Path) -> None:
    conn = open_database(str(tmp_path / "c.db"))
    fill(conn.ledger_store)
    conn.commit()
    since = NOW - timedelta(days=29)
    store = SqliteAuditStore(conn)
    found = store.opt_in_counts(since)
    assert found == expected(list(store.records()), since)
    assert found[0].day == since.date().isoformat() and len({c.day for c in found}) == 30
    assert SqliteAuditStore(conn).opt_in_counts(NOW + timedelta(days=1)) == []


def test_empty_ledger_has_no_counts(tmp_path: Path) -> None:
    conn = open_database(str(tmp_path / "c.db"))
    assert SqliteAuditStore(conn).opt_in_counts(NOW) == []


def test_postgres_counts_equal_sqlite(pg_dsn: str, tmp_path: Path) -> None:
    conn = pg_connect(pg_dsn, upgrade=True)
    from collector.storage.postgres.ledger import PostgresLedgerStore

    with conn.transaction():
        fill(PostgresLedgerStore(conn))
    since = NOW - timedelta(days=29)
    store = PostgresAuditStore(conn)
    found = store.opt_in_counts(since)
    assert found == expected(list(store.records()), since)
    lite = open_database(str(tmp_path / "c.db"))
    fill(lite.ledger_store)
    assert found == SqliteAuditStore(lite).opt_in_counts(since)
    assert store.opt_in_counts(NOW + timedelta(days=1)) == []


@pytest.mark.parametrize("days", [1, 10, 45])
def test_window_start_found_by_search(tmp_path: Path, days: int) -> None:
    conn = open_database(str(tmp_path / "c.db"))
    fill(conn.ledger_store)
    since = NOW - timedelta(days=days)
    store = SqliteAuditStore(conn)
    assert store.opt_in_counts(since) == expected(list(store.records()), since)
