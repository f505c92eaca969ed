"""The quarantine keeps rejected payloads encrypted, and only for their TTL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from collector import config
from collector.errors import CollectorError
from collector.pipeline.decode import Rejection
from collector.runtime import Runtime
from identity.keyring import new_master_key


def test_quarantine_is_encrypted_bound_to_its_row_and_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENTRY_MASTER_KEY", new_master_key())
    monkeypatch.setenv("CONSENTRY_WRITE_KEY", "k")
    rt = Runtime(config.load(None, data_dir=str(tmp_path / "d")))
    try:
        raw = b'{"type":"track","userId":42,"traits":{"email":"secret@example.com"}}'
        rej = Rejection(0, "Expected `str`, got `int`", "$.batch[0].userId", raw)
        old = time.time() - 40 * 86400
        rt._last_expiry = time.time()  # housekeeping just ran
        rt.writer.call(lambda c: rt.router.quarantine(c, rej, source="default", now=old))
        rt.writer.call(lambda c: rt.router.quarantine(c, rej, source="default", now=time.time()))
        rows = rt.writer.call(
            lambda c: c.execute(
                "SELECT id, expires_at, sealed FROM quarantine ORDER BY id"
            ).fetchall()
        )
        assert len(rows) == 2 and all(b"secret@example.com" not in bytes(r[2]) for r in rows)
        row_id, expires, sealed = rows[1]
        assert rt.router.vault.open(bytes(sealed), f"quarantine/{row_id}/{expires}".encode()) == raw
        with pytest.raises(CollectorError):
            rt.router.vault.open(bytes(sealed), f"quarantine/{rows[0][0]}/{expires}".encode())
        rt._last_expiry = 0.0
        rt.writer.call(lambda c: None)  # any commit runs the housekeeping (at most once a minute)
        left = rt.writer.call(lambda c: [r[0] for r in c.execute("SELECT id FROM quarantine")])
        assert left == [row_id]
    finally:
        rt.close()
