"""Renderings of audit results: text lines for a terminal, CSV and JSON for export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from collector.audit.ledger import History
from collector.audit.why import Explanation
from collector.audit.witness import WitnessResult
from collector.storage.ports import DeliveryOutcome
from consent.ledger import ConsentRecord, VerifyResult

RECORD_COLUMNS = (
    "seq",
    "action",
    "one_id",
    "subject",
    "jurisdiction",
    "legal_basis",
    "purposes",
    "method",
    "consenter",
    "notice_id",
    "notice_version",
    "given_at",
    "received_at",
)


def verify_text(result: VerifyResult) -> str:
    """One line: ``OK: N records; last checkpoint …`` or ``FAILED at record N: …``."""
    if not result.ok:
        return f"FAILED at record {result.first_bad_seq}: {result.problem}"
    cp = result.last_checkpoint
    sealed = (
        f"at record {cp.seq} signed {cp.signed_at} (anchor {cp.seq}:{cp.hash.hex()})"
        if cp
        else "none yet"
    )
    erased = (
        f"; {result.erased} records of erased people (subjects crypto-shredded)"
        if result.erased
        else ""
    )
    return (
        f"OK: {result.records} records; last checkpoint {sealed};"
        f" {result.unsealed} records after it{erased}"
    )


def witness_text(result: WitnessResult) -> str:
    """One line: ``witness OK: …`` or ``FAILED at record N: …``."""
    if not result.ok:
        return f"FAILED at record {result.first_bad_seq}: {result.problem}"
    return (
        f"witness OK: {result.checked} checkpoints, every witnessed record up to"
        f" {result.last_seq} is in the ledger"
    )


def record_line(record: ConsentRecord) -> str:
    return (
        f"record {record.seq}: {record.action} {json.dumps(record.purposes, sort_keys=True)}"
        f" by {record.method} ({record.consenter}) notice {record.notice_id or '-'}"
        f"@{record.notice_version or '-'} given {record.given_at.isoformat()}"
    )


def why_lines(explanation: Explanation) -> Iterator[str]:
    """The decision, its reasons and the records it cites, indented under it."""
    d = explanation.decision
    when = datetime.fromtimestamp(explanation.at, UTC).isoformat()
    yield (
        f"{explanation.message_id} -> {explanation.destination}: {d.outcome.upper()} under"
        f" {d.jurisdiction} (legal basis: {d.legal_basis}) at {when}"
    )
    for reason in d.reasons:
        yield f"  - {reason}"
    for record in explanation.records:
        yield "  " + record_line(record)
    if d.outcome == "allow":
        yield "  final outcome: " + outcome_text(explanation.outcome)
        for record in explanation.outcome_records:
            yield "    " + record_line(record)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def outcome_text(outcome: DeliveryOutcome | None) -> str:
    """The final outcome of an allowed message at a destination, in one line."""
    if outcome is None:
        return "NOT QUEUED (no outbox row and no delivery recorded)"
    tries = f"{outcome.attempts} attempt{'s' if outcome.attempts != 1 else ''}"
    if outcome.status == "delivered":
        return f"DELIVERED at {_iso(outcome.at or 0)} in batch {outcome.batch} ({tries})"
    if outcome.status == "dropped":
        return f"DROPPED at send time at {_iso(outcome.at or 0)}: {outcome.detail}"
    if outcome.status == "dead":
        return f"DEAD-LETTERED after {tries}; last error: {outcome.error}"
    if outcome.status == "purged":
        return (
            f"PURGED dead letter at {_iso(outcome.at or 0)} after {tries};"
            f" last error: {outcome.error}"
        )
    when = f"; next attempt at {_iso(outcome.at)}" if outcome.at is not None else ""
    last = f"; last error: {outcome.error}" if outcome.error else ""
    return f"PENDING after {tries}{last}{when}"


def records_csv(records: Iterable[ConsentRecord], out: TextIO) -> None:
    """One row per record under ``RECORD_COLUMNS``; purposes as sorted JSON."""
    writer = csv.writer(out)
    writer.writerow(RECORD_COLUMNS)
    for r in records:
        writer.writerow(
            [
                r.seq,
                r.action,
                r.one_id,
                r.subject,
                r.jurisdiction,
                r.legal_basis,
                json.dumps(r.purposes, sort_keys=True),
                r.method,
                r.consenter,
                r.notice_id,
                r.notice_version,
                r.given_at.isoformat(),
                r.received_at.isoformat(),
            ]
        )


def records_json(records: list[ConsentRecord]) -> str:
    """The records as a JSON array of their full ledger form."""
    return msgspec.json.encode(records).decode()


def history_lines(history: History) -> Iterator[str]:
    """A person's identity merges, refused links and erasures, one per line."""
    yield f"OneID {history.one_id}"
    for m in history.merges:
        yield f"  merge: OneID {m.absorbed} joined {m.one_id} through {m.cause_kind} at {m.at}"
    for c in history.conflicts:
        other = f" (OneID {c.other})" if c.other is not None else ""
        yield f"  refused link: {c.kind} {c.pseudonym}{other}: {c.reason}"
    for e in history.erasures:
        remote = "-" if e.remote_rows_deleted is None else str(e.remote_rows_deleted)
        yield (
            f"  erasure at {_iso(e.at)}: {e.destination} {e.status}"
            f" (outbox rows deleted {e.outbox_rows_deleted}, at the destination {remote})"
            + (f": {e.detail}" if e.detail else "")
        )
    if not (history.merges or history.conflicts or history.erasures):
        yield "  no merges, refused links or erasures recorded"
