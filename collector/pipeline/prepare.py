"""Steps 2 to 4 and the egress payloads for one message: ``Preparer``.

Pure apart from the clock and the pseudonymizer passed in: a decoded
``Message`` in, a ``Prepared`` unit out (or ``InvalidMessage``). Runs before
anything touches the database, so raw identifiers are gone from everything
that leaves here except the rejected payloads, which only the encrypted
quarantine keeps. The steps live in their own modules and are composed here:

- ``signals.py``: consent signals and the event's facts (step 3)
- ``pseudonymize.py``: identifiers found, normalized and pseudonymized (step 4)
- ``egress.py``: each destination's payload (its pseudonyms, IP form, fields)
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from collector.errors import HeldByPlan, InvalidMessage
from collector.event_facts import SignalClock
from collector.pipeline import integrations as flags
from collector.pipeline import scrub as pii_scrub
from collector.pipeline.egress import EgressStep, _placeholder
from collector.pipeline.options import IngestOptions
from collector.pipeline.pseudonymize import Found, PseudonymizeStep
from collector.pipeline.quality import PlanResult, apply_plan
from collector.pipeline.signals import SignalsStep, _signal_warnings
from collector.pipeline.timestamps import iso_z, segment_times
from collector.pipeline.warnings import InputWarning
from collector.quality.plan import TrackingPlan
from collector.sources.cookies import with_request_consent
from consent.decide import EventFacts
from consent.signals import Signals
from identity.graph import Identifier
from identity.pii import redact_path, redact_text
from identity.pseudonym import Pseudonymizer
from sdk_python.messages import Message

__all__ = ["IngestOptions", "Prepared", "Preparer"]


@dataclass(slots=True)
class Prepared:
    """One message ready for the write transaction: its identifiers
    (pseudonyms for the graph), consent signals and facts, and each
    destination's payload (bytes of JSON)."""

    index: int
    message_id: str
    type: str
    identifiers: list[Identifier]
    subject: str
    signals: Signals
    facts: EventFacts
    payloads: dict[str, bytes]
    pi_by_destination: dict[str, frozenset[str]] = field(default_factory=dict)
    # What the PII scan replaced, as decision notes (kind, action, path; no value).
    scrubbed: tuple[str, ...] = ()
    alias_user_payloads: dict[str, bytes] | None = None
    alias_ids: tuple[Identifier, Identifier] | None = None
    warnings: list[InputWarning] = field(default_factory=list)
    blocked: frozenset[str] = frozenset()  # destinations the integrations flags keep out
    generated_id: bool = False  # messageId made here (never a repeat)
    signal_at: float | None = None  # the event's own time (epoch s), for its consent signals
    plan: PlanResult | None = None  # what the source's tracking plan said (kept messages)


