"""What Consentry holds on one person, found from raw identifiers.

A raw identifier (``email``, ``phone``, ``userId``, ``anonymousId``,
``wechat_unionid``, ``wechat_openid`` with its ``wechat_app_id``) is
normalized and pseudonymized in memory by the runtime's pseudonymizer (the
same code ingestion uses), looked up in the identity graph and forgotten: it
is never stored or logged. The summary names identifier *kinds* only.

Shapes (JSON; times ISO 8601 UTC)::

    {"one_id": 7, "one_ids": [7, 3],
     "identifiers": [{"kind": "email", "count": 1, "first_seen": …, "last_seen": …}],
     "consent": {"state": {"analytics": true, …}, "history": [ConsentRecord, …]},
     "destinations": [{"name": "lake", "events": 12, "first": …, "last": …,
                       "last_message_id": "…" (the latest event routed there),
                       "purposes": […], "legal_bases": {…}, "recipient": …,
                       "region": …, "third_party": false, "cross_border": {…}}],
     "erasures": [{"destination": …, "status": …, "at": …, …}]}

Errors: ``InvalidMessage(reason, path)`` for an identifier that cannot be read
(the path is ``$.identifiers.<kind>``); an unknown person is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from collector.config import DestinationConfig
from collector.errors import InvalidMessage
from collector.sources.wechat import namespaced_openid
from collector.storage.ports import UnitOfWork
from identity.graph import Identifier, OneId

# Accepted keys of {"identifiers": {...}} -> where identifiers_for reads them.
IDENTIFIER_KEYS = ("email", "phone", "userId", "anonymousId", "wechat_openid", "wechat_unionid")
# Not an identifier: the WeChat app an openid belongs to (openids are per app).
WECHAT_APP = "wechat_app_id"


class IdentifierReader(Protocol):
    def identifiers_for(
        self,
        user_id: object,
        anonymous_id: object,
        traits: Mapping[str, Any] | None,
        prefix: str,
        *,
        extra: Sequence[tuple[str, object, str]] = (),
    ) -> list[Identifier]: ...


class GraphReader(Protocol):
    def lookup(self, pseudonym: str) -> OneId | None: ...
    def current(self, one_id: OneId) -> OneId: ...
    def lineage(self, one_id: OneId) -> list[int]: ...


def wechat_ids(
    identifiers: Mapping[str, object], *, default_app: str | None
) -> list[tuple[str, object, str]]:
    """The WeChat ids among `identifiers` as (kind, value, JSON path), the
    openid namespaced by its app as ingestion stores it
    (``sources.wechat.namespaced_openid``: ``wechat_app_id`` given, else
    ``[identity] wechat_app_id``). An openid without an app is
    ``InvalidMessage``: another app's person could have the same one."""
    out: list[tuple[str, object, str]] = []
    if "wechat_unionid" in identifiers:
        out.append(
            ("wechat_unionid", identifiers["wechat_unionid"], "$.identifiers.wechat_unionid")
        )
    if "wechat_openid" in identifiers:
        app = identifiers.get(WECHAT_APP) or default_app
        raw = identifiers["wechat_openid"]
        scoped = namespaced_openid(raw, str(app)) if isinstance(raw, str) and app else None
        if scoped is None:
            raise InvalidMessage(
                "an openid names a person within one WeChat app only: give"
                f" {WECHAT_APP} (or set [identity] wechat_app_id)",
                f"$.identifiers.{WECHAT_APP}",
            )
        out.append(("wechat_openid", scoped, "$.identifiers.wechat_openid"))
    return out


def pseudonymize(
    reader: IdentifierReader,
    identifiers: Mapping[str, object],
    *,
    wechat_app_id: str | None = None,
) -> list[Identifier]:
    """Raw identifiers -> pseudonymized ones, in memory. Unknown keys and an
    empty mapping are ``InvalidMessage`` naming ``$.identifiers``;
    `wechat_app_id` is the configured app for openids given without one."""
    for key in identifiers:
        if key not in IDENTIFIER_KEYS and key != WECHAT_APP:
            raise InvalidMessage(
                f"unknown identifier kind {key!r}; use one of: {', '.join(IDENTIFIER_KEYS)}",
                f"$.identifiers.{key}",
            )
    if not any(k in IDENTIFIER_KEYS for k in identifiers):
        raise InvalidMessage(
            "give at least one identifier: " + ", ".join(IDENTIFIER_KEYS), "$.identifiers"
        )
    traits = {k: v for k, v in identifiers.items() if k in ("email", "phone")}
    try:
        return reader.identifiers_for(
            identifiers.get("userId"),
            identifiers.get("anonymousId"),
            traits,
            "$.identifiers",
            extra=wechat_ids(identifiers, default_app=wechat_app_id),
        )
    except InvalidMessage as exc:
        path = exc.path.replace("$.identifiers.traits.", "$.identifiers.")
        raise InvalidMessage(exc.reason, path) from None


def resolve(graph: GraphReader, identifiers: list[Identifier]) -> int | None:
    """The OneID now holding these identifiers (the first one known), or None."""
    for ident in identifiers:
        for pseudonym in (ident.pseudonym, *ident.previous):
            found = graph.lookup(pseudonym)
            if found is not None:
                return int(graph.current(found))
    return None


def _iso(at: float | str | None) -> str | None:
    if at is None:
        return None
    if isinstance(at, str):
        return at
    return datetime.fromtimestamp(at, UTC).isoformat()


def destination_facts(dest: DestinationConfig) -> dict[str, object]:
    """What the configuration says about a recipient (GDPR Art. 30(1), 15(1)(c))."""
    return {
        "name": dest.name,
        "purposes": list(dest.purposes),
        "legal_bases": dict(dest.legal_bases),
        "recipient": dest.recipient or dest.name,
        "region": dest.region,
        "third_party": dest.third_party,
        "cross_border": dict(dest.transfer),
        "pi_categories": list(dest.pi_categories),
    }


def summary(
    conn: UnitOfWork,
    graph: GraphReader,
    one_id: int,
    destinations: list[DestinationConfig],
) -> dict[str, Any]:
    """The person's summary (shape in the module docstring)."""
    lineage = graph.lineage(OneId(one_id))
    store = conn.audit
    history = list(store.records(since=None, until=None, one_id=one_id))
    state: dict[str, bool] = {}
    for record in history:
        state.update(record.purposes)
    counts = {c.destination: c for c in conn.dsr.destination_counts(lineage)}
    dests = []
    for dest in destinations:
        c = counts.get(dest.name)
        dests.append(
            {
                **destination_facts(dest),
                "events": c.events if c else 0,
                "first": _iso(c.first_at) if c else None,
                "last": _iso(c.last_at) if c else None,
                "last_message_id": c.last_message_id if c else None,
            }
        )
    erasures = [e for o in lineage for e in store.erasures(o)]
    return {
        "one_id": one_id,
        "one_ids": lineage,
        "identifiers": [
            {"kind": k, "count": n, "first_seen": a, "last_seen": b}
            for k, n, a, b in conn.dsr.identifier_kinds(lineage)
        ],
        "consent": {
            "state": state,
            "history": msgspec.to_builtins(history),
        },
        "destinations": dests,
        "erasures": [
            {
                "destination": e.destination,
                "status": e.status,
                "outbox_rows_deleted": e.outbox_rows_deleted,
                "remote_rows_deleted": e.remote_rows_deleted,
                "detail": e.detail,
                "at": _iso(e.at),
                "done_at": _iso(e.done_at),
            }
            for e in erasures
        ],
    }
