"""An on-disk FIFO of encoded messages (SQLite), for the ``spool`` overflow
policy, owned by one process at a time.

``Spool`` is one file. Messages are stored in chunks (one row per up to
``chunk_items`` messages, as a msgpack list of ``[seq, message]``), so spilling
a burst costs a few row writes, not one per message. Rows are keyed by the
first sequence number they hold: whatever order chunks are written in
(overflow spills, failed batches put back), they are read back in the order the
calls were made. Shared by the caller's thread and the sender thread, hence one
lock.

``SpoolFamily`` gives every process its own file (``<base>.d/<pid>-<random>.db``)
and holds an exclusive ``flock(2)`` on its ``.lock`` companion for the life of
the process; the kernel releases it when the process dies, however it dies. A
live process adopts every file of the family whose lock it can take (its owner
is gone, or shut down with events still spooled) and drains it, then deletes
it: one adopter at a time, so each spooled event is sent by one process. A
spool left at ``<base>`` itself by an earlier version is adopted the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import sqlite3
import threading
from pathlib import Path

import msgspec

log = logging.getLogger("consentry.sdk")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(list[tuple[int, bytes]]).decode
Item = tuple[int, bytes]
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spool_chunks"
    " (seq INTEGER PRIMARY KEY, last INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL)"
)


class Spool:
    """One spool file. ``create=False`` opens an existing file only
    (``FileNotFoundError`` otherwise)."""

    def __init__(
        self,
        path: Path,
        *,
        chunk_items: int = 500,
        chunk_bytes: int = 256 * 1024,
        create: bool = True,
    ) -> None:
        self.path = path
        self._chunk_items = chunk_items
        self._chunk_bytes = chunk_bytes
        self._lock = threading.Lock()
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        elif not path.exists():
            raise FileNotFoundError(path)
        self._conn = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)
        self._count = self._recount()

    def _recount(self) -> int:
        return int(self._conn.execute("SELECT coalesce(sum(n), 0) FROM spool_chunks").fetchone()[0])

    def __len__(self) -> int:
        return max(self._count, 0)

    def max_seq(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT max(last) FROM spool_chunks").fetchone()
        return int(row[0] or 0)

    def _chunks(self, items: list[Item]) -> list[tuple[int, int, int, bytes]]:
        rows = []
        start = 0
        size = 0
        for i, (_, data) in enumerate(items):
            if i > start and (
                i - start >= self._chunk_items or size + len(data) > self._chunk_bytes
            ):
                chunk = items[start:i]
                rows.append((chunk[0][0], chunk[-1][0], len(chunk), _encode(chunk)))
                start, size = i, 0
            size += len(data)
        chunk = items[start:]
        rows.append((chunk[0][0], chunk[-1][0], len(chunk), _encode(chunk)))
        return rows

    def put(self, items: list[Item]) -> None:
        """Store messages (in call order, as the queue holds them)."""
        if not items:
            return
        rows = self._chunks(sorted(items))
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT INTO spool_chunks (seq, last, n, data) VALUES (?, ?, ?, ?)", rows
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._count += len(items)

    def head(self, limit: int, max_bytes: int) -> list[Item]:
        """The oldest whole chunks, up to ``limit`` messages and ``max_bytes``
        (always at least one chunk)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT data FROM spool_chunks ORDER BY seq LIMIT ?", (max(1, limit // 50),)
            ).fetchall()
            if not rows and self._count:
                self._count = self._recount()  # never spin on a count the file disagrees with
        out: list[Item] = []
        size = 0
        for (blob,) in rows:
            chunk = _decode(blob)
            chunk_size = sum(len(d) + 1 for _, d in chunk)
            if out and (len(out) + len(chunk) > limit or size + chunk_size > max_bytes):
                break
            out.extend(chunk)
            size += chunk_size
        return out

    def delete(self, seqs: list[int]) -> None:
        """Forget these messages (delivered, or dropped with a reason); the other
        messages of their chunks stay, in order."""
        if not seqs:
            return
        gone = set(seqs)
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                rows = self._conn.execute(
                    "SELECT seq, data FROM spool_chunks WHERE seq <= ? AND last >= ?",
                    (max(gone), min(gone)),
                ).fetchall()
                removed = 0
                for seq, blob in rows:
                    chunk = _decode(blob)
                    keep = [item for item in chunk if item[0] not in gone]
                    removed += len(chunk) - len(keep)
                    self._conn.execute("DELETE FROM spool_chunks WHERE seq = ?", (seq,))
                    if keep:
                        self._conn.execute(
                            "INSERT INTO spool_chunks (seq, last, n, data) VALUES (?, ?, ?, ?)",
                            (keep[0][0], keep[-1][0], len(keep), _encode(keep)),
                        )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._count -= removed

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def abandon(self) -> None:
        """In a forked child: forget this spool without closing its connection
        (closing it here could checkpoint or remove the parent's WAL)."""
        _inherited.append(self._conn)


_inherited: list[sqlite3.Connection] = []


def _remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{db}{suffix}")


class OwnedSpool(Spool):
    """A spool file held under an exclusive ``flock`` on ``<path>.lock``."""

    def __init__(self, path: Path, lock_fd: int, *, create: bool) -> None:
        self.lock_fd = lock_fd
        try:
            super().__init__(path, create=create)
        except BaseException:
            os.close(lock_fd)
            raise

    def release(self) -> None:
        """Close; delete the files if empty, else leave them for adoption."""
        empty = len(self) == 0
        self.close()
        if empty:
            _remove(self.path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}.lock")
        os.close(self.lock_fd)

    def abandon(self) -> None:
        super().abandon()
        os.close(self.lock_fd)  # the parent's flock stays: it holds the same open file


def _try_lock(lock_path: Path, *, create: bool) -> int | None:
    """An fd holding an exclusive flock on ``lock_path``, or None if another
    live process holds it (or the file was removed meanwhile)."""
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        fd = os.open(lock_path, flags, 0o600)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(lock_path).st_ino:
            raise FileNotFoundError(lock_path)  # removed by its last adopter meanwhile
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        return None
    return fd


class SpoolFamily:
    """The spool files that share a base path (one per process)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.dir = base.with_name(base.name + ".d")

    def create_own(self) -> OwnedSpool:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{os.getpid()}-{secrets.token_hex(4)}.db"
        fd = _try_lock(Path(f"{path}.lock"), create=True)
        assert fd is not None, "a fresh random lock file cannot be held by anyone else"
        return OwnedSpool(path, fd, create=True)

    def adopt(self, skip: set[Path]) -> list[OwnedSpool]:
        """Lock and open every spool of the family whose owner is gone."""
        candidates = [(self.base, True)] if self.base.is_file() else []
        if self.dir.is_dir():
            candidates += [
                (Path(str(lock)[: -len(".lock")]), False)
                for lock in sorted(self.dir.glob("*.lock"))
            ]
        adopted: list[OwnedSpool] = []
        for db, legacy in candidates:
            if db in skip:
                continue
            fd = _try_lock(Path(f"{db}.lock"), create=legacy)
            if fd is None:
                continue
            try:
                adopted.append(OwnedSpool(db, fd, create=False))
            except FileNotFoundError:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{db}.lock")  # a lock whose spool is gone
            except sqlite3.Error:
                log.exception("spool %s unreadable; left in place", db)
            else:
                log.info("adopted spool %s (%d messages)", db.name, len(adopted[-1]))
        return adopted
