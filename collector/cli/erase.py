"""`consentry erase`: erase a person (GDPR Art. 17, PIPL Art. 47, CCPA
1798.105) found by raw identifiers, through the same code as ``POST
/v1/erase`` (``collector.http.erasure``): graph links, consent state and
subject keys, pending outbox rows and decisions go in one transaction, and a
deletion request is queued per destination, which the running collector's
forwarder sends (any replica, on PostgreSQL). The values given are
pseudonymized in memory, never stored or printed. The operator's shell user
is written to the access log as ``cli:<user>`` with the admin role.

Prints the summary (JSON); exit 1 when nobody is known by the identifiers.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json

from collector.cli.common import add_common, fail, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    e = sub.add_parser(
        "erase", help="erase a person found by raw identifiers (GDPR Art. 17); prints receipts"
    )
    add_common(e)
    for flag in ("user-id", "anonymous-id", "email", "phone"):
        e.add_argument(f"--{flag}", help=f"the person's {flag.replace('-', ' ')} (never stored)")
    e.set_defaults(fn=cmd_erase)


def cmd_erase(args: argparse.Namespace) -> int:
    from collector.access.principals import Principal
    from collector.access.roles import Permission
    from collector.http import erasure
    from collector.http.guard import access_entry
    from collector.runtime import Runtime, validate

    if not (args.user_id or args.anonymous_id or args.email or args.phone):
        return fail("erase: give --user-id, --anonymous-id, --email or --phone")
    cfg = load(args)
    validate(cfg)
    rt = Runtime(cfg)
    try:
        traits = {k: v for k, v in (("email", args.email), ("phone", args.phone)) if v}
        identifiers = rt.preparer.identifiers_for(args.user_id, args.anonymous_id, traits, "$")
        summary = asyncio.run(erasure.erase(rt, identifiers))
        people = summary.get("people")
        subject = ",".join(str(p["one_id"]) for p in people) if isinstance(people, list) else None
        entry = access_entry(
            Principal(f"cli:{getpass.getuser()}", "admin", "user"),
            Permission.ERASE,
            "erase",
            subject=subject,
            outcome="erased" if subject else "not found",
        )
        rt.writer.call(lambda uow: uow.dsr.log_access(entry))
    finally:
        rt.close()
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0 if subject else 1
