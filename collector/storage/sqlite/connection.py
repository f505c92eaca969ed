"""Opening Consentry's SQLite database.

One file (``consentry.db`` in the data directory) in WAL mode. Writers share
it across worker processes; see ``writer.py`` for how they take turns.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector.storage.sqlite.migrate import migrate
from collector.storage.sqlite.unit import SqliteUnitOfWork

DB_NAME = "consentry.db"
WRITER_LOCK = "consentry.db-writer.lock"
BACKSTOP_PAGES = 16384  # 64 MB of WAL


WAL_SIZE_LIMIT = 4 * 1024 * 1024  # bytes (issue 19 item 2)


def connect(
    path: Path | str,
    *,
    synchronous: str = "full",
    readonly: bool = False,
    upgrade: bool = False,
) -> SqliteUnitOfWork:
    """A connection in autocommit mode (transactions are explicit), WAL, a
    256 MB page cache and 4 GB of memory-mapped reads.

    ``synchronous``: ``"full"`` (fsync at every commit) or ``"normal"``.
    ``readonly``: refuse writes on this connection (``PRAGMA query_only``).
    ``upgrade``: bring the schema to the newest version (see ``migrate``)."""
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=30.0,
        cached_statements=512,
        factory=SqliteUnitOfWork,
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten with zeros, not left in free pages until
    # reused: erasure must leave nothing linkable on disk (issue 14 §4). Some
    # SQLite builds default to it; others do not.
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA cache_size=-262144")
    conn.execute("PRAGMA mmap_size=4294967296")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    else:
        # Checkpoints run on the Checkpointer's thread, outside the write lock; the
        # writer only checkpoints itself if that thread falls far behind.
        conn.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        # When the WAL starts over, a file grown past this by a spike (or while a
        # full disk refused commits) is cut back: it does not keep its peak size.
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        if upgrade:
            migrate(conn)
    return conn


def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection to an existing database (an auditor's copy);
    raises sqlite3.OperationalError when the file is missing."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def tune(conn: sqlite3.Connection, *, cache_mb: int = 256, mmap_mb: int = 4096) -> None:
    """A large page cache and memory-mapped reads keep lookups flat as the graph
    grows: the b-tree's inner pages stay resident, only leaves are read."""
    conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    conn.execute(f"PRAGMA mmap_size={mmap_mb * 1024 * 1024}")


def open_database(path: Path | str) -> SqliteUnitOfWork:
    """A standalone connection with the schema at the newest version: for
    tools, benchmarks and tests that use a store without a running collector
    (``":memory:"`` works): ``Graph(open_database(p).graph_store)``."""
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, factory=SqliteUnitOfWork
    )
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
        tune(conn)
    migrate(conn)
    return conn
