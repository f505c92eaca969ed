"""The group-commit writer and the forwarder on a real PostgreSQL (issue 18):
a failing unit costs only itself, two replicas' writers never lose each
other's writes, a transaction PostgreSQL aborted is never reported
committed, a broken session costs at most its group, a forwarder that dies
mid-batch only delays its rows (another replica's forwarder sends them once
the lease runs out), one replica's commit wakes the others' lanes, and an
erasure is propagated by one replica at a time."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from collector import config as config_mod
from collector.errors import StorageError
from collector.pipeline.decode import decode_message
from collector.runtime import Runtime
from collector.storage.postgres.connection import connect
from collector.storage.postgres.delivery import PostgresDelivery
from collector.storage.postgres.unit import PostgresUnitOfWork
from collector.storage.writer import Writer
from tests.collector.pg import needs_pg, pg_dsn
from tests.conftest import read_jsonl

__all__ = ["pg_dsn"]
pytestmark = needs_pg


def _uow(dsn: str) -> PostgresUnitOfWork:
    return PostgresUnitOfWork(connect(dsn, upgrade=True), dsn=dsn)


def _hold(writer: Writer[Any]) -> threading.Event:
    release, started = threading.Event(), threading.Event()

    def block(_: PostgresUnitOfWork) -> None:
        started.set()
        release.wait(10)

    writer.submit(block)
    assert started.wait(10)
    return release


def test_a_failing_unit_costs_only_itself(pg_dsn: str) -> None:
    u = _uow(pg_dsn)
    u.conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    rollbacks: list[int] = []
    writer = Writer(u)
    writer.on_rollback(lambda: rollbacks.append(1))
    release = _hold(writer)

    def insert(v: int) -> Any:
        def work(w: PostgresUnitOfWork) -> int:
            # 3 collides with 2's row: a real constraint error, the transaction aborted
            w.conn.execute("INSERT INTO t VALUES (%s)", (2 if v == 3 else v,))
            return v

        return work

    futures: list[Future[int]] = [writer.submit(insert(v)) for v in range(1, 6)]
    release.set()
    assert [f.result(10) for f in futures if f is not futures[2]] == [1, 2, 4, 5]
    with pytest.raises(psycopg.errors.UniqueViolation):
        futures[2].result(10)
    assert rollbacks and writer.commits >= 1
    writer.close()
    with psycopg.connect(pg_dsn) as conn:
        rows = [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")]
    assert rows == [1, 2, 4, 5]


def test_an_aborted_transaction_is_never_reported_committed(pg_dsn: str) -> None:
    """A unit that swallows a database error leaves PostgreSQL's transaction
    aborted; its COMMIT is then a rollback, and nobody may be told otherwise."""
    u = _uow(pg_dsn)
    u.conn.execute("CREATE TABLE t (v INTEGER PRIMARY KEY)")
    writer = Writer(u)

    def swallow(w: PostgresUnitOfWork) -> None:
        w.conn.execute("INSERT INTO t VALUES (1)")
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            w.conn.execute("INSERT INTO t VALUES (1)")

    with pytest.raises(StorageError, match="not committed"):
        writer.call(swallow, timeout=10)
    assert writer.failing is not None
    writer.call(lambda w: w.conn.execute("INSERT INTO t VALUES (7)"), timeout=10)
    assert writer.failing is None
    writer.close()
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT array_agg(v) FROM t").fetchone() == ([7],)


def test_two_replicas_writers_share_the_database_without_losing_writes(pg_dsn: str) -> None:
    setup = _uow(pg_dsn)
    setup.conn.execute("CREATE TABLE counter (n INTEGER)")
    setup.conn.execute("INSERT INTO counter VALUES (0)")
    # on_begin takes the replicas' write lock, as the runtime's does
    writers = [Writer(_uow(pg_dsn), on_begin=lambda w: w.heads()) for _ in range(2)]

    def bump(w: PostgresUnitOfWork) -> None:
        row = w.conn.execute("SELECT n FROM counter").fetchone()
        assert row is not None
        w.conn.execute("UPDATE counter SET n = %s", (row[0] + 1,))

    futures = [writers[i % 2].submit(bump) for i in range(300)]
    for f in futures:
        f.result(30)
    for w in writers:
        w.close()
    assert setup.conn.execute("SELECT n FROM counter").fetchone() == (300,)
    assert sum(w.commits for w in writers) < 300  # grouped, not one commit per unit


def _runtime(tmp_path: Path, name: str, dsn: str, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.setenv("CONSENTRY_PG_UNDER_TEST", dsn)
    (tmp_path / "c.toml").write_text(
        '[storage]\nbackend = "postgres"\ndsn_env = "CONSENTRY_PG_UNDER_TEST"\nlease_seconds = 30\n'
        '[[destinations]]\nname = "lake"\ntype = "jsonl"\npurposes = ["analytics"]\n'
        f'path = "{tmp_path / "out"}"\n'
    )
    return Runtime(config_mod.load(tmp_path / "c.toml", data_dir=str(tmp_path / name)))


def _route(rt: Runtime, n: int) -> None:
    now = datetime.now(UTC)
    prepared = []
    for i in range(n):
        raw = msgspec.json.encode(
            {
                "type": "track",
                "event": "E",
                "userId": f"u-{i % 4}",
                "messageId": f"m-{i}",
                "context": {"consent": {"categoryPreferences": {"analytics": True}}},
            }
        )
        prepared.append(
            rt.preparer.prepare(
                decode_message(raw, index=i, prefix="$"), index=i, prefix="$", received_at=now
            )
        )
    rt.writer.call(rt.router.unit(prepared, [], source="s", received_at=now), timeout=30)


def test_a_replica_that_dies_mid_batch_only_delays_its_rows(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dying = _runtime(tmp_path, "a", pg_dsn, monkeypatch)
    other = _runtime(tmp_path, "b", pg_dsn, monkeypatch)
    try:
        _route(dying, 10)
        clock = [datetime.now(UTC).timestamp()]
        # replica A's lane claims a batch and dies before sending it
        reader = dying.backend.delivery.open_reader()
        taken = reader.due_rows("lake", clock[0], 6)
        assert len(taken) == 6
        reader.close()
        dying.close()

        forwarder = other.make_forwarder()
        forwarder._clock = lambda: clock[0]  # the lease runs out without waiting for it

        async def drain() -> None:
            await forwarder.start(deliver=False)
            lane_reader = other.backend.delivery.open_reader()
            try:
                assert await forwarder.drain_once("lake", lane_reader)  # the 4 not leased
                assert not await forwarder.drain_once("lake", lane_reader)  # leased by A
                # A's lease still holds: nothing is due before it ends
                due = lane_reader.next_due("lake")
                assert due is not None and due > clock[0] + 25
                clock[0] += 31
                assert await forwarder.drain_once("lake", lane_reader)
                assert not await forwarder.drain_once("lake", lane_reader)
            finally:
                lane_reader.close()
                await forwarder.stop()

        asyncio.run(drain())
        sent = [m["messageId"] for m in read_jsonl(tmp_path / "out")]
        assert sorted(sent) == sorted(f"m-{i}" for i in range(10))  # each once
        with psycopg.connect(pg_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
            outcomes = conn.execute(
                "SELECT count(*), count(DISTINCT batch) FROM delivery_outcomes"
                " WHERE outcome = 'delivered'"
            ).fetchone()
            flight = conn.execute("SELECT in_flight FROM forwarder_state").fetchall()
        assert outcomes == (10, 2) and flight == [(0,)]
    finally:
        other.close()


def test_rows_queued_by_one_replica_wake_the_others_forwarder(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LISTEN/NOTIFY: B's lanes deliver A's rows at once, not at their next poll."""
    a = _runtime(tmp_path, "a", pg_dsn, monkeypatch)
    b = _runtime(tmp_path, "b", pg_dsn, monkeypatch)
    try:
        forwarder = b.make_forwarder()
        forwarder._poll = 60.0  # only a notification can wake the idle lane in time

        async def run() -> float:
            await forwarder.start()
            try:
                await asyncio.sleep(0.5)  # the lane has found nothing and sleeps
                started = time.monotonic()
                await asyncio.to_thread(_route, a, 3)
                while len(read_jsonl(tmp_path / "out")) < 3:
                    assert time.monotonic() - started < 20, "never woken"
                    await asyncio.sleep(0.05)
                return time.monotonic() - started
            finally:
                await forwarder.stop()

        took = asyncio.run(run())
        assert took < 10, took
    finally:
        a.close()
        b.close()


