"""The writer's group commit on a real SQLite file: a failing unit costs only
itself, rows routed in a group are erased with it, and two writers (as in two
worker processes) never lose each other's writes."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector import config as config_mod
from collector.pipeline.decode import decode_message
from collector.runtime import Runtime
from collector.storage.sqlite.checkpointer import Checkpointer
from collector.storage.sqlite.connection import connect
from collector.storage.writer import Writer

CONFIG = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
"""


def _hold(writer: Writer) -> threading.Event:
    """Keep the writer busy until the returned event is set, so the units
    submitted meanwhile are committed together as one group."""
    release = threading.Event()
    started = threading.Event()

    def block(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(10)

    writer.submit(block)
    assert started.wait(10)
    return release


def test_a_failing_unit_costs_only_itself(tmp_path: Path) -> None:
    conn = connect(tmp_path / "w.db")
    conn.execute("CREATE TABLE t (v INTEGER)")
    rollbacks: list[int] = []
    writer = Writer(conn)
    writer.on_rollback(lambda: rollbacks.append(1))
    release = _hold(writer)

    def insert(v: int, fail: bool = False) -> Any:
        def work(c: sqlite3.Connection) -> int:
            c.execute("INSERT INTO t VALUES (?)", (v,))
            if fail:
                raise ValueError("bad unit")
            return v

        return work

    futures: list[Future[int]] = [writer.submit(insert(v, fail=v == 3)) for v in range(1, 6)]
    release.set()
    assert [f.result(10) for f in futures if f is not futures[2]] == [1, 2, 4, 5]
    with pytest.raises(ValueError, match="bad unit"):
        futures[2].result(10)
    assert rollbacks
    writer.close()
    rows = sorted(v for (v,) in sqlite3.connect(tmp_path / "w.db").execute("SELECT v FROM t"))
    assert rows == [1, 2, 4, 5]


def test_two_writers_share_the_database_without_losing_writes(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE counter (n INTEGER)")
    setup.execute("INSERT INTO counter VALUES (0)")
    setup.commit()
    setup.close()
    lock = tmp_path / "w.lock"
    writers = [Writer(connect(path), lock_path=lock) for _ in range(2)]

    def bump(c: sqlite3.Connection) -> None:
        (n,) = c.execute("SELECT n FROM counter").fetchone()
        c.execute("UPDATE counter SET n = ?", (n + 1,))

    futures = [writers[i % 2].submit(bump) for i in range(400)]
    for f in futures:
        f.result(30)
    for w in writers:
        w.close()
    assert sqlite3.connect(path).execute("SELECT n FROM counter").fetchone()[0] == 400


def test_the_wal_starts_over_while_two_writers_commit_back_to_back(tmp_path: Path) -> None:
    """SQLite starts the WAL over only for a writer that begins when every frame
    is copied back; with two writers always committing, a checkpoint without the
    write lock never leaves it so, and the WAL grew until a writer's COMMIT ran
    the backstop checkpoint itself (seconds of copying, with the lock held)."""
    path = tmp_path / "w.db"
    lock = tmp_path / "w.lock"
    setup = connect(path)
    setup.execute("CREATE TABLE t (v BLOB)")
    setup.close()
    writers = [Writer(connect(path), lock_path=lock) for _ in range(2)]
    checkpointer = Checkpointer(path, lock_path=lock, every=0.05)
    wal = Path(f"{path}-wal")
    row = b"x" * 4000  # one page per row: the WAL grows by a frame per insert
    stop = threading.Event()

    def insert(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t VALUES (?)", (row,))

    counts = [0, 0]

    def feed(i: int) -> None:
        while not stop.is_set():
            writers[i].submit(insert).result(30)
            counts[i] += 1

    threads = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    # Until enough was written to prove something, however slow a shared
    # machine makes the writers (not a fixed time).
    deadline = time.monotonic() + 60
    while (checkpointer.rounds < 20 or sum(counts) * 4096 <= 5 * 2**20) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(30)
    checkpointer.close()
    written = sum(counts) * 4096
    size = wal.stat().st_size
    for w in writers:
        w.close()
    assert checkpointer.rounds >= 20
    assert written > 4 * 2**20, f"only {written} bytes written: the test proves nothing"
    # The WAL file keeps its largest size; bounded means it was started over.
    assert size < written / 3, (size, written)


def test_rows_routed_in_a_group_are_erased_with_it(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(CONFIG)
    rt = Runtime(config_mod.load(tmp_path / "c.toml", data_dir=str(tmp_path / "data")))
    try:
        now = datetime.now(UTC)
        raw = msgspec.json.encode(
            {
                "type": "track",
                "event": "E",
                "userId": "erase-me",
                "messageId": "m-1",
                "context": {"consent": {"categoryPreferences": {"analytics": True}}},
            }
        )
        prepared = [
            rt.preparer.prepare(
                decode_message(raw, index=0, prefix="$"), index=0, prefix="$", received_at=now
            )
        ]
        identifiers = rt.preparer.identifiers_for("erase-me", None, None, "$")
        # Same person first seen, routed and erased in one group commit.
        release = _hold(rt.writer)
        routed = rt.writer.submit(
            lambda c: rt.router.route(c, prepared, [], source="s", received_at=now)
        )
        erased = rt.writer.submit(lambda c: rt.router.erase(c, identifiers, now=now))
        release.set()
        assert routed.result(10).routed == {"lake": 1}
        assert erased.result(10)["outbox_rows_deleted"] == {"lake": 1}
        count = rt.writer.call(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0])
        assert count == 0
    finally:
        rt.close()


def test_a_plan_made_before_a_withdrawal_in_the_same_group_is_not_used(tmp_path: Path) -> None:
    """RouteUnit plans a returning person's event from caches before the group
    runs; a withdrawal earlier in the same group must still deny it."""
    (tmp_path / "c.toml").write_text(CONFIG)
    rt = Runtime(config_mod.load(tmp_path / "c.toml", data_dir=str(tmp_path / "data")))
    try:

        def event(message_id: str, consent: bool) -> Any:
            msg: dict[str, object] = {
                "type": "track",
                "event": "E",
                "userId": "planned",
                "messageId": message_id,
            }
            if consent:
                msg["context"] = {"consent": {"categoryPreferences": {"analytics": True}}}
            now = datetime.now(UTC)
            prepared = rt.preparer.prepare(
                decode_message(msgspec.json.encode(msg), index=0, prefix="$"),
                index=0,
                prefix="$",
                received_at=now,
            )
            return rt.router.unit([prepared], [], source="s", received_at=now)

        for i in range(3):  # granted, then cached and known to change nothing
            assert rt.writer.call(event(f"warm-{i}", True)).routed == {"lake": 1}
        identifiers = rt.preparer.identifiers_for("planned", None, None, "$")
        now = datetime.now(UTC)
        release = _hold(rt.writer)
        withdrawn = rt.writer.submit(
            lambda c: rt.router.record_consent(
                c,
                identifiers,
                purposes={"analytics": False},
                jurisdiction=None,
                given_at=now,
                received_at=now,
                legal_basis="consent",
                method="preferences",
                pi_categories=(),
                recipients=(),
                separate=False,
                consenter="self",
                notice_id=None,
                notice_version=None,
                signal=None,
            )
        )
        late = rt.writer.submit(event("after-withdrawal", False))
        release.set()
        withdrawn.result(10)
        assert late.result(10).denied == {"lake": 1}
        rows = rt.writer.call(
            lambda c: c.execute(
                "SELECT count(*) FROM outbox WHERE message_id = 'after-withdrawal'"
            ).fetchone()[0]
        )
        assert rows == 0
    finally:
        rt.close()


class _Sized:
    """A unit that says how many events it carries (RouteUnit does)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?)", (self.size,))
        return self.size


@pytest.mark.parametrize(("late_size", "commits"), [(1, 1), (100, 2)])
def test_single_events_that_queue_behind_another_workers_commit_join_the_group(
    tmp_path: Path, late_size: int, commits: int
) -> None:
    path, lock = tmp_path / "w.db", tmp_path / "w.lock"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (v INTEGER)")
    setup.commit()
    setup.close()
    other, ours = Writer(connect(path), lock_path=lock), Writer(connect(path), lock_path=lock)
    release = _hold(other)  # the other worker holds the shared write lock
    first = ours.submit(_Sized(1))
    time.sleep(0.3)  # ours has formed its group and waits for the lock
    late = [ours.submit(_Sized(late_size)) for _ in range(4)]
    release.set()
    assert first.result(10) == 1
    assert [f.result(10) for f in late] == [late_size] * 4
    # Single events join the waiting group; a batch waits for the next one.
    assert ours.commits == commits
    other.close()
    ours.close()
