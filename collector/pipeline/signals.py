"""Step 3 of the flow: read consent signals and the event's facts.

``context.consent`` (Segment), ``context.consentManagement`` (RudderStack), TCF
and GPP strings, GPC and Consent Mode are read by ``consent.signals`` (pure,
memoized here on the parts of the context it reads); the facts the decision
needs (jurisdiction label, country and subdivision, GPC, personal-information
categories, age, US opt-outs) become one shared ``EventFacts``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from collector.errors import InvalidMessage
from collector.event_facts import locate
from collector.pipeline.decode import at_path
from collector.pipeline.memo import PEOPLE, Memo
from collector.pipeline.options import IngestOptions
from collector.pipeline.warnings import InputWarning
from consent.decide import EventFacts
from consent.errors import ConsentSignalError
from consent.signals import Signals, read_context

_encoder = msgspec.json.Encoder()


class SignalsStep:
    """The consent half of ``Preparer`` (a mixin: the preparer composes the steps)."""

    _opt: IngestOptions
    _signal_memo: Memo[bytes, Signals]
    _facts_memo: Memo[tuple[object, ...], EventFacts]

    def _init_signals(self) -> None:
        self._signal_memo = Memo(PEOPLE // 10)
        self._facts_memo = Memo(PEOPLE // 10)

    def _read_signals(self, context: Any, prefix: str) -> Signals:
        """Raises InvalidMessage naming the signal's path when one cannot be used."""
        try:
            return self._signals(context)
        except ConsentSignalError as exc:
            text = str(exc)
            raise InvalidMessage(text, at_path(prefix, text.split(" ", 1)[0])) from None

    def _signals(self, context: Any) -> Signals:
        """read_context is pure: memoized on the parts of the context it reads."""
        if not isinstance(context, dict):
            return read_context(context, category_map=self._opt.category_map)
        try:
            memo_key = _encoder.encode((context.get("consent"), context.get("consentManagement")))
        except (TypeError, msgspec.EncodeError):
            return read_context(context, category_map=self._opt.category_map)
        signals = self._signal_memo.get(memo_key)
        if signals is None:
            signals = read_context(context, category_map=self._opt.category_map)
            self._signal_memo.put(memo_key, signals)
        return signals

    def _facts(
        self, signals: Signals, context: Mapping[str, Any], data: Mapping[str, Any]
    ) -> tuple[EventFacts, str | None, frozenset[str]]:
        """(the event's facts, the jurisdiction for its payloads, its
        personal-information categories)."""
        country, subdivision = locate(signals.region, context)
        jurisdiction = signals.jurisdiction or (
            self._opt.country_jurisdictions.get(country) if country else None
        )
        pi = self._pi_categories(data)
        age = _age(data)
        facts_key = (
            signals.jurisdiction,
            country,
            subdivision,
            signals.gpc,
            pi,
            age,
            signals.opt_outs,
        )
        facts = self._facts_memo.get(facts_key)
        if facts is None:
            # The label as given: the router resolves label + country to packs.
            facts = EventFacts(
                jurisdiction=signals.jurisdiction,
                country=country,
                subdivision=subdivision,
                gpc=signals.gpc,
                pi_categories=pi,
                age=age,
                opt_outs=signals.opt_outs,
            )
            self._facts_memo.put(facts_key, facts)

        return facts, jurisdiction, pi

    def _pi_categories(self, data: Mapping[str, Any]) -> frozenset[str]:
        if not self._opt.pi_rules:
            return frozenset()
        found = set()
        for section in ("properties", "traits"):
            values = data.get(section)
            if isinstance(values, dict):
                for name, category in self._opt.pi_rules.items():
                    if name in values:
                        found.add(category)
        return frozenset(found)


def _signal_warnings(index: int, prefix: str, signals: Signals) -> list[InputWarning]:
    return [
        InputWarning(index, "consent_unreadable", w.reason, at_path(prefix, w.path))
        for w in signals.warnings
    ]


def _age(data: Mapping[str, Any]) -> int | None:
    context = data.get("context")
    in_context = context.get("traits") if isinstance(context, dict) else None
    for base in (data.get("traits"), in_context):
        if isinstance(base, dict) and base:
            age = base.get("age")
            if isinstance(age, int) and not isinstance(age, bool) and 0 <= age < 150:
                return age
    return None
