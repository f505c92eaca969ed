"""`consentry migrate-storage --from sqlite --to postgres`: move a single-node
data directory's database (``consentry.db``) into the PostgreSQL database
named by ``[storage] dsn_env``, migrating its schema first.

All or nothing (one PostgreSQL transaction); the ledger is verified on
PostgreSQL after the move and must end at SQLite's head. The SQLite file is
opened read-only and left in place. Stop every ``consentry serve`` on the
data directory first. Prints rows per table and the verified ledger.
Exit 2: unset DSN variable, missing database, a target that holds data, or a
ledger that does not verify.
"""

from __future__ import annotations

import argparse

from collector.cli.common import add_common, fail, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser(
        "migrate-storage", help="move the SQLite database of a data directory into PostgreSQL"
    )
    add_common(m)
    m.add_argument(
        "--from",
        dest="source",
        choices=["sqlite"],
        required=True,
        help="the backend to read (the data directory's consentry.db)",
    )
    m.add_argument(
        "--to",
        dest="target",
        choices=["postgres"],
        required=True,
        help="the backend to write (the DSN in the variable named by [storage] dsn_env)",
    )
    m.set_defaults(fn=cmd_migrate_storage)


def cmd_migrate_storage(args: argparse.Namespace) -> int:
    from collector.storage.postgres.connection import connect, dsn_from_env
    from collector.storage.postgres.transfer import transfer
    from collector.storage.sqlite.connection import DB_NAME

    cfg = load(args)
    path = cfg.data_dir / DB_NAME
    if not path.is_file():
        return fail(f"no SQLite database at {path} (--data-dir or [storage] data_dir)")
    conn = connect(dsn_from_env(cfg.storage.dsn_env), upgrade=True)
    try:
        report = transfer(path, conn)
    finally:
        conn.close()
    for table, n in sorted(report.rows.items()):
        if n:
            print(f"{table}: {n} rows")
    print(
        f"ledger verified on PostgreSQL: {report.ledger_records} records, head seq {report.head_seq}"
    )
    return 0
