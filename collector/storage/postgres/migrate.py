"""Versioned schema for PostgreSQL: ``schema/NNNN_name.sql`` applied in order.

The version reached is recorded in ``consentry_schema`` (one row per applied
file, with when it was applied). ``migrate`` runs under a session-level
``pg_advisory_lock`` (``MIGRATE_LOCK``), so replicas starting at the same
moment apply each file exactly once: the second waits for the lock, then
reads the version the first reached and has nothing left to do. Each file
runs in its own transaction together with its version row, so a crash leaves
the database at one version or the next (PostgreSQL DDL is transactional).

To change the schema, add the next file; never edit one that was released.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import psycopg

from collector.errors import StorageError

Migration = tuple[int, str, str]  # (version, file name, SQL text)

# pg_advisory_lock key (bigint) held while migrating: "CONSENTRY" MIGRATE.
MIGRATE_LOCK = 0x436F6E73_6D696772

_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS consentry_schema ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
)


def migrations() -> list[Migration]:
    """The schema files shipped with Consentry, ordered by number; raises
    StorageError when the numbering has a gap."""
    files = [
        (f.name, f.read_text())
        for f in resources.files("collector.storage.postgres").joinpath("schema").iterdir()
        if f.name.endswith(".sql")
    ]
    out = sorted((int(name.split("_", 1)[0]), name, text) for name, text in files)
    numbers = [n for n, _, _ in out]
    if numbers != list(range(1, len(out) + 1)):
        raise StorageError(f"schema files must be numbered 1, 2, 3 ... without gaps: {numbers}")
    return out


def version(conn: psycopg.Connection[Any]) -> int:
    """The schema version of the database (0 when never migrated)."""
    row = conn.execute("SELECT to_regclass('consentry_schema') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM consentry_schema").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[Any], available: Sequence[Migration] | None = None) -> int:
    """Bring the schema to the newest version; returns the version reached.

    ``conn`` must be in autocommit mode (each file gets its own transaction).
    Raises StorageError when the database is newer than this code."""
    if not conn.autocommit:
        raise StorageError("migrate needs a connection in autocommit mode")
    steps = migrations() if available is None else list(available)
    newest = steps[-1][0] if steps else 0
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
    try:
        current = version(conn)
        if current > newest:
            raise StorageError(
                f"the database is at schema version {current}, newer than this"
                f" Consentry knows ({newest}): upgrade Consentry"
            )
        for number, name, script in steps:
            if number <= current:
                continue
            with conn.transaction():
                conn.execute(_VERSION_TABLE)
                conn.execute(script.encode())  # several statements: simple query protocol
                conn.execute(
                    "INSERT INTO consentry_schema (version, name) VALUES (%s, %s)", (number, name)
                )
        return version(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
