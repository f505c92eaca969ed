"""JSONL files: one Segment-shaped message per line, as forwarded.

Appends to ``<path>/<name>.jsonl``, fsyncs before reporting success (so a
delivered row is on disk before its outbox row is deleted), and rotates the
file to ``<name>-<UTC time>.jsonl`` when it passes ``max_bytes``.

A batch is written whole or not at all (issue 19 item 1): ``os.write`` may
write fewer bytes than asked (a full disk, a file-size limit), so the write
loops until every byte is written; when a write or the fsync fails, the file
is truncated back to where the batch began (the end of the last whole line)
and the send reports a *retryable* failure, so the outbox keeps the rows. A
file left ending in a partial line (a crash between a short write and the
truncation) is cut back to its last whole line before the next append. Writers
of one file are serialized with ``flock``.

Erasure (GDPR Art. 17/19, issue 14 §4): ``delete`` rewrites every file of the
destination that holds a line whose ``context.consentry.oneId`` is one of the
person's, without those lines: a temporary file beside it, fsync, atomic
``os.replace``, fsync of the directory. Appends, rotation and rewrites take one
lock file per destination (``.<name>.lock``), so no append lands in a file
being replaced.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from collector.config import JsonlDestinationConfig
from collector.delivery.destinations.base import DeleteResult, SendResult

log = logging.getLogger("consentry.delivery")
_TAIL = 65_536


def last_line_end(fd: int, size: int) -> int:
    """The offset just after the last newline in the first ``size`` bytes of
    ``fd`` (0 when there is none): where the whole lines end."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL)
        chunk = os.pread(fd, end - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        end = start
    return 0


def append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` to ``fd`` (opened O_APPEND, locked) and fsync, all or
    nothing: on any error the file is truncated back to its size before the
    call and the error re-raised. Loops over short writes; a write that makes
    no progress is ENOSPC."""
    size = os.fstat(fd).st_size
    whole = last_line_end(fd, size) if size else 0
    if whole != size:
        log.warning("jsonl file ended in a partial line; cut back to its last whole line")
        os.ftruncate(fd, whole)
    view = memoryview(data)
    written = 0
    try:
        while written < len(data):
            n = os.write(fd, view[written:])
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written += n
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, whole)
            os.fsync(fd)
        except OSError as exc:  # the next append cuts the partial line
            log.error("jsonl file could not be truncated after a failed write: %s", exc.strerror)
        raise


class JsonlDestination:
    config_type = JsonlDestinationConfig

    def __init__(self, config: JsonlDestinationConfig, *, data_dir: Path, **_: object) -> None:
        self.name = config.name
        self._dir = Path(config.path) if config.path else data_dir / "out"
        self._max = config.max_bytes
        # 0700 like the rest of the data directory (its files are 0600); the
        # default directory is tightened if an older version created it 0755.
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not config.path and self._dir.stat().st_mode & 0o077:
            self._dir.chmod(0o700)
        self._file = self._dir / f"{config.name}.jsonl"
        self._lock = self._dir / f".{config.name}.lock"

    @property
    def current_file(self) -> Path:
        return self._file

    def _locked(self) -> int:
        """Take the destination's lock (appends, rotation and rewrites); the fd to close."""
        lock = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        return lock

    def _write(self, messages: list[bytes]) -> None:
        lock = self._locked()
        try:
            self._append(messages)
        finally:
            os.close(lock)

    def _append(self, messages: list[bytes]) -> None:
        data = b"".join(m + b"\n" for m in messages)
        fd = os.open(self._file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            append_whole(fd, data)
            size = os.fstat(fd).st_size
            if size >= self._max:
                try:
                    self._rotate()
                except OSError as exc:
                    # The batch is on disk: report it delivered; rotation is retried
                    # after the next append.
                    log.warning("jsonl %s: rotation failed: %s", self.name, exc.strerror)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self._dir / f"{self.name}-{stamp}.jsonl"
        n = 0
        while target.exists():  # never replace an earlier rotated file
            n += 1
            target = self._dir / f"{self.name}-{stamp}-{n}.jsonl"
        os.replace(self._file, target)

    async def send(self, messages: list[bytes]) -> SendResult:
        try:
            await asyncio.to_thread(self._write, messages)
        except OSError as exc:
            return SendResult(False, True, None, f"cannot write {self._file}: {exc.strerror}")
        return SendResult(True)

    def files(self) -> list[Path]:
        """This destination's files: the current one and the rotated ones."""
        rotated = sorted(self._dir.glob(f"{self.name}-*.jsonl"))
        return [*rotated, self._file] if self._file.exists() else rotated

    def _delete(self, one_ids: list[str]) -> int:
        needles = [b'"oneId":"' + o.encode() + b'"' for o in one_ids]
        lock = self._locked()
        try:
            return sum(rewrite_without(path, needles) for path in self.files())
        finally:
            os.close(lock)

    async def delete(self, one_ids: list[str]) -> DeleteResult:
        """Remove every line of these OneIDs (as this destination saw them)."""
        if not one_ids:
            return DeleteResult(True, 0)
        try:
            n = await asyncio.to_thread(self._delete, one_ids)
        except OSError as exc:
            return DeleteResult(False, None, f"cannot rewrite jsonl files: {exc.strerror}")
        return DeleteResult(True, n)

    async def close(self) -> None:
        return None


def rewrite_without(path: Path, needles: list[bytes]) -> int:
    """Rewrite ``path`` without the lines containing any of ``needles``
    (temporary file, fsync, atomic replace, directory fsync); returns lines
    removed. A file without such lines is left untouched."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if not any(n in data for n in needles):
        return 0
    kept: list[bytes] = []
    removed = 0
    for line in data.splitlines(keepends=True):
        if any(n in line for n in needles):
            removed += 1
        else:
            kept.append(line)
    tmp = path.with_name(f".{path.name}.erasing")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(b"".join(kept))
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return removed
