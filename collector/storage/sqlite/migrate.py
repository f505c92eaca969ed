"""Versioned schema: ``schema/NNNN_name.sql`` files applied in order.

The database records the version it is at in ``PRAGMA user_version`` (0 for a
new file and for data directories written before versioning, at commit
0129e50). ``migrate`` applies every file numbered above it, each in its own
``BEGIN IMMEDIATE`` transaction together with the new version number, so a
crash leaves the database at one version or the next, and worker processes
starting together apply each file once (the version is re-read under the
write lock).

To change the schema, add the next file (``0002_what_it_does.sql``); never
edit one that was released.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from collector.errors import StorageError

Migration = tuple[int, str, str]  # (version, file name, SQL text)


def migrations(directory: Path | None = None) -> list[Migration]:
    """The schema files, ordered by their number (the part before ``_``)."""
    if directory is None:
        files = [
            (f.name, f.read_text())
            for f in resources.files("collector.storage.sqlite").joinpath("schema").iterdir()
            if f.name.endswith(".sql")
        ]
    else:
        files = [(f.name, f.read_text()) for f in directory.glob("*.sql")]
    out = sorted((int(name.split("_", 1)[0]), name, text) for name, text in files)
    numbers = [n for n, _, _ in out]
    if numbers != list(range(1, len(out) + 1)):
        raise StorageError(f"schema files must be numbered 1, 2, 3 ... without gaps: {numbers}")
    return out


def statements(script: str) -> list[str]:
    """Split a script into complete statements (comments and triggers are safe,
    unlike a split at every ``;``)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise StorageError(f"incomplete SQL statement at the end of a schema file: {buf[:80]!r}")
    return out


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _share_decision_bodies(conn: sqlite3.Connection) -> None:
    """Before version 1 databases could hold decisions with their body inline:
    keep those rows as ``decisions_v1`` (still read by ``audit why``)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(decisions)")}
    if "body" in columns:
        conn.execute("ALTER TABLE decisions RENAME TO decisions_v1")


def _state_columns(conn: sqlite3.Connection) -> None:
    """consent_state's scope and notice columns. Data directories written
    between 0129e50 and versioning may have them already (ALTER TABLE has no
    IF NOT EXISTS): add the missing ones. State is derived, so old rows have
    no scope and no notice version."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(consent_state)")}
    for column, decl in (("scope", "TEXT NOT NULL DEFAULT ''"), ("notice", "TEXT")):
        if column not in have:
            conn.execute(f"ALTER TABLE consent_state ADD COLUMN {column} {decl}")


# Steps SQL cannot say, run before the file of the same version.
BEFORE: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _share_decision_bodies,
    4: _state_columns,
}


def migrate(conn: sqlite3.Connection, available: Sequence[Migration] | None = None) -> int:
    """Bring the schema to the newest version; returns the version reached.
    Raises StorageError when the database is newer than this code."""
    steps = migrations() if available is None else list(available)
    newest = steps[-1][0] if steps else 0
    if version(conn) == newest:
        return newest
    for number, _name, script in steps:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = version(conn)
            if current > newest:
                raise StorageError(
                    f"the database is at schema version {current}, newer than this"
                    f" Consentry knows ({newest}): upgrade Consentry"
                )
            if current >= number:
                conn.execute("COMMIT")
                continue
            before = BEFORE.get(number)
            if before is not None:
                before(conn)
            for statement in statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version(conn)
