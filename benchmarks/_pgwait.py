"""What the backends serving one database wait for, sampled from
pg_stat_activity while a benchmark runs: how often a replica's transaction
waits on the shared advisory write lock (ledger and graph appends are
serialized under it) or on the WAL flush of its commit, the two candidates
for the single-writer ceiling."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import psycopg

QUERY = """
SELECT coalesce(wait_event_type || ':' || wait_event, 'running')
FROM pg_stat_activity
WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid()
UNION ALL
SELECT 'advisory lock held'
FROM pg_locks l JOIN pg_database d ON d.oid = l.database
WHERE d.datname = %s AND l.locktype = 'advisory' AND l.granted
"""


class WaitSampler:
    """Samples the database's active backends every ``interval`` seconds on
    its own connection until ``stop()``; ``summary()`` gives the mean number
    of backends per state (``Lock:advisory``, ``IO:WALSync``, ``running``,
    ...) over the samples, and ``advisory lock held``: the share of samples
    in which a backend held an advisory lock (the write lock's utilization)."""

    def __init__(self, dsn: str, dbname: str, interval: float = 0.05) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.dbname = dbname
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            # pg_stat_activity is a snapshot per transaction; autocommit gives a new one.
            rows: list[Any] = self.conn.execute(QUERY, (self.dbname, self.dbname)).fetchall()
            self.counts.update(r[0] for r in rows)
            self.samples += 1
            time.sleep(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()

    def summary(self) -> dict[str, float]:
        """state -> mean active backends in it, most common first."""
        n = max(1, self.samples)
        return {state: count / n for state, count in self.counts.most_common()}
