"""`consentry audit`: verify, export, why, pubkey. Queries live in
``collector.audit``; this module parses arguments and prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector.audit import ledger, report, why, witness
from collector.cli.common import add_common, cli_time, fail, load
from collector.storage.ports import AuditStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("audit", help="verify and export the consent ledger")
    asub = a.add_subparsers(dest="audit_cmd", required=True)
    v = asub.add_parser("verify", help="check the hash chain and signed checkpoints")
    add_common(v)
    v.add_argument("--pubkey", help="Ed25519 public key (PEM) to verify checkpoints against")
    v.add_argument(
        "--anchor", help="SEQ:HEX from an earlier verify; fails if the ledger was cut short"
    )
    v.add_argument(
        "--witness",
        help="witness file ([audit] witness_file); fails if a witnessed record is gone or differs",
    )
    e = asub.add_parser("export", help="export consent records")
    add_common(e)
    e.add_argument("--from", dest="since", help="ISO time (inclusive)")
    e.add_argument("--to", dest="until", help="ISO time (inclusive)")
    e.add_argument(
        "--subject",
        help="OneID, internal pseudonym, or a raw email, phone or userId (pseudonymized in"
        " memory, never stored); an unknown person exits 1",
    )
    e.add_argument("--format", choices=["csv", "json"], default="csv", help="output format")
    w = asub.add_parser("why", help="why a message was or was not forwarded to a destination")
    add_common(w)
    w.add_argument("message_id", help="the message's messageId")
    w.add_argument("destination", help="destination name")
    h = asub.add_parser("history", help="a person's merges, refused links and erasures")
    add_common(h)
    h.add_argument("subject", help="OneID or internal pseudonym")
    pk = asub.add_parser("pubkey", help="print the ledger's public key (PEM)")
    add_common(pk)
    a.set_defaults(fn=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    from collector.storage.open import open_uow

    cfg = load(args)
    if args.audit_cmd == "pubkey":
        from collector.runtime import open_keyring

        ring, _, _ = open_keyring(cfg, create=False)
        sys.stdout.write(ring.signing_public_pem().decode())
        return 0
    uow = open_uow(cfg, readonly=True)
    store = uow.audit
    try:
        if args.audit_cmd == "verify":
            return _verify(store, args)
        if args.audit_cmd == "export":
            return _export(store, args)
        if args.audit_cmd == "why":
            return _why(store, args)
        if args.audit_cmd == "history":
            for line in report.history_lines(ledger.history(store, args.subject)):
                print(line)
            return 0
    finally:
        uow.close()
    return fail("unknown audit command")


def _verify(store: AuditStore, args: argparse.Namespace) -> int:
    key = ledger.load_public_key(Path(args.pubkey).read_bytes()) if args.pubkey else None
    anchor = ledger.parse_anchor(args.anchor) if args.anchor else None
    result = ledger.verify(store, public_key=key, anchor=anchor)
    print(report.verify_text(result), file=sys.stdout if result.ok else sys.stderr)
    if not result.ok:
        return 1
    if args.witness:
        witnessed = witness.check(store, witness.read(Path(args.witness)))
        print(report.witness_text(witnessed), file=sys.stdout if witnessed.ok else sys.stderr)
        return 0 if witnessed.ok else 1
    return 0


def _raw_subject(args: argparse.Namespace, value: str) -> str | None:
    """A raw identifier -> the OneID (as text) it belongs to, or None."""
    from collector.dsr.offline import Desk

    cfg = load(args)
    kind = "email" if "@" in value else "phone" if value.lstrip().startswith("+") else "user_id"
    desk = Desk.open(cfg, readonly=True)
    try:
        one_id = desk.resolve({kind: value})
    finally:
        desk.close()
    return None if one_id is None else str(one_id)


def _export(store: AuditStore, args: argparse.Namespace) -> int:
    from identity.pseudonym import looks_like_pseudonym

    if args.subject:
        subject = args.subject
        if not subject.isdigit() and not looks_like_pseudonym(subject):
            found = _raw_subject(args, subject)
            if found is None:
                return fail("audit export: no person is known by that identifier", 1)
            args.subject = found
        elif ledger.subject_one_id(store, subject) < 0:
            return fail("audit export: no person is known by that pseudonym", 1)
    records = ledger.records(
        store,
        since=cli_time("--from", args.since) if args.since else None,
        until=cli_time("--to", args.until) if args.until else None,
        subject=args.subject,
    )
    if args.format == "json":
        sys.stdout.write(report.records_json(records) + "\n")
    else:
        report.records_csv(records, sys.stdout)
    return 0


def _why(store: AuditStore, args: argparse.Namespace) -> int:
    found = why.explain(store, args.message_id, args.destination)
    if not found:
        return fail(
            f"no decision recorded for message {args.message_id} and destination"
            f" {args.destination}",
            1,
        )
    for explanation in found:
        for line in report.why_lines(explanation):
            print(line)
    return 0
