"""`consentry keys`: the pseudonym keyring (init, status, migrate, rotate, retire)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from collector.cli.common import add_common, fail, load

Relinked = Callable[[str], tuple[int, int]]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser("keys", help="pseudonym keyring: init, status, rotate, retire")
    ks = k.add_subparsers(dest="keys_cmd", required=True)
    for name, text in (
        ("init", "create the master key and keyring"),
        ("status", "list key versions"),
    ):
        add_common(ks.add_parser(name, help=text))
    rot = ks.add_parser(
        "rotate",
        help="make a new active internal key (destinations keep their pseudonyms);"
        " with --destination, give that destination a new key instead",
    )
    add_common(rot)
    rot.add_argument(
        "--destination",
        metavar="NAME",
        help="rotate only this destination's pseudonym key: from now on it receives new,"
        " unlinkable pseudonyms for everyone (its history splits in two downstream)",
    )
    m = ks.add_parser("migrate", help="show relinking progress of previous keys (resumable)")
    add_common(m)
    m.add_argument("--watch", type=float, help="refresh every N seconds until done")
    r = ks.add_parser("retire", help="destroy a previous key's material")
    add_common(r)
    r.add_argument("kid", help="key id, e.g. k1")
    r.add_argument("--force", action="store_true", help="retire even if identifiers are unmigrated")
    k.set_defaults(fn=cmd_keys)


def cmd_keys(args: argparse.Namespace) -> int:
    from collector.runtime import open_keyring
    from collector.storage.open import open_uow, transaction
    from identity.keyring import Keyring

    cfg = load(args)
    if args.keys_cmd == "init":
        cfg.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        ring, _, created = open_keyring(cfg, create=True, create_master_anywhere=True)
        print(
            ("Created" if created else "Keyring already exists at")
            + f" {cfg.keyring_path()}; active key {ring.active_kid}"
        )
        return 0
    ring, master, _ = open_keyring(cfg, create=False)
    uow = open_uow(cfg)
    links = uow.key_links
    try:
        if args.keys_cmd == "status":
            for v in ring.versions:
                extra = ""
                if v.state == "previous":
                    done, total = links.relinked(v.kid)
                    extra = f", {done}/{total} identifiers relinked, {total - done} not yet"
                print(f"{v.kid}\t{v.state}\tcreated {v.created.isoformat()}{extra}")
            return 0
        if args.keys_cmd == "migrate":
            return _migrate_progress(ring.lookup_kids()[1:], links.relinked, watch=args.watch)
        if args.keys_cmd == "rotate":
            destinations = {d.name: d.domain() for d in cfg.effective_destinations()}
            path = cfg.keyring_path()
            if args.destination:
                domain = destinations.get(args.destination)
                if domain is None:
                    return fail(
                        f"no destination {args.destination!r} in the configuration;"
                        f" configured: {', '.join(destinations) or 'none'}",
                        2,
                    )
                # Under the keyring lock, re-read and verified after saving.
                kid = Keyring.update(path, master, lambda r: r.rotate_domain(domain))
                print(
                    f"Destination {args.destination} now receives pseudonyms under {kid}: every"
                    " person's ids there change (its history splits in two downstream); erasure"
                    " still deletes under the old key too. Restart `consentry serve` to use it."
                )
                return 0
            pins = sorted(set(destinations.values()))
            kid = Keyring.update(path, master, lambda r: r.rotate(pin=pins))
            print(
                f"Active key is now {kid}; previous keys are still looked up; destinations keep"
                " their pseudonyms. Restart `consentry serve` to use it."
            )
            return 0
        if args.keys_cmd == "retire":
            done, total = links.relinked(args.kid)
            left = total - done
            if left and not args.force:
                return fail(
                    f"key {args.kid} still has {left} identifiers linked only under it; they would start new"
                    " OneIDs when seen again. Wait for them to return, or pass --force.",
                    1,
                )
            Keyring.update(cfg.keyring_path(), master, lambda r: r.retire(args.kid))
            with transaction(uow):
                links.forget(args.kid)
            print(
                f"Key {args.kid} retired; its material was destroyed ({left} identifiers left unmigrated)"
            )
            return 0
    finally:
        uow.close()
    return fail("unknown keys command")


def _migrate_progress(kids: Sequence[str], relinked: Relinked, *, watch: float | None) -> int:
    """Rotation relinks lazily: an identifier moves to the new key when it is seen
    again (its raw value is never stored, so nothing else can move it). This shows
    that progress, resumably, from the database."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if not kids:
        print("no previous key is being migrated")
        return 0
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()) as progress:
        tasks = {}
        for kid in kids:
            done, total = relinked(kid)
            tasks[kid] = progress.add_task(f"relinking {kid}", total=max(total, 1), completed=done)
        while watch:
            time.sleep(watch)
            finished = True
            for kid in kids:
                done, total = relinked(kid)
                progress.update(tasks[kid], total=max(total, 1), completed=done)
                finished = finished and done >= total
            if finished:
                break
    return 0
