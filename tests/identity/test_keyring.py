from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from identity import Keyring, KeyringError, Pseudonymizer, load_master_key, new_master_key
from identity.keyring import MASTER_KEY_ENV, parse_master_key


def test_keyring_round_trip_is_encrypted_and_0600(tmp_path: Path) -> None:
    master = parse_master_key(new_master_key())
    ring = Keyring.generate()
    path = tmp_path / "keyring.json"
    ring.save(path, master)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ring.secret("k1").hex() not in path.read_text()
    loaded = Keyring.load(path, master)
    assert loaded.secret("k1") == ring.secret("k1")
    assert Pseudonymizer(loaded).pseudonym("email", "a@b.co") == Pseudonymizer(ring).pseudonym(
        "email", "a@b.co"
    )
    with pytest.raises(KeyringError, match="does not open"):
        Keyring.load(path, parse_master_key(new_master_key()))


def test_master_key_file_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MASTER_KEY_ENV, raising=False)
    path = tmp_path / "master.key"
    key = load_master_key(path, create=True)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(path) == key
    os.chmod(path, 0o644)
    with pytest.raises(KeyringError, match="chmod 600"):
        load_master_key(path)


def test_rotate_then_retire_destroys_material(tmp_path: Path) -> None:
    master = parse_master_key(new_master_key())
    ring = Keyring.generate()
    old_secret = ring.secret("k1")
    assert ring.rotate() == "k2"
    assert ring.active_kid == "k2"
    assert ring.lookup_kids() == ("k2", "k1")
    path = tmp_path / "keyring.json"
    ring.save(path, master)
    before = path.read_bytes()
    ring.retire("k1")
    ring.save(path, master)
    loaded = Keyring.load(path, master)
    assert loaded.lookup_kids() == ("k2",)
    with pytest.raises(KeyringError, match="retired"):
        loaded.secret("k1")
    # the sealed k1 blob is gone from the file, not just marked
    import json

    sealed_k1 = next(
        k["sealed"]["ciphertext"] for k in json.loads(before)["keys"] if k["kid"] == "k1"
    )
    assert sealed_k1.encode() not in path.read_bytes()
    assert old_secret not in path.read_bytes()
    assert not path.with_suffix(".json.tmp").exists()
    with pytest.raises(KeyringError, match="active"):
        loaded.retire("k2")
