"""``ports.KeyLinks`` on either backend: how far the identity graph's links
moved from a previous key to the active one, and forgetting a destroyed key's
links (``consentry keys status|migrate|retire``)."""

from __future__ import annotations

from collector.storage.portable import Statements


class SqlKeyLinks:
    def __init__(self, sql: Statements) -> None:
        self._sql = sql

    def relinked(self, kid: str) -> tuple[int, int]:
        [(total, migrated)] = self._sql.rows(
            "SELECT count(*), coalesce(sum(migrated), 0) FROM id_links WHERE kid = ?", (kid,)
        )
        return int(migrated), int(total)

    def forget(self, kid: str) -> int:
        n = self._sql.change("DELETE FROM id_links WHERE kid = ?", (kid,))
        # Other connections (and replicas) drop their cached links when it moves.
        self._sql.change("UPDATE id_epoch SET n = n + 1 WHERE id = 1")
        return n