class Preparer(PseudonymizeStep, SignalsStep, EgressStep):
    """Turns decoded messages into Prepared units: identifiers pseudonymized for
    the graph (internal domain, every live key version) and for each destination
    (its own domain), IP truncated, consent signals read."""

    def __init__(self, pseudonymizer: Pseudonymizer, options: IngestOptions) -> None:
        self._ps = pseudonymizer
        self._opt = options
        self._pii = frozenset(options.pii_fields)
        self._names = tuple(d.name for d in options.destinations)
        self._init_pseudonymize()
        self._init_signals()
        self._init_egress(options)
        self._at: tuple[datetime, str] | None = None
        self._clock = SignalClock()

    def memo_sizes(self) -> dict[str, int]:
        """Entries per memo (benchmarks/ingest_memory.py)."""
        return {
            "normalized": len(self._norm_memo),
            "identifiers": len(self._ident_memo),
            "destination values": len(self._lane_memo),
            "ips": len(self._ip_memo),
            "signals": len(self._signal_memo),
            "pseudonyms": self._ps.cached,
        }

    def prepare(
        self,
        msg: Message,
        *,
        index: int,
        prefix: str,
        received_at: datetime,
        batch_context: Mapping[str, Any] | None = None,
        request_consent: Mapping[str, Any] | None = None,
        sent_at: datetime | None = None,
        batch_integrations: Mapping[str, Any] | None = None,
        plan: TrackingPlan | None = None,
    ) -> Prepared:
        """Raises InvalidMessage(reason, JSON path); neither quotes a key or
        value that may be personal data (issue 14 §1). ``sent_at``: the batch's
        ``sentAt`` (a message's own wins)."""
        try:
            return self._prepare(
                msg,
                index=index,
                prefix=prefix,
                received_at=received_at,
                batch_context=batch_context,
                request_consent=request_consent,
                sent_at=sent_at,
                batch_integrations=batch_integrations,
                plan=plan,
            )
        except HeldByPlan:
            raise  # its reason and paths are built without values or personal keys
        except InvalidMessage as exc:
            raise InvalidMessage(redact_text(exc.reason), redact_path(exc.path)) from None

    def _prepare(
        self,
        msg: Message,
        *,
        index: int,
        prefix: str,
        received_at: datetime,
        batch_context: Mapping[str, Any] | None = None,
        request_consent: Mapping[str, Any] | None = None,
        sent_at: datetime | None = None,
        batch_integrations: Mapping[str, Any] | None = None,
        plan: TrackingPlan | None = None,
    ) -> Prepared:
        data: dict[str, Any] = msgspec.to_builtins(msg)
        data["messageId"] = msg.messageId or str(uuid.uuid4())
        self._times(msg, data, received_at, sent_at)
        warnings: list[InputWarning] = []
        if batch_context:
            data["context"] = {**batch_context, **(data.get("context") or {})}
        if request_consent:  # the browser's CMP cookies (collector.sources.cookies)
            data["context"] = with_request_consent(data.get("context"), request_consent)
        context: Mapping[str, Any] = data.get("context") or {}
        msg_type = data["type"]

        found = self._found(data, msg_type, index=index, prefix=prefix, warnings=warnings)
        # Identifiers anywhere else (issue 14 §1): placed in the message as
        # placeholders, filled per destination like the ones above.
        raw = data
        scrubbed = self._scrub(data, found)
        if scrubbed is not None:
            data = scrubbed.data
        checked = None
        if plan is not None:  # after pseudonymization, before any payload exists
            checked = apply_plan(
                plan,
                data,
                (p for _, _, p in found),
                prefix=prefix,
                held=lambda: _held(raw),
            )
            warnings += checked.warnings(index)
        previous = None
        if msg_type == "alias":
            previous = self._normalized(
                "anonymous_id", data.get("previousId"), f"{prefix}.previousId"
            )
            if previous is None:
                raise InvalidMessage(
                    "previousId is a placeholder, not an identifier", f"{prefix}.previousId"
                )

        self._refresh_keys()
        signals = self._read_signals(data.get("context"), prefix)

        identifiers = [self._identifier(kind, value) for kind, value, _ in found if kind[0] != "~"]
        alias_ids = self._alias_ids(previous) if previous is not None else None

        facts, jurisdiction, pi = self._facts(signals, context, data)

        payloads, alias_user, pi_by_dest = self._payloads(
            data,
            context,
            found,
            index=index,
            prefix=prefix,
            warnings=warnings,
            previous=previous,
            jurisdiction=jurisdiction,
            pi=pi,
            scrubbed=scrubbed,
            raw=raw,
        )
        context = data.get("context") or {}  # without an unreadable ip, as the payloads
        return Prepared(
            index=index,
            message_id=data["messageId"],
            generated_id=msg.messageId is None,
            type=msg_type,
            identifiers=identifiers,
            subject=identifiers[0].pseudonym if identifiers else "",
            signals=signals,
            facts=facts,
            payloads=payloads,
            pi_by_destination=pi_by_dest,
            scrubbed=tuple(r.note() for r in scrubbed.replaced) if scrubbed else (),
            alias_user_payloads=alias_user,
            alias_ids=alias_ids,
            warnings=warnings + _signal_warnings(index, prefix, signals),
            blocked=flags.blocked(
                flags.merged(data.get("integrations"), batch_integrations), self._names
            ),
            signal_at=self._clock(msg, received_at, context) if not signals.empty else None,
            plan=checked,
        )

    def _scrub(self, data: dict[str, Any], found: list[Found]) -> pii_scrub.Scrubbed | None:
        """The PII scan ([privacy] pii_scan): identifiers anywhere else in the
        message become placeholders, appended to ``found`` as never-linked
        values; None when the scan is off or found nothing."""
        if self._opt.scrub is None:
            return None
        scrubbed = pii_scrub.scrub(
            data,
            self._opt.scrub,
            placeholder=_placeholder,
            first=len(found),
            handled={p for _, _, p in found},
        )
        if scrubbed is not None:
            found.extend((f"~{kind}", value, ()) for kind, value in scrubbed.values)
        return scrubbed

    def _times(
        self, msg: Message, data: dict[str, Any], received_at: datetime, sent_at: datetime | None
    ) -> None:
        """Segment's four times (collector.pipeline.timestamps), as UTC ``Z`` text."""
        if self._at is None or self._at[0] is not received_at:
            self._at = (received_at, iso_z(received_at))  # one per batch
        received = self._at[1]
        data["receivedAt"] = received
        if msg.timestamp is None and msg.originalTimestamp is None:
            data["timestamp"] = received
            if msg.sentAt is not None:
                data["sentAt"] = iso_z(msg.sentAt)
            elif sent_at is not None:
                data["sentAt"] = iso_z(sent_at)
            return
        sent = msg.sentAt or sent_at
        if sent is None:  # the device's time stands (one conversion for both fields)
            device = msg.timestamp if msg.timestamp is not None else msg.originalTimestamp
            assert device is not None
            data["timestamp"] = data["originalTimestamp"] = iso_z(device)
            return
        times = segment_times(
            timestamp=msg.timestamp,
            original_timestamp=msg.originalTimestamp,
            sent_at=sent,
            received_at=received_at,
        )
        data["timestamp"] = iso_z(times.timestamp)
        if times.original_timestamp is not None:
            data["originalTimestamp"] = iso_z(times.original_timestamp)
        data["sentAt"] = iso_z(sent)


def _held(raw: dict[str, Any]) -> bytes:
    """What a plan-held message keeps for a replay: the message as received
    (batch context and request consent merged in, its messageId, its timestamp
    already corrected for clock skew), without ``sentAt``/``receivedAt`` so a
    replay does not correct the time twice."""
    kept = {k: v for k, v in raw.items() if k not in ("sentAt", "receivedAt")}
    return msgspec.json.encode(kept)
