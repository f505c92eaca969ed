"""Key-rotation bookkeeping in the identity graph, for `consentry keys`:
relinking progress per key and forgetting a destroyed key's links."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from collector.storage.sqlite.graph import forget_kid, relink_progress


class SqliteKeyLinks:
    """Over the database at ``path``; a missing database has no links (a
    keyring made with `keys init` before the first `serve`)."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path) if path.exists() else None

    def relinked(self, kid: str) -> tuple[int, int]:
        """(identifiers relinked under a newer key, identifiers linked under ``kid``)."""
        return (0, 0) if self._conn is None else relink_progress(self._conn, kid)

    def forget(self, kid: str) -> int:
        """Drop the links under ``kid`` in one transaction; returns how many."""
        if self._conn is None:
            return 0
        with self._conn:
            return forget_kid(self._conn, kid)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
