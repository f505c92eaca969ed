"""Erasure (GDPR Art. 17, PIPL Art. 47, CCPA 1798.105) inside the write transaction.

Every cluster the identifiers belong to is erased: graph links (tombstone
left), consent state and subject keys (the person's ledger records are
crypto-shredded, the chain still verifies), pending outbox rows, decisions
citing the person's records; a deletion request is queued per destination.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from collector.config import DestinationConfig
from collector.storage.ports import UnitOfWork
from consent.ledger import Ledger
from consent.policy import Policies
from identity.graph import Graph, Identifier


class EraseStep:
    """Erasing, for ``Router`` (a mixin: the router composes the steps)."""

    graph: Graph
    ledger: Ledger
    policies: Policies
    destinations: list[DestinationConfig]

    if TYPE_CHECKING:  # OutboxStep's

        def flush(self, uow: UnitOfWork) -> None: ...

    def erase(
        self, uow: UnitOfWork, identifiers: list[Identifier], *, now: datetime
    ) -> dict[str, object]:
        """Erase every cluster these identifiers belong to: graph links, consent
        state, pending outbox rows, the decisions that cite the person's ledger
        records, their subject keys (crypto-shredding their ledger records);
        queue a deletion request per destination."""
        self.flush(uow)  # rows routed earlier in this group must be erased too
        found = {self.graph.lookup(i.pseudonym) for i in identifiers}
        currents = sorted({self.graph.current(o) for o in found if o is not None})
        if not currents:
            return {"erased": False, "reason": "no person is known by these identifiers"}
        people: list[dict[str, object]] = []
        purged: dict[str, int] = {}
        for current in currents:
            # Rows forwarded before a merge carry the absorbed OneID: delete those too.
            lineage = self.graph.lineage(current)
            removed = self.graph.erase(current, now=now)
            # The erase record names nobody; the person's subject keys go with it.
            self.ledger.erase(
                current, subject="", jurisdiction=self.policies.default, now=now, lineage=lineage
            )
            forgotten = uow.decisions.forget_people(lineage)
            for dest in self.destinations:
                n = uow.outbox.delete_people(dest.name, lineage)
                purged[dest.name] = purged.get(dest.name, 0) + n
                uow.erasures.add(
                    one_id=current,
                    one_ids=lineage,
                    destination=dest.name,
                    deleted=n,
                    at=now.timestamp(),
                )
            people.append(
                {
                    "one_id": current,
                    "identifiers_removed": removed,
                    "one_ids": lineage,
                    "decisions_removed": forgotten,
                }
            )
        return {"erased": True, "people": people, "outbox_rows_deleted": purged}
