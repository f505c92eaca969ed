"""Moving a single-node data directory's SQLite database into PostgreSQL
(``consentry migrate-storage --from sqlite --to postgres``).

Every table both schemas have is copied with ``COPY`` (the columns both
have, in the same order), in one PostgreSQL transaction: the move is all or
nothing. The dedupe window's keys (SQLite keeps them in generations) become
rows of ``dedupe_seen`` stamped with the time of the move, so a retry of a
message acknowledged just before the move is still recognized. Identity
sequences are set past the largest copied id. The ledger is then verified on
PostgreSQL (chain and signed checkpoints, with the keys stored beside them)
and its head must equal SQLite's; otherwise the transaction is rolled back.

The target must be migrated and empty (no people, no ledger records):
StorageError otherwise.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from collector.errors import StorageError
from collector.storage.postgres.ledger import PostgresLedgerStore
from collector.storage.sqlite.ledger import SqliteLedgerStore
from consent.ledger import verify

Conn = psycopg.Connection[Any]
# Tables not copied as they are: SQLite's internals, the dedupe generations
# (mapped to dedupe_seen) and pre-versioning decisions (decisions_v1, read-only).
_SKIP = {"sqlite_sequence", "dedupe_current", "dedupe_previous", "dedupe_recent", "dedupe_state"}
# Kept by triggers on outbox inserts: copied after the outbox, replacing what
# the trigger counted for the copied rows (SQLite's counts include delivered events).
_LAST = ("subject_destinations",)
_DEDUPE = ("dedupe_current", "dedupe_previous", "dedupe_recent")


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What moved: rows per table, ledger records verified and the head seq."""

    rows: dict[str, int]
    ledger_records: int
    head_seq: int


def _columns_sqlite(src: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in src.execute(f'PRAGMA table_info("{table}")')]


def _columns_pg(dst: Conn, table: str) -> list[str]:
    rows = dst.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [str(r[0]) for r in rows]


def _copy(src: sqlite3.Connection, dst: Conn, table: str) -> int:
    have = set(_columns_pg(dst, table))
    columns = [c for c in _columns_sqlite(src, table) if c in have]
    if not columns:
        return 0
    names = ", ".join(f'"{c}"' for c in columns)
    n = 0
    with dst.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in src.execute(f'SELECT {names} FROM "{table}"'):
            copy.write_row(row)
            n += 1
    return n


def _reset_identities(dst: Conn) -> None:
    rows = dst.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND is_identity = 'YES'"
    ).fetchall()
    for table, column in rows:
        dst.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),"
            f' coalesce((SELECT max("{column}") FROM "{table}"), 0) + 1, false)'
        )


def transfer(sqlite_path: Path, dst: Conn, *, now: float | None = None) -> TransferReport:
    """Copy the SQLite database at ``sqlite_path`` into the migrated, empty
    PostgreSQL database on ``dst`` (autocommit connection); raises
    StorageError when the target holds data or the moved ledger does not
    verify (nothing is kept then)."""
    src = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        source_check = verify(SqliteLedgerStore(src))
        if not source_check.ok:
            raise StorageError(f"the SQLite ledger does not verify: {source_check.problem}")
        with dst.transaction():
            busy = dst.execute(
                "SELECT (SELECT count(*) FROM id_people) + (SELECT count(*) FROM consent_ledger)"
            ).fetchone()
            if busy is None or busy[0]:
                raise StorageError("the PostgreSQL database already holds data: refusing to mix")
            dst.execute("DELETE FROM id_epoch")
            tables = [
                str(r[0])
                for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if r[0] not in _SKIP
            ]
            targets = {
                str(r[0])
                for r in dst.execute(
                    "SELECT table_name FROM information_schema.tables"
                    " WHERE table_schema = current_schema()"
                )
            }
            rows = {t: _copy(src, dst, t) for t in tables if t in targets and t not in _LAST}
            for table in _LAST:  # the outbox trigger counted the copied rows: take SQLite's
                if table in tables and table in targets:
                    dst.execute(f'DELETE FROM "{table}"')
                    rows[table] = _copy(src, dst, table)
            rows["dedupe_seen"] = _dedupe(src, dst, time.time() if now is None else now)
            if "id_epoch" not in rows or rows["id_epoch"] == 0:
                dst.execute("INSERT INTO id_epoch (id, n) VALUES (1, 0)")
            _reset_identities(dst)
            moved = verify(PostgresLedgerStore(dst))
            if not moved.ok or moved.records != source_check.records:
                raise StorageError(f"the moved ledger does not verify: {moved.problem}")
            src_head = SqliteLedgerStore(src).head()
            dst_head = PostgresLedgerStore(dst).head()
            if src_head != dst_head:
                raise StorageError("the moved ledger's head differs from SQLite's")
        return TransferReport(rows, moved.records, 0 if dst_head is None else dst_head[0])
    finally:
        src.close()


def _dedupe(src: sqlite3.Connection, dst: Conn, now: float) -> int:
    have = {str(r[0]) for r in src.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    keys: set[int] = set()
    for table in _DEDUPE:
        if table in have:
            keys.update(int(r[0]) for r in src.execute(f"SELECT k FROM {table}"))
    if keys:
        dst.execute(
            "INSERT INTO dedupe_seen (k, seen_at) SELECT unnest(%s::bigint[]), %s"
            " ON CONFLICT (k) DO NOTHING",
            (sorted(keys), now),
        )
    return len(keys)
