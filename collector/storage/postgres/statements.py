"""``portable.Statements`` on a psycopg connection: the portable stores' ``?``
placeholders become ``%s`` (their SQL has no other ``?`` or ``%``)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import psycopg


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresStatements:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return list(self._conn.execute(_pg(sql), args).fetchall())

    def change(self, sql: str, args: Sequence[object] = ()) -> int:
        return self._conn.execute(_pg(sql), args).rowcount
