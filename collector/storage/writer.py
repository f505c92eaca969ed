"""The group-commit writer, for either backend.

All writes of a process go through one thread that owns the write connection.
It takes whatever work is queued, lets units plan what needs no database
(before the lock), takes the write lock that the worker processes share, runs
the units in one transaction (a unit that fails is answered with its error and
the others are run again without it), commits once, and only then answers the
callers. Under load many requests share one fsync; nothing is acknowledged
before it is durable; the event loop never blocks on the database.

The transaction is the unit of work's own (``storage.ports.WriteUnitOfWork``:
``begin``/``commit``/``rollback``): ``BEGIN IMMEDIATE`` on SQLite, where the
worker processes of one machine also share a ``flock`` (``lock_path``); a
plain ``BEGIN`` on PostgreSQL, where ``on_begin`` takes the replicas' advisory
lock (``UnitOfWork.heads``). A PostgreSQL unit of work whose connection broke
(the server restarted) reconnects in ``begin()``: the group that found it
broken is answered with the error (``failing`` says why, for ``/readyz``) and
the next group runs on a new connection.

A unit of work is any callable taking the unit of work (the connection with
its stores). A unit may also have ``plan()`` (run before the write lock) and
``size`` (events it carries); the pipeline's ``RouteUnit`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Generic, TypeVar

from collector.storage.ports import WriteUnitOfWork

log = logging.getLogger("consentry.collector")
T = TypeVar("T")
U = TypeVar("U", bound=WriteUnitOfWork)
Work = Callable[[Any], Any]
_STOP = object()


_LATE_UNITS = 64


def _plan(group: list[tuple[Work, Any]]) -> None:
    for work, _ in group:
        plan = getattr(work, "plan", None)
        if plan is not None:
            try:
                plan()
            except Exception:  # a unit without a plan is routed in full
                log.exception("planning a write unit failed")


Target = Future[Any] | tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


def _answer(outcomes: list[tuple[Target, bool, Any]]) -> None:
    """Hand units their results: a thread's Future directly; asyncio futures in
    one call_soon_threadsafe per event loop for the whole group, rather than a
    wake-up of the loop per unit."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for target, ok, value in outcomes:
        if isinstance(target, Future):
            if ok:
                target.set_result(value)
            else:
                target.set_exception(value)
        else:
            by_loop.setdefault(target[0], []).append((target[1], ok, value))
    for loop, items in by_loop.items():
        # RuntimeError: the loop is closed, nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, items)


