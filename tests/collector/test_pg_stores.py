"""The PostgreSQL stores behind ``collector.storage.ports`` against a real
PostgreSQL: the shared outbox (SKIP LOCKED claims with leases), the dedupe
window across connections, the write lock. (Stores that behave the same on
both backends are tested on both in test_storage_backends.py.)"""

from __future__ import annotations

import threading
import time

import psycopg

from collector.storage.ports import UnitOfWork
from collector.storage.postgres.connection import connect
from collector.storage.postgres.outbox import claim, delivered, retry_later
from collector.storage.postgres.unit import PostgresUnitOfWork
from tests.collector.pg import needs_pg, pg_dsn

__all__ = ["pg_dsn"]
pytestmark = needs_pg


def uow(dsn: str, *, upgrade: bool = False) -> PostgresUnitOfWork:
    return PostgresUnitOfWork(connect(dsn, upgrade=upgrade))


def queue(u: PostgresUnitOfWork, n: int, *, destination: str = "lake", at: float = 1000.0) -> None:
    with u.conn.transaction():
        u.outbox.insert(
            [(destination, f"m{i}", i % 7 + 1, "GDPR", 0, "", at, b"{}") for i in range(n)]
        )


def test_the_unit_of_work_satisfies_the_port(pg_dsn: str) -> None:
    u: UnitOfWork = uow(pg_dsn, upgrade=True)  # mypy checks the protocol
    u.ping()
    assert u.heads() == (None, 0)


