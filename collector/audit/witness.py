"""Ledger checkpoints witnessed outside the database.

A checkpoint seals the ledger's head (seq, hash) with Ed25519. Kept only in
the database, it can be deleted together with the records it seals, and the
shorter ledger still verifies. A witness keeps a copy where whoever edits the
database cannot reach it: a file (one JSON line per checkpoint, appended with
``O_APPEND``), and optionally an HTTP endpoint. ``check`` then tells whether
the ledger still holds every witnessed record with the witnessed hash.

Line format (UTF-8 JSON, one per line)::

    {"seq": 42, "hash": "<64 hex>", "signed_at": "2026-11-29T09:00:00+00:00"}

Lines are written after the transaction that sealed them committed (a crash
in between loses a line, never witnesses a record that was not stored), and
not fsynced: the witness guards against later edits, not power loss.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec

from collector.errors import CollectorError
from collector.storage.ports import AuditStore
from consent.ledger import Checkpoint

log = logging.getLogger("consentry.audit")


class WitnessLine(msgspec.Struct, frozen=True, kw_only=True):
    """One witnessed checkpoint: ``hash`` is the chain hash at ``seq`` in hex."""

    seq: int
    hash: str
    signed_at: str


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(WitnessLine)


def encode(sealed: Checkpoint) -> bytes:
    line = WitnessLine(seq=sealed.seq, hash=sealed.hash.hex(), signed_at=sealed.signed_at)
    return _encoder.encode(line) + b"\n"


class FileWitness:
    """Appends checkpoints to ``path`` (created 0600). Safe to share between
    worker processes: each line is one ``write`` on an ``O_APPEND`` descriptor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def append(self, sealed: Sequence[Checkpoint]) -> None:
        if sealed:
            os.write(self._fd, b"".join(encode(s) for s in sealed))

    def close(self) -> None:
        os.close(self._fd)


class HttpWitness:
    """POSTs each checkpoint line (``application/json``) to ``url`` from a
    background thread, so a slow endpoint never holds up a commit. Best effort:
    a failure is logged and the line is not retried (the file witness is the
    one ``audit verify`` reads)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self._url = url
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._client = httpx.Client(timeout=timeout)
        self._thread = threading.Thread(target=self._run, name="consentry-witness", daemon=True)
        self._thread.start()

    def append(self, sealed: Sequence[Checkpoint]) -> None:
        for s in sealed:
            self._queue.put(encode(s))

    def _run(self) -> None:
        while (body := self._queue.get()) is not None:
            try:
                response = self._client.post(
                    self._url, content=body, headers={"Content-Type": "application/json"}
                )
                if response.status_code >= 300:
                    log.warning("witness %s answered HTTP %d", self._url, response.status_code)
            except httpx.HTTPError as exc:
                log.warning("witness %s unreachable: %s", self._url, type(exc).__name__)

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self._client.close()


class Witnesses:
    """The configured witnesses, fed the checkpoints of each commit: ``seal``
    before the commit (inside the transaction), ``publish`` after it,
    ``discard`` after a rollback."""

    def __init__(self, witnesses: Iterable[FileWitness | HttpWitness]) -> None:
        self._witnesses = list(witnesses)
        self._pending: list[Checkpoint] = []

    def __bool__(self) -> bool:
        return bool(self._witnesses)

    def seal(self, sealed: Checkpoint) -> None:
        self._pending.append(sealed)

    def publish(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        for witness in self._witnesses:
            try:
                witness.append(pending)
            except OSError:
                log.exception("could not append %d checkpoint(s) to a witness", len(pending))

    def discard(self) -> None:
        self._pending.clear()

    def close(self) -> None:
        for witness in self._witnesses:
            witness.close()


def read(path: Path) -> list[WitnessLine]:
    """The lines of a witness file; ``CollectorError`` naming the line if one
    does not decode (a torn last line, from a crash mid-write, is skipped)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CollectorError(f"cannot read witness {path}: {exc.strerror}") from None
    lines = data.split(b"\n")
    out: list[WitnessLine] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            out.append(_decoder.decode(raw))
        except msgspec.DecodeError:
            if number == len(lines):  # no newline yet: torn by a crash
                continue
            raise CollectorError(f"witness {path} line {number} is not a checkpoint") from None
    return out


@dataclass(frozen=True, slots=True)
class WitnessResult:
    """``ok`` when every witnessed record is in the ledger with the witnessed
    hash; ``checked`` lines; ``last_seq`` the highest witnessed seq."""

    ok: bool
    checked: int
    last_seq: int
    problem: str | None = None
    first_bad_seq: int | None = None


def check(store: AuditStore, lines: Sequence[WitnessLine]) -> WitnessResult:
    """Compare the ledger with its witness: a witnessed record that is gone
    means the ledger was cut short; a different hash, that it was rewritten."""
    hashes = store.chain_hashes([line.seq for line in lines])
    last = 0
    for line in sorted(lines, key=lambda item: item.seq):
        last = line.seq
        stored = hashes.get(line.seq)
        if stored is None:
            return WitnessResult(
                False,
                len(lines),
                last,
                f"record {line.seq}, witnessed at {line.signed_at}, is gone (records deleted)",
                line.seq,
            )
        if stored.hex() != line.hash:
            return WitnessResult(
                False,
                len(lines),
                last,
                f"record {line.seq} differs from the witness of {line.signed_at}",
                line.seq,
            )
    return WitnessResult(True, len(lines), last)


def from_config(witness_file: str | None, witness_url: str | None) -> Witnesses:
    """The witnesses ``[audit]`` configures (none: an empty ``Witnesses``)."""
    found: list[FileWitness | HttpWitness] = []
    if witness_file:
        found.append(FileWitness(Path(witness_file)))
    if witness_url:
        found.append(HttpWitness(witness_url))
    return Witnesses(found)
