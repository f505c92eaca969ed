"""CPU time of processes from /proc, for the benchmarks' per-component figures:
our server processes by pid, and the PostgreSQL server's processes found by
walking /proc, split into the backends serving one database, the server's
shared processes (postmaster, WAL writer, checkpointer, ...) and the backends
of every other database (other users of a shared server, reported apart)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one live process in seconds; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _postgres_processes() -> dict[int, str]:
    """pid -> command line of every process named ``postgres``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        found[int(entry.name)] = cmdline.strip()
    return found


def _kind(cmdline: str, dbname: str) -> str:
    """``ours`` (a backend or autovacuum worker of ``dbname``), ``others``
    (one of another database) or ``shared`` (the postmaster and the server's
    own processes). A backend's title is ``postgres: [cluster: ]USER DB HOST
    STATE``; the server's own are ``postgres: [cluster: ]checkpointer`` etc."""
    words = cmdline.split()
    if dbname in words:
        return "ours"
    if "(" in cmdline or "[local]" in cmdline or "autovacuum worker" in cmdline:
        return "others"
    return "shared"


class PostgresCpu:
    """CPU seconds of the PostgreSQL server's processes between two readings,
    by kind (see ``_kind``). Processes that start inside the window count in
    full; one that ends inside it is lost (our backends live through it)."""

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.start = self._read()

    def _read(self) -> dict[int, tuple[str, float]]:
        out = {}
        for pid, cmdline in _postgres_processes().items():
            cpu = cpu_seconds(pid)
            if cpu is not None:
                out[pid] = (_kind(cmdline, self.dbname), cpu)
        return out

    def delta(self) -> dict[str, float]:
        """{"ours": s, "shared": s, "others": s} since construction."""
        totals = {"ours": 0.0, "shared": 0.0, "others": 0.0}
        for pid, (kind, cpu) in self._read().items():
            before = self.start.get(pid)
            totals[kind] += cpu - (before[1] if before else 0.0)
        return totals


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores
    (/proc/stat; idle and iowait are not busy): the difference of two readings
    shows what everything else on a shared machine used in a window."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8]) / TICK  # user .. steal; guest time is inside user
    idle = (fields[3] + fields[4]) / TICK
    return total - idle, total