def _settle(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in items:
        if future.done():  # the request was cancelled meanwhile
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Writer(Generic[U]):
    """One thread committing the queued units of work in groups on ``conn``
    (owned: ``close()`` closes it). ``lock_path``: a file that processes
    sharing a SQLite database ``flock`` around each transaction (None: no lock,
    as on PostgreSQL)."""

    def __init__(
        self,
        conn: U,
        *,
        max_group: int = 512,
        after_commit: Callable[[], None] | None = None,
        before_commit: Callable[[U], None] | None = None,
        on_begin: Callable[[U], object] | None = None,
        lock_path: Path | None = None,
    ) -> None:
        self._conn = conn
        self._on_begin = on_begin
        # Several worker processes share the database. SQLite's own busy handler
        # polls with sleeps of up to 100 ms; a blocking flock hands the write
        # lock over the moment its holder commits.
        self._lock_fd = (
            os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600) if lock_path is not None else None
        )
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._carry: Any = None
        self._max_group = max_group
        self._after_commit = after_commit
        self._before_commit = before_commit
        self._on_rollback: list[Callable[[], None]] = []
        self._on_recovered: list[Callable[[], None]] = []
        # Why the last group failed to commit (None once a group commits again):
        # /readyz reports it, e.g. "OperationalError: database or disk is full".
        self.failing: str | None = None
        self.commits = 0
        self.units = 0
        self._thread = threading.Thread(target=self._run, name="consentry-writer", daemon=True)
        self._thread.start()

    def on_rollback(self, fn: Callable[[], None]) -> None:
        """Called when a group fails to commit, so in-memory heads can be reloaded."""
        self._on_rollback.append(fn)

    def on_recovered(self, fn: Callable[[], None]) -> None:
        """Called (on the writer thread, write lock held: do not block) when a
        group commits after one failed, e.g. once a full disk has room again."""
        self._on_recovered.append(fn)

    def submit(self, work: Callable[[U], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((work, future))
        return future

    async def run(self, work: Callable[[U], T]) -> T:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[T] = loop.create_future()
        self._queue.put((work, (loop, answer)))
        return await answer

    def call(self, work: Callable[[U], T], timeout: float | None = None) -> T:
        return self.submit(work).result(timeout)

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)

    def _run(self) -> None:
        while True:
            item, self._carry = self._carry or self._queue.get(), None
            if item is _STOP:
                return
            group = [item]
            stop = self._drain(group, self._max_group)
            _plan(group)
            if self._lock_fd is None:
                self._commit_locked(group)
            else:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
                try:
                    # Units that arrived while we waited for another worker's
                    # commit join this one: single messages come a few per group,
                    # and each group has a fixed cost. Only small ones, since they
                    # are planned under the lock.
                    if not stop and len(group) < _LATE_UNITS:
                        late: list[tuple[Work, Any]] = []
                        stop = self._drain(late, _LATE_UNITS - len(group), small=True)
                        _plan(late)
                        group += late
                    self._commit_locked(group)
                finally:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            if stop:
                return

    def _drain(self, group: list[tuple[Work, Any]], room: int, *, small: bool = False) -> bool:
        """Move queued units into ``group``; True if the stop marker was seen.
        ``small``: only single events; a larger unit waits for the next group."""
        while room > 0:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is _STOP:
                return True
            if small and getattr(nxt[0], "size", 1) > 1:
                self._carry = nxt  # the next group's first unit, planned before the lock
                return False
            group.append(nxt)
            room -= 1
        return False

    def _commit_locked(self, group: list[tuple[Work, Target]]) -> None:
        """Run the units in one transaction. A unit that raises is answered with
        its exception and the group is run again without it: no per-unit
        SAVEPOINT, whose two statements per unit would each hand the GIL back
        and forth while we hold the write lock (failures are rare; this is not)."""
        conn = self._conn
        pending = [
            (w, f)
            for w, f in group
            if not isinstance(f, Future) or f.set_running_or_notify_cancel()
        ]
        while True:
            values: list[Any] = []
            failed: tuple[int, BaseException] | None = None
            try:
                conn.begin()
                if self._on_begin is not None:
                    # Another process may have written since our last group.
                    self._on_begin(conn)
                for i, (work, _) in enumerate(pending):
                    try:
                        values.append(work(conn))
                    except Exception as exc:
                        failed = (i, exc)
                        break
                if failed is None:
                    if self._before_commit is not None:
                        self._before_commit(conn)
                    conn.commit()
            except BaseException as exc:
                log.exception("group commit failed; %d units rejected", len(pending))
                self.failing = f"{type(exc).__name__}: {exc}"
                self._rollback()
                _answer([(target, False, exc) for _, target in pending])
                return
            if failed is None:
                break
            index, error = failed
            log.error("a write unit failed; its neighbours are retried", exc_info=error)
            self._rollback()
            _answer([(pending[index][1], False, error)])
            del pending[index]
        self.commits += 1
        self.units += len(pending)
        if self.failing is not None:
            self.failing = None
            for fn in self._on_recovered:
                try:
                    fn()
                except Exception:
                    log.exception("recovery hook failed")
        _answer([(target, True, value) for (_, target), value in zip(pending, values, strict=True)])
        if self._after_commit is not None:
            self._after_commit()

    def _rollback(self) -> None:
        # The thread must survive to answer the next group, and every hook must
        # run even when the connection is gone (a hook that reads the database
        # fails then; the ones that only drop caches must still drop them).
        try:
            if self._conn.in_transaction:
                self._conn.rollback()
        except Exception:
            log.exception("rollback failed")
        for fn in self._on_rollback:
            try:
                fn()
            except Exception:
                log.exception("rollback hook failed")
