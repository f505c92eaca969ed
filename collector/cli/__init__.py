"""``consentry``: a thin command line over the library, one module per command
group (``serve`` with ``forward``, ``keys``, ``audit``, ``outbox``, ``config``,
``plan``, ``quarantine``, ``dsr``, ``erase``, ``access``).

Every subcommand takes ``--config FILE`` and ``--data-dir DIR``. Exit codes:
0 success, 1 a check failed (verify, why, retire refused), 2 bad input or
configuration, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import NoReturn

from collector.cli import (
    access,
    audit,
    config,
    db,
    dsr,
    erase,
    keys,
    migrate_storage,
    outbox,
    plan,
    quarantine,
    serve,
)
from collector.cli.common import fail
from collector.errors import CollectorError
from consent.errors import ConsentError
from identity.errors import IdentityError

__all__ = ["main", "parser"]


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line naming the argument (subcommands inherit it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="consentry", description="Privacy-first first-party event collector")
    sub = p.add_subparsers(dest="cmd", required=True)
    for group in (
        serve,
        keys,
        audit,
        outbox,
        config,
        plan,
        quarantine,
        db,
        dsr,
        erase,
        migrate_storage,
        access,
    ):
        group.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (CollectorError, IdentityError, ConsentError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
