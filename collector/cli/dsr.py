"""`consentry dsr`: lookup, open, list, show, verify, start, extend, refuse,
export, complete data subject requests from the command line, over the same module as the admin API
(``collector.dsr``). Raw identifiers given as options are pseudonymized in
memory and never stored or printed. The operator's shell user is recorded in
the access log as ``cli:<user>`` with the admin role (whoever can read the
data directory can read everything).

Erasure and withdrawal requests are completed through the running server
(``POST /v1/admin/dsr/{id}/complete``): erasure fans out to destinations.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from collector.cli.common import add_common, fail, load

IDENTIFIER_OPTIONS = (
    "email",
    "phone",
    "user-id",
    "anonymous-id",
    "wechat-openid",
    "wechat-unionid",
)


def _identifier_options(p: argparse.ArgumentParser) -> None:
    for kind in IDENTIFIER_OPTIONS:
        p.add_argument(f"--{kind}", help=f"the person's {kind.replace('-', ' ')} (never stored)")
    p.add_argument(
        "--wechat-app-id",
        help="the WeChat app an --wechat-openid belongs to (default: [identity] wechat_app_id)",
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser(
        "dsr", help="data subject requests: access, portability, erasure, withdrawal"
    )
    dsub = d.add_subparsers(dest="dsr_cmd", required=True)
    o = dsub.add_parser("open", help="open a request; prints its id")
    add_common(o)
    o.add_argument(
        "--type",
        required=True,
        choices=["access", "portability", "erasure", "withdrawal"],
        help="what the person asks for",
    )
    o.add_argument(
        "--jurisdiction", default="GDPR", help="GDPR, CCPA, PIPL, ... (sets the deadline)"
    )
    _identifier_options(o)
    lk = dsub.add_parser(
        "lookup", help="what is held on a person, as JSON (exit 1: nobody known by that)"
    )
    add_common(lk)
    _identifier_options(lk)
    ls = dsub.add_parser("list", help="the queue, earliest due first, with days left")
    add_common(ls)
    for name, text in (
        ("show", "one request as JSON"),
        ("export", "write the access export zip"),
        ("start", "start work on a verified request (state in_progress)"),
    ):
        p = dsub.add_parser(name, help=text)
        add_common(p)
        p.add_argument("id", help="request id (dsr_...)")
        if name == "export":
            p.add_argument("--out", required=True, help="zip file to write")
    for name, text in (
        ("extend", "extend the deadline once (GDPR Art. 12(3), CCPA), telling the person why"),
        ("refuse", "refuse the request, telling the person why (GDPR Art. 12(4))"),
    ):
        p = dsub.add_parser(name, help=text)
        add_common(p)
        p.add_argument("id", help="request id (dsr_...)")
        p.add_argument("--reason", required=True, help="the reason the person is told")
    v = dsub.add_parser("verify", help="record how the person's identity was verified")
    add_common(v)
    v.add_argument("id", help="request id (dsr_...)")
    v.add_argument("--method", required=True, help="e.g. email_link, signed_in_account")
    c = dsub.add_parser("complete", help="complete an access or portability request")
    add_common(c)
    c.add_argument("id", help="request id (dsr_...)")
    c.add_argument("--note", default="", help="what was done, kept in the history")
    d.set_defaults(fn=cmd_dsr)


def _given(args: argparse.Namespace) -> dict[str, str]:
    return {
        kind.replace("-", "_"): value
        for kind in IDENTIFIER_OPTIONS
        if (value := getattr(args, kind.replace("-", "_")))
    }


def cmd_dsr(args: argparse.Namespace) -> int:
    from collector.dsr import export, store
    from collector.dsr.model import extend, move, open_request
    from collector.dsr.offline import Desk
    from collector.storage.open import transaction
    from collector.storage.ports import AccessEntry

    cfg = load(args)
    desk = Desk.open(cfg)
    me = f"cli:{getpass.getuser()}"
    now = datetime.now(UTC)
    deadlines = cfg.dsr.deadlines

    def log(permission: str, action: str, rid: str | None, subject: str | None) -> None:
        entry = AccessEntry(
            now.timestamp(),
            me,
            "admin",
            permission,
            action,
            rid,
            subject,
            "ok" if subject else "not found",
        )
        desk.conn.dsr.log_access(entry)

    try:
        with transaction(desk.conn):
            if args.dsr_cmd in ("open", "lookup"):
                given = _given(args)
                if not given:
                    options = ", ".join(f"--{k}" for k in IDENTIFIER_OPTIONS)
                    return fail(f"dsr {args.dsr_cmd}: give one of {options}")
                one_id = desk.resolve(given, wechat_app_id=args.wechat_app_id)
            if args.dsr_cmd == "lookup":
                log("person.lookup", "lookup", None, None if one_id is None else str(one_id))
                if one_id is None:
                    return fail("dsr lookup: no person is known by these identifiers", 1)
                print(json.dumps(desk.summary(one_id), indent=2, default=str))
                return 0
            if args.dsr_cmd == "open":
                req = open_request(
                    id=store.new_id(),
                    type=args.type,
                    jurisdiction=args.jurisdiction,
                    received_at=now,
                    by=me,
                    identifier_kinds=tuple(sorted(given)),
                    subject=None if one_id is None else str(one_id),
                    deadlines=deadlines,
                )
                store.save(desk.conn, req)
                log("dsr.manage", "open request", req.id, req.subject)
                print(req.id)
                if one_id is None:
                    print("note: no person is known by these identifiers", file=sys.stderr)
                return 0
            if args.dsr_cmd == "list":
                queue = store.all_requests(desk.conn)
                if not queue:
                    # Silence would read as "nothing was asked of us" or as a failure.
                    print("no data subject requests", file=sys.stderr)
                for r in queue:
                    late = " OVERDUE" if r.overdue(now) else ""
                    print(
                        f"{r.id}  {r.type:<11} {r.state:<11} {r.jurisdiction:<5}"
                        f" due {r.due_at.date()} ({r.days_left(now):.0f} days left){late}"
                    )
                log("dsr.manage", "list requests", None, "*")
                return 0
            req = store.load(desk.conn, args.id)
            if args.dsr_cmd == "show":
                print(json.dumps(store.as_json(req, now), indent=2, default=str))
            elif args.dsr_cmd == "verify":
                req = move(req, "verified", at=now, by=me, method=args.method)
                store.save(desk.conn, req)
            elif args.dsr_cmd == "start":
                req = move(req, "in_progress", at=now, by=me)
                store.save(desk.conn, req)
            elif args.dsr_cmd == "extend":
                req = extend(req, at=now, by=me, reason=args.reason, deadlines=deadlines)
                store.save(desk.conn, req)
                print(f"{req.id} now due {req.due_at.date()} ({req.days_left(now):.0f} days left)")
            elif args.dsr_cmd == "refuse":
                req = move(req, "refused", at=now, by=me, note=args.reason)
                store.save(desk.conn, req)
            elif args.dsr_cmd == "complete":
                if req.type in ("erasure", "withdrawal"):
                    return fail(
                        f"dsr complete: {req.type} requests run through the server:"
                        f" POST /v1/admin/dsr/{req.id}/complete with an admin token"
                    )
                req = move(req, "completed", at=now, by=me, note=args.note)
                store.save(desk.conn, req)
            elif args.dsr_cmd == "export":
                if req.subject is None:
                    return fail(f"dsr export: request {req.id} matched nobody", 1)
                if req.state not in ("verified", "in_progress", "completed"):
                    return fail(f"dsr export: verify the person's identity first ({req.state})", 1)
                data = export.build(
                    store.as_json(req, now),
                    desk.summary(int(req.subject)),
                    controller=cfg.dsr.controller,
                    now=now,
                )
                Path(args.out).write_bytes(data)
                print(f"wrote {args.out} ({len(data)} bytes)")
            log(
                "dsr.export" if args.dsr_cmd == "export" else "dsr.manage",
                args.dsr_cmd,
                req.id,
                req.subject or "-",
            )
            return 0
    finally:
        desk.close()