def test_forwarders_on_several_connections_claim_each_row_once(pg_dsn: str) -> None:
    u = uow(pg_dsn, upgrade=True)
    queue(u, 600)
    queue(u, 50, destination="failing")
    claimed: list[list[str]] = [[] for _ in range(4)]
    barrier = threading.Barrier(4)

    def forwarder(i: int) -> None:
        conn = connect(pg_dsn)
        barrier.wait()
        while rows := claim(conn, "lake", now=2000.0, limit=25, lease_s=60):
            claimed[i].extend(r.message_id for r in rows)
            delivered(conn, [r.id for r in rows])
        conn.close()

    threads = [threading.Thread(target=forwarder, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [m for c in claimed for m in c]
    assert sorted(every) == sorted(f"m{i}" for i in range(600))  # each exactly once
    assert sum(1 for c in claimed if c) >= 2  # the work was actually shared
    # the other destination's rows were never touched
    assert u.outbox.depth() == [("failing", 50)]
    counts = u.conn.execute(
        "SELECT destination, sum(events) FROM subject_destinations GROUP BY destination"
        " ORDER BY destination"
    ).fetchall()
    assert counts == [("failing", 50), ("lake", 600)]  # kept by the trigger


def test_one_statement_of_rows_counts_as_many_rows_one_at_a_time(pg_dsn: str) -> None:
    # The whole group's outbox rows go in one statement, counted by a statement
    # trigger: per person and destination the same events, first/last times and
    # latest message as counting row by row (the last inserted wins a tie).
    u = uow(pg_dsn, upgrade=True)
    rows = [
        ("lake", "a", 1, "GDPR", 0, "", 20.0, b"1"),
        ("lake", "b", 1, "GDPR", 1, "health", 10.0, b"2"),
        ("lake", "c", 1, "GDPR", 0, "", 20.0, b"3"),  # ties with a, inserted later
        ("ads", "d", 1, "GDPR", 0, "", 5.0, b"4"),
        ("lake", "e", 2, "CCPA", 0, "", 7.0, b"5"),
    ]
    with u.conn.transaction():
        u.outbox.insert(rows)
    with u.conn.transaction():
        u.outbox.insert([("lake", "f", 1, "GDPR", 0, "", 15.0, b"6")])  # older than c
        u.outbox.insert([("lake", "g", 2, "CCPA", 0, "", 7.0, b"7")])  # ties with e
    got = u.conn.execute(
        "SELECT one_id, destination, events, first_at, last_at, last_message_id"
        " FROM subject_destinations ORDER BY one_id, destination"
    ).fetchall()
    assert got == [
        (1, "ads", 1, 5.0, 5.0, "d"),
        (1, "lake", 4, 10.0, 20.0, "c"),
        (2, "lake", 2, 7.0, 7.0, "g"),
    ]
    stored = u.conn.execute(
        "SELECT message_id, one_id, jurisdiction, gpc, pi, created_at, next_attempt_at, payload"
        " FROM outbox ORDER BY id"
    ).fetchall()
    assert [r[0] for r in stored] == list("abcdefg")  # ids in the order routed
    assert stored[1] == ("b", 1, "GDPR", 1, "health", 10.0, 10.0, b"2")
    with u.conn.transaction():
        u.decisions.insert([("a", 20.0, 7), ("b", 10.0, 8)])
        u.decisions.insert([])
    assert u.conn.execute("SELECT * FROM decisions ORDER BY message_id").fetchall() == [
        ("a", 20.0, 7),
        ("b", 10.0, 8),
    ]


def test_a_dead_forwarders_lease_expires_and_another_takes_the_rows(pg_dsn: str) -> None:
    u = uow(pg_dsn, upgrade=True)
    queue(u, 10)
    dying = connect(pg_dsn)
    taken = claim(dying, "lake", now=2000.0, limit=6, lease_s=30)
    assert [r.message_id for r in taken] == [f"m{i}" for i in range(6)]
    dying.close()  # the replica died mid-batch: nothing was delivered
    other = connect(pg_dsn)
    assert [r.message_id for r in claim(other, "lake", now=2010.0, limit=100, lease_s=30)] == [
        f"m{i}" for i in range(6, 10)
    ]
    again = claim(other, "lake", now=2031.0, limit=100, lease_s=30)  # past the lease
    assert [r.message_id for r in again] == [f"m{i}" for i in range(6)]
    # a failure releases the lease, counts the attempt and dead-letters at the limit
    assert retry_later(other, [again[0].id], error="503", at=2035.0, dead_after=2) == 1
    assert claim(other, "lake", now=2034.0, limit=100, lease_s=30) == []
    [retried] = claim(other, "lake", now=2035.0, limit=100, lease_s=30)
    assert retried.message_id == "m0" and retried.attempts == 1
    retry_later(other, [retried.id], error="503", at=2036.0, dead_after=2)
    assert claim(other, "lake", now=2036.0, limit=100, lease_s=30) == []  # m0 is dead
    late = claim(other, "lake", now=9999.0, limit=100, lease_s=30)
    assert sorted(r.message_id for r in late) == sorted(f"m{i}" for i in range(1, 10))
    assert u.outbox.depth() == [("lake", 9)]


def test_dedupe_is_exact_across_connections_and_expires(pg_dsn: str) -> None:
    a, b = uow(pg_dsn, upgrade=True), uow(pg_dsn)
    with a.conn.transaction():
        assert a.dedupe.seen([1, 2, 3], now=100.0, window_s=60) == set()
    with b.conn.transaction():
        assert b.dedupe.seen([2, 3, 4], now=110.0, window_s=60) == {2, 3}
    with a.conn.transaction():
        assert a.dedupe.seen([1, 4], now=165.0, window_s=60) == {4}  # 1 expired at 160
    # a rolled-back batch records nothing
    try:
        with b.conn.transaction():
            assert b.dedupe.seen([9], now=170.0, window_s=60) == set()
            raise RuntimeError("batch failed")
    except RuntimeError:
        b.dedupe.discard()
    with a.conn.transaction():
        assert a.dedupe.seen([9], now=171.0, window_s=60) == set()


def test_dedupe_same_key_at_once_on_two_connections(pg_dsn: str) -> None:
    a, b = uow(pg_dsn, upgrade=True), uow(pg_dsn)
    results: dict[str, set[int]] = {}
    with a.conn.transaction():
        results["a"] = a.dedupe.seen([42], now=100.0, window_s=60)

        def other() -> None:
            with b.conn.transaction():
                results["b"] = b.dedupe.seen([42], now=100.0, window_s=60)

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)  # b waits on a's row lock
        assert "b" not in results
    t.join(10)
    assert results == {"a": set(), "b": {42}}


def test_serialization_lock_is_held_until_commit(pg_dsn: str) -> None:
    a, b = uow(pg_dsn, upgrade=True), uow(pg_dsn)
    order: list[str] = []
    with a.conn.transaction():
        a.heads()

        def other() -> None:
            with b.conn.transaction():
                b.heads()
                order.append("b")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.3)
        order.append("a")
    t.join(10)
    assert order == ["a", "b"]
    assert isinstance(a.conn, psycopg.Connection)