def test_a_broken_session_fails_only_its_group_and_the_next_one_reconnects(
    pg_dsn: str,
) -> None:
    u = _uow(pg_dsn)
    u.conn.execute("CREATE TABLE t (v INTEGER)")
    writer = Writer(u)
    first = u.conn

    def cut(w: PostgresUnitOfWork) -> None:
        w.conn.execute("INSERT INTO t VALUES (1)")
        # the server goes away mid-transaction (as in a restart)
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (w.conn.info.backend_pid,))

    # the group's COMMIT meets the broken session: the group is answered with it
    with pytest.raises(psycopg.OperationalError):
        writer.call(cut, timeout=10)
    assert writer.failing is not None
    writer.call(lambda w: w.conn.execute("INSERT INTO t VALUES (3)"), timeout=10)
    assert writer.failing is None and u.conn is not first
    assert u.outbox.conn is u.conn and u.graph_store.conn is u.conn  # the stores followed
    # broken while idle: noticed at BEGIN, before anything ran, so nobody is failed
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (u.conn.info.backend_pid,))
    writer.call(lambda w: w.conn.execute("INSERT INTO t VALUES (4)"), timeout=10)
    writer.close()
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT array_agg(v ORDER BY v) FROM t").fetchone() == ([3, 4],)


def test_an_erasure_is_propagated_by_one_replica_at_a_time(pg_dsn: str) -> None:
    u = _uow(pg_dsn)
    with u.conn.transaction():
        u.erasures.add(one_id=7, one_ids=[7, 3], destination="hook", deleted=2, at=1.0)
    delivery = PostgresDelivery(pg_dsn, lease_s=30)
    first, second = delivery.open_reader(), delivery.open_reader()
    assert first.pending_erasures() == [(1, "hook", [7, 3])]
    assert second.pending_erasures() == []  # held by the first replica
    first.close()  # it died before finishing: the erasure is free again
    [(erasure_id, _, _)] = second.pending_erasures()
    writer = Writer(u)
    writer.call(delivery.finish_erasure(erasure_id, "deleted", 2, "k1: deleted 2", 5.0), timeout=10)
    second.close()
    third = delivery.open_reader()
    assert third.pending_erasures() == []  # finished: nobody propagates it again
    third.close()
    writer.close()
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute("SELECT status, remote_rows_deleted, done_at FROM erasures").fetchone()
    assert row == ("deleted", 2, 5.0)


