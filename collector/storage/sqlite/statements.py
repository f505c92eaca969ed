"""``portable.Statements`` on a SQLite connection (``?`` placeholders as they are)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


class SqliteStatements:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, args).fetchall()

    def change(self, sql: str, args: Sequence[object] = ()) -> int:
        return self._conn.execute(sql, args).rowcount
