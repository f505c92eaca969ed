"""Opening Consentry's own database for a running collector: ``open_backend``.

One place decides between the backends (``[storage] backend``) and hands
the runtime what differs between them:

- **sqlite** (the embedded default): ``consentry.db`` in the data directory,
  worker processes of one machine sharing it under a ``flock``
  (``lock_path``); a checkpointer copies the WAL back (one per machine:
  ``worker == 0``), and after an erasure (or once a full disk has room again)
  the WAL is truncated, so no frame keeps deleted rows.
- **postgres**: one database shared by every replica (the DSN from the
  variable ``dsn_env`` names); migrated at start-up under an advisory lock;
  the writer's unit of work reconnects when the server restarts; forwarders
  lease outbox rows for ``lease_seconds``. No file lock, no WAL of ours to
  truncate, no disk of ours to watch.

Raises ConfigError (an unset DSN variable) or the driver's error when the
database cannot be opened.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector.config import Config
from collector.storage.ports import DeliveryStorage

log = logging.getLogger("consentry.collector")


@dataclass
class Backend:
    """What the runtime needs from the database.

    ``uow``: the writer's unit of work (``ports.WriteUnitOfWork``, owned by
    the writer once handed to it); ``delivery``: the forwarder's storage;
    ``lock_path``: the file the writer ``flock``s (None: none); ``data_disk``:
    the directory whose free space ``/readyz`` checks (None: the database is
    elsewhere); ``truncate``: after an erasure, empty the WAL (blocking;
    returns whether it was emptied); ``recovered``: called on the writer
    thread when commits land again after failing (must not block);
    ``db_path``: the SQLite file (None on PostgreSQL)."""

    name: str
    uow: Any
    delivery: DeliveryStorage
    lock_path: Path | None
    data_disk: Path | None
    truncate: Callable[[], bool]
    recovered: Callable[[], None]
    db_path: Path | None = None
    on_close: Callable[[], None] | None = None

    def close(self) -> None:
        """Stop what the backend runs beside the writer (the checkpointer)."""
        if self.on_close is not None:
            self.on_close()


def open_backend(config: Config, *, worker: int = 0) -> Backend:
    """The configured backend, its schema brought to the newest version."""
    if config.storage.backend == "postgres":
        return _postgres(config)
    return _sqlite(config, worker=worker)


def _sqlite(config: Config, *, worker: int) -> Backend:
    from collector.storage.sqlite.checkpointer import Checkpointer, truncate_wal
    from collector.storage.sqlite.connection import DB_NAME, WRITER_LOCK, connect
    from collector.storage.sqlite.delivery import SqliteDelivery

    data_dir = config.data_dir
    path = data_dir / DB_NAME
    lock = data_dir / WRITER_LOCK
    uow = connect(path, synchronous=config.storage.synchronous, upgrade=True)
    os.chmod(path, 0o600)
    # One checkpointer is enough for the workers sharing this database.
    checkpointer = Checkpointer(path, lock_path=lock) if worker == 0 else None

    def truncate() -> bool:
        return truncate_wal(path, lock_path=lock)

    def recovered() -> None:
        # The WAL grew while commits failed: copy it back and truncate it, on a
        # thread of its own (it takes the writers' lock, which the caller holds).
        log.warning("writes succeed again; truncating the WAL")
        threading.Thread(target=truncate, name="consentry-wal-truncate", daemon=True).start()

    return Backend(
        name="sqlite",
        uow=uow,
        delivery=SqliteDelivery(path),
        lock_path=lock,
        data_disk=data_dir,
        truncate=truncate,
        recovered=recovered,
        db_path=path,
        on_close=checkpointer.close if checkpointer is not None else None,
    )


def _postgres(config: Config) -> Backend:
    from collector.storage.postgres.connection import connect, dsn_from_env
    from collector.storage.postgres.delivery import PostgresDelivery
    from collector.storage.postgres.unit import PostgresUnitOfWork

    dsn = dsn_from_env(config.storage.dsn_env)
    uow = PostgresUnitOfWork(connect(dsn, upgrade=True), dsn=dsn)

    def recovered() -> None:
        log.warning("writes to PostgreSQL succeed again")

    return Backend(
        name="postgres",
        uow=uow,
        delivery=PostgresDelivery(dsn, lease_s=config.storage.lease_seconds),
        lock_path=None,
        data_disk=None,
        # PostgreSQL's WAL and dead row versions are the server's: VACUUM and
        # WAL recycling are its operator's (README, "Scaling").
        truncate=lambda: True,
        recovered=recovered,
    )
