"""`consentry outbox`: status, replay and purge of the delivery queues."""

from __future__ import annotations

import argparse
import json
import time

from collector.cli.common import add_common, cli_time, fail, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    o = sub.add_parser("outbox", help="inspect and manage delivery queues")
    osub = o.add_subparsers(dest="outbox_cmd", required=True)
    add_common(
        osub.add_parser(
            "status", help="pending, dead, last error and next attempt per destination (JSON)"
        )
    )
    rp = osub.add_parser("replay", help="queue dead letters again")
    add_common(rp)
    rp.add_argument("destination", help="destination name")
    rp.add_argument("--since", help="only rows created at or after this ISO time")
    rn = osub.add_parser(
        "retry", help="retry now: lift the destination's back-off and make waiting rows due"
    )
    add_common(rn)
    rn.add_argument("destination", help="destination name")
    pg = osub.add_parser("purge", help="delete dead letters")
    add_common(pg)
    pg.add_argument("destination", help="destination name")
    pg.add_argument("--dead", action="store_true", help="confirm: delete the dead letters")
    o.set_defaults(fn=cmd_outbox)


def cmd_outbox(args: argparse.Namespace) -> int:
    from collector.storage.open import open_uow, transaction
    from collector.storage.ports import empty_status

    cfg = load(args)
    uow = open_uow(cfg, readonly=args.outbox_cmd == "status")
    admin = uow.outbox_admin
    now = time.time()
    try:
        if args.outbox_cmd == "status":
            status = admin.status(now)
            for dest in cfg.effective_destinations():
                status.setdefault(dest.name, empty_status())
            print(json.dumps(status, indent=2, sort_keys=True))
            return 0
        if args.outbox_cmd in ("replay", "retry", "purge"):
            names = [d.name for d in cfg.effective_destinations()]
            if args.destination not in names:
                return fail(
                    f"outbox {args.outbox_cmd}: unknown destination {args.destination!r};"
                    f" configured: {', '.join(names)}"
                )
        if args.outbox_cmd == "replay":
            since = cli_time("--since", args.since).timestamp() if args.since else None
            with transaction(uow):
                n = admin.replay(args.destination, since, now)
            print(f"{n} dead rows of {args.destination} queued again")
            return 0
        if args.outbox_cmd == "retry":
            with transaction(uow):
                n = admin.retry_now(args.destination, now)
            print(f"{args.destination}: back-off lifted; {n} waiting rows due now")
            return 0
        if args.outbox_cmd == "purge":
            if not args.dead:
                return fail("purge only removes dead letters; pass --dead to confirm")
            with transaction(uow):
                n = admin.purge_dead(args.destination, now)
            print(f"{n} dead rows of {args.destination} deleted")
            return 0
    finally:
        uow.close()
    return fail("unknown outbox command")
