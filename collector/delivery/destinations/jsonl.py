"""JSONL files: one Segment-shaped message per line, as forwarded.

Appends to ``<path>/<name>.jsonl``, fsyncs before reporting success (so a
delivered row is on disk before its outbox row is deleted), and rotates the
file to ``<name>-<UTC time>.jsonl`` when it passes ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

from collector.config import JsonlDestinationConfig
from collector.delivery.destinations.base import SendResult


class JsonlDestination:
    config_type = JsonlDestinationConfig

    def __init__(self, config: JsonlDestinationConfig, *, data_dir: Path, **_: object) -> None:
        self.name = config.name
        self._dir = Path(config.path) if config.path else data_dir / "out"
        self._max = config.max_bytes
        self._dir.mkdir(parents=True, exist_ok=True)
        self._file = self._dir / f"{config.name}.jsonl"

    @property
    def current_file(self) -> Path:
        return self._file

    def _write(self, messages: list[bytes]) -> None:
        data = b"".join(m + b"\n" for m in messages)
        fd = os.open(self._file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size >= self._max:
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

    async def close(self) -> None:
        return None
