"""Step 5 of the flow: resolve the OneID (identity.graph) for an event or a call.

A merge of two people is recorded in the ledger at once; merges never widen
consent (consent.ledger.Ledger.merge). An alias links its previousId as the
user id the graph knows, else as an anonymous id.
"""

from __future__ import annotations

from datetime import datetime

from collector.pipeline.prepare import Prepared
from consent.ledger import Ledger
from consent.policy import Policies
from identity.graph import Graph, Identifier, OneId


class ResolveStep:
    """Resolving, for ``Router`` (a mixin: the router composes the steps)."""

    graph: Graph
    ledger: Ledger
    policies: Policies

    def _resolve(self, p: Prepared, at: datetime) -> tuple[OneId, dict[str, bytes]]:
        identifiers = list(p.identifiers)
        payloads = p.payloads
        if p.alias_ids is not None:
            anon, user = p.alias_ids
            # previousId may be an old user id or an anonymous id: link whichever
            # the graph knows, preferring the user id.
            if self.graph.lookup(user.pseudonym) is not None or any(
                self.graph.lookup(o) is not None for o in user.previous
            ):
                identifiers.append(user)
                assert p.alias_user_payloads is not None
                payloads = p.alias_user_payloads
            else:
                identifiers.append(anon)
        one_id = self._person(identifiers, p.subject, p.facts.jurisdiction, at)
        return one_id, payloads

    def _person(
        self, identifiers: list[Identifier], subject: str, jurisdiction: str | None, at: datetime
    ) -> OneId:
        """Resolve the OneID; a merge is recorded in the ledger (never widening consent)."""
        resolution = self.graph.resolve(identifiers, now=at)
        if resolution.merged:
            self.ledger.merge(
                resolution.one_id,
                resolution.merged,
                subject=subject,
                jurisdiction=self.policies.get(jurisdiction).name,
                now=at,
            )
        return resolution.one_id
