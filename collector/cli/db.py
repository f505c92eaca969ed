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
    cfg = load(args)
    if cfg.storage.backend == "postgres":
        from collector.storage.postgres.connection import connect, dsn_from_env
        from collector.storage.postgres.migrate import version

        conn = connect(dsn_from_env(cfg.storage.dsn_env), upgrade=True)
        try:
            reached = version(conn)
        finally:
            conn.close()
    else:
        from collector.storage.sqlite.connection import DB_NAME
        from collector.storage.sqlite.connection import connect as sqlite_connect
        from collector.storage.sqlite.migrate import version as sqlite_version

        cfg.data_dir.mkdir(parents=True, exist_ok=True)
        sconn = sqlite_connect(cfg.data_dir / DB_NAME, upgrade=True)
        try:
            reached = sqlite_version(sconn)
        finally:
            sconn.close()
    print(f"schema version {reached} ({cfg.storage.backend})")
    return 0
