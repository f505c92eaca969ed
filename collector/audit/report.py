"""Renderings of audit results: text lines for a terminal, CSV and JSON for export."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from collector.audit.why import Explanation
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
