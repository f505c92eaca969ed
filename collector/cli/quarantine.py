"""`consentry quarantine`: list kept messages, replay them after a fix."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from collector.cli.common import add_common, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    q = sub.add_parser("quarantine", help="list or replay quarantined messages")
    qsub = q.add_subparsers(dest="quarantine_cmd", required=True)
    ls = qsub.add_parser("list", help="kept messages: id, source, received, reason and JSON path")
    add_common(ls)
    ls.add_argument("--source", help="only this source's messages")
    ls.add_argument("--json", action="store_true", help="print JSON instead of lines")
    rp = qsub.add_parser("replay", help="run kept messages through the pipeline again")
    add_common(rp)
    rp.add_argument("--source", help="only this source's messages")
    rp.add_argument("ids", nargs="*", type=int, help="row ids (default: every kept message)")
    q.set_defaults(fn=cmd_quarantine)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def cmd_quarantine(args: argparse.Namespace) -> int:
    from collector.pipeline.replay import quarantined, replay
    from collector.runtime import Runtime, validate

    cfg = load(args)
    validate(cfg)
    rt = Runtime(cfg)
    try:
        if args.quarantine_cmd == "list":
            rows = quarantined(rt, source=args.source)
            listed = [
                {
                    "id": r.id,
                    "source": r.source,
                    "received_at": _when(r.received_at),
                    "expires_at": _when(r.expires_at),
                    "reason": r.reason,
                    "path": r.path,
                }
                for r in rows
            ]
            if args.json:
                print(json.dumps(listed, indent=2))
            else:
                for r in listed:
                    print(
                        f"{r['id']}  {r['source']}  {r['received_at']}  {r['path']}  {r['reason']}"
                    )
            return 0
        result = replay(rt, source=args.source, ids=args.ids)
        print(f"{len(result.replayed)} replayed, {len(result.held)} still held")
        for row_id, reason, path in result.held:
            print(f"  {row_id}: {reason} ({path})")
        return 0 if not result.held else 1
    finally:
        rt.close()