def test_an_erasure_queued_elsewhere_is_fanned_out_by_a_running_replica(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`consentry erase`, or a replica that died before fanning out, leaves a
    pending erasure: a running replica's forwarder finds it and sends it."""
    rt = _runtime(tmp_path, "a", pg_dsn, monkeypatch)
    try:
        forwarder = rt.make_forwarder()
        forwarder._erasure_poll = 0.2

        def pending() -> list[tuple[Any, ...]]:
            with psycopg.connect(pg_dsn) as conn:
                return conn.execute("SELECT status FROM erasures").fetchall()

        async def run() -> list[tuple[Any, ...]]:
            await forwarder.start()
            try:
                await asyncio.sleep(0.5)  # the first look found nothing
                await asyncio.to_thread(
                    rt.writer.call,
                    lambda u: u.erasures.add(
                        one_id=9, one_ids=[9], destination="lake", deleted=0, at=time.time()
                    ),
                )
                deadline = time.monotonic() + 15
                while (rows := await asyncio.to_thread(pending)) == [("pending",)]:
                    assert time.monotonic() < deadline, "never fanned out"
                    await asyncio.sleep(0.1)
                return rows
            finally:
                await forwarder.stop()

        assert asyncio.run(run()) == [("deleted",)]  # jsonl rewrote its files without them
    finally:
        rt.close()
