"""Can this collector store what it acknowledges? (``/readyz``, issue 19 item 2)

Ready means writes can land. Two checks, cheap enough for a load balancer's
poll: the data directory's file system has at least ``MIN_FREE_BYTES`` free
(``statvfs``; SQLite needs room for WAL frames before it can commit), and, when
the writer's last group failed to commit, a probe file of ``PROBE_BYTES`` can be
written and fsynced in the data directory. The reason is returned for the
response body, e.g. ``"disk full: 0 bytes free in /data (need 4194304)"``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

MIN_FREE_BYTES = 4 * 1024 * 1024
PROBE_BYTES = 64 * 1024


def not_ready_reason(data_dir: Path, last_failure: str | None) -> str | None:
    """Why writes cannot land now, or None when they can."""
    try:
        st = os.statvfs(data_dir)
    except OSError as exc:
        return f"data directory {data_dir} cannot be read: {exc.strerror}"
    free = st.f_bavail * st.f_frsize
    if free < MIN_FREE_BYTES:
        return f"disk full: {free} bytes free in {data_dir} (need {MIN_FREE_BYTES})"
    if last_failure is None:
        return None
    try:
        probe_write(data_dir)
    except OSError as exc:
        return f"writes are failing ({last_failure}); a test write failed: {exc.strerror}"
    return None


def probe_write(data_dir: Path) -> None:
    """Write, fsync and remove a ``PROBE_BYTES`` file; raises OSError if the disk refuses."""
    fd, name = tempfile.mkstemp(dir=data_dir, prefix=".probe-", suffix=".tmp")
    try:
        view = memoryview(b"\0" * PROBE_BYTES)
        written = 0
        while written < PROBE_BYTES:
            written += os.write(fd, view[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
