"""`consentry db migrate`: bring Consentry's own database to the newest schema.

With ``[storage] backend = "postgres"`` it connects with the DSN in the
environment variable ``[storage] dsn_env`` and applies the files of
``collector/storage/postgres/schema`` under an advisory lock (safe while
replicas start); with ``"sqlite"`` it upgrades ``consentry.db`` in the data
directory. Prints ``schema version N (backend)``. Exit 2 when the DSN
variable is unset or the database is newer than this Consentry.
"""

from __future__ import annotations

import argparse

from collector.cli.common import add_common, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="Consentry's own database (schema migrations)")
    db_sub = db.add_subparsers(dest="db_cmd", required=True)
    m = db_sub.add_parser("migrate", help="apply the versioned schema files not yet applied")
    add_common(m)
    m.set_defaults(fn=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    from collector.storage.open import migrate

    cfg = load(args)
    reached = migrate(cfg)
    print(f"schema version {reached} ({cfg.storage.backend})")
    return 0
