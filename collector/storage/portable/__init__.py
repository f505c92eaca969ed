"""Stores whose SQL means the same on SQLite and PostgreSQL, written once.

Their statements use ``?`` placeholders and only what both dialects read the
same way (``ON CONFLICT ... DO UPDATE``, ``CASE``, ``LIMIT``); orderings that
would depend on a collation are done in Python. Each backend hands them a
``Statements`` over its connection: ``collector.storage.sqlite.statements``
and ``collector.storage.postgres.statements`` (which turns ``?`` into ``%s``).

- ``dsr.py``: ``SqlDsrStore`` (``ports.DsrStore``)
- ``outbox_admin.py``: ``SqlOutboxAdmin`` (``ports.OutboxAdmin``)
- ``keys.py``: ``SqlKeyLinks`` (``ports.KeyLinks``)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Statements(Protocol):
    """Runs statements (``?`` placeholders) on one connection, in whatever
    transaction the connection has open."""

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows a query returns."""
        ...

    def change(self, sql: str, args: Sequence[object] = ()) -> int:
        """Run a change; returns the rows it touched."""
        ...


def marks(n: int) -> str:
    """``?,?,...`` for an ``IN (...)`` list of ``n`` values (n >= 1)."""
    return ",".join("?" * n)
