"""The DSR module without a running server, for the CLI: the data
directory's keyring pseudonymizes raw identifiers in memory, the configured
database (SQLite or PostgreSQL, ``storage.open.open_uow``) is read (and
briefly written) directly.

``Desk.open(config)`` -> a desk; ``resolve(kind, value)`` -> OneID or None
(never stores or prints the value). Errors: ``InvalidIdentifier`` for a value
that cannot be normalized, ``DsrError`` for an unknown request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.config import Config
from collector.dsr import person
from collector.sources.wechat import namespaced_openid
from collector.storage.open import ClosableUnitOfWork, open_uow
from identity.errors import InvalidIdentifier
from identity.graph import Graph, Identifier
from identity.normalize import normalize
from identity.pseudonym import Pseudonymizer

# CLI option -> identity kind
KINDS = {
    "email": "email",
    "phone": "phone",
    "user_id": "user_id",
    "anonymous_id": "anonymous_id",
    "wechat_openid": "wechat_openid",
    "wechat_unionid": "wechat_unionid",
}


@dataclass
class Desk:
    config: Config
    conn: ClosableUnitOfWork
    graph: Graph
    pseudonymizer: Pseudonymizer

    @classmethod
    def open(cls, config: Config, *, readonly: bool = False) -> Desk:
        """``readonly``: for lookups only (an auditor's copy of the database)."""
        from collector.runtime import normalize_options, open_keyring

        ring, _, _ = open_keyring(config, create=False)
        conn = open_uow(config, readonly=readonly)
        return cls(
            config,
            conn,
            Graph(conn.graph_store),
            Pseudonymizer(ring, options=normalize_options(config), cache_size=16),
        )

    def close(self) -> None:
        self.conn.close()

    def identifiers(
        self, given: dict[str, str], *, wechat_app_id: str | None = None
    ) -> list[Identifier]:
        """Raw identifiers (kind -> value) pseudonymized under every lookup key;
        an openid is namespaced by its app (`wechat_app_id`, else the
        configured one) as ingestion stores it. Raises ``InvalidIdentifier``
        for an openid without an app."""
        out = []
        for kind, value in given.items():
            if kind == "wechat_openid":
                app = wechat_app_id or self.config.identity.wechat_app_id
                scoped = namespaced_openid(value, app)
                if scoped is None:
                    raise InvalidIdentifier(
                        "an openid names a person within one WeChat app only: give"
                        " --wechat-app-id (or set [identity] wechat_app_id)"
                    )
                value = scoped
            normalized = normalize(KINDS[kind], value, self.pseudonymizer.options)
            versions = self.pseudonymizer.all_versions(KINDS[kind], normalized)
            out.append(Identifier(KINDS[kind], versions[0], tuple(versions[1:])))
        return out

    def resolve(self, given: dict[str, str], *, wechat_app_id: str | None = None) -> int | None:
        return person.resolve(self.graph, self.identifiers(given, wechat_app_id=wechat_app_id))

    def summary(self, one_id: int) -> dict[str, Any]:
        return person.summary(self.conn, self.graph, one_id, self.config.effective_destinations())
