"""Versioned keys, kept apart from the data and encrypted at rest.

The keyring file holds every pseudonym key version (``k1``, ``k2``, ...) with
its state, plus the ledger's Ed25519 signing key and the quarantine vault key.
Each secret is sealed with AES-256-GCM under the master key, which comes from
``CONSENTRY_MASTER_KEY`` or a 0600 file and is never written beside the keys
unless the operator lets it default to one.

States: ``active`` (derives new pseudonyms), ``previous`` (still looked up
during a rotation window), ``retired`` (material destroyed: the entry keeps
only its id and dates, so old pseudonyms stay recognisable but not derivable).
The file is rewritten atomically (a temp file of its own, fsync, rename), so a
retired secret does not survive in the keyring file. Changes go through
``Keyring.update`` (or ``open_or_create``), which hold an exclusive ``flock`` on
``<keyring>.lock`` from reading the file to re-reading what was saved, so two
operators rotating at once both land (one after the other) and nothing is
reported done that is not on disk (issue 19 item 8).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from identity.errors import KeyringError

FORMAT = "consentry-keyring/1"
MASTER_KEY_ENV = "CONSENTRY_MASTER_KEY"
T = TypeVar("T")
KeyState = Literal["active", "previous", "retired"]


class _Sealed(msgspec.Struct, frozen=True):
    nonce: str
    ciphertext: str


class _KeyEntry(msgspec.Struct, kw_only=True):
    kid: str
    state: KeyState
    created: datetime
    retired: datetime | None = None
    sealed: _Sealed | None = None


class _DomainEntry(msgspec.Struct, kw_only=True):
    kid: str
    created: datetime
    sealed: _Sealed


class _KeyringFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    format: str
    keys: list[_KeyEntry]
    signing: _Sealed
    vault: _Sealed
    domains: dict[str, list[_DomainEntry]] = {}


@dataclass(slots=True)
class KeyVersion:
    kid: str
    state: KeyState
    created: datetime
    retired: datetime | None = None
    secret: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class DomainKey:
    """A destination domain's own pseudonym key (already derived for the
    domain): pinned when the internal key rotates, so the destination keeps
    seeing the same pseudonyms; replaced only by rotating that destination."""

    kid: str
    created: datetime
    key: bytes = field(repr=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text.encode())


def parse_master_key(text: str) -> bytes:
    try:
        key = _unb64(text.strip())
    except ValueError as exc:
        raise KeyringError(
            "master key is not base64url; generate one with `consentry keys init`"
        ) from exc
    if len(key) != 32:
        raise KeyringError(f"master key must be 32 bytes, got {len(key)}")
    return key


def new_master_key() -> str:
    return _b64(secrets.token_bytes(32))


def load_master_key(file: Path | None, *, create: bool = False) -> bytes:
    """The master key from the environment, else from a 0600 file (made if asked)."""
    env = os.environ.get(MASTER_KEY_ENV)
    if env:
        return parse_master_key(env)
    if file is None:
        raise KeyringError(f"no master key: set {MASTER_KEY_ENV} or configure a key file")
    if not file.exists():
        if not create:
            raise KeyringError(
                f"master key file {file} does not exist: run `consentry keys init` with the same"
                f" --config to create it, or set {MASTER_KEY_ENV}"
            )
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written whole under a unique name, then linked into place: a process
        # racing us sees no file or a complete one, and the first link wins.
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(new_master_key() + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, file)
        finally:
            os.unlink(tmp)
    mode = file.stat().st_mode & 0o777
    if mode & 0o077:
        raise KeyringError(f"master key file {file} has mode {mode:o}; run chmod 600 on it")
    return parse_master_key(file.read_text())


class Keyring:
    """Pseudonym key versions plus the signing and vault keys."""

    def __init__(
        self,
        versions: list[KeyVersion],
        *,
        signing_key: bytes,
        vault_key: bytes,
        domains: dict[str, list[DomainKey]] | None = None,
    ) -> None:
        if sum(v.state == "active" for v in versions) != 1:
            raise KeyringError("a keyring needs exactly one active key")
        self._versions = versions
        self._domains: dict[str, list[DomainKey]] = domains or {}
        self._signing_key = signing_key
        self._vault_key = vault_key
        self._refresh()

    def _refresh(self) -> None:
        # Derived on every change, not per call: the pseudonymizer asks on every identifier.
        self._active = next(v.kid for v in self._versions if v.state == "active")
        previous = [v.kid for v in reversed(self._versions) if v.state == "previous"]
        self._lookup = (self._active, *previous)

    @classmethod
    def generate(cls, *, now: datetime | None = None) -> Keyring:
        created = now or datetime.now(UTC)
        return cls(
            [KeyVersion("k1", "active", created, secret=secrets.token_bytes(32))],
            signing_key=secrets.token_bytes(32),
            vault_key=secrets.token_bytes(32),
        )

    # -- queries -----------------------------------------------------------
    @property
    def versions(self) -> tuple[KeyVersion, ...]:
        return tuple(self._versions)

    @property
    def active_kid(self) -> str:
        return self._active

    def lookup_kids(self) -> tuple[str, ...]:
        """Active first, then previous keys still honoured for lookups."""
        return self._lookup

    def secret(self, kid: str) -> bytes:
        for version in self._versions:
            if version.kid == kid:
                if version.secret is None:
                    raise KeyringError(f"key {kid} is retired; its material was destroyed")
                return version.secret
        raise KeyringError(f"no key {kid} in the keyring")

    # -- destination domains (issue 14 §3) -------------------------------------
    def domain_kid(self, domain: str) -> str:
        """The key version a destination domain's pseudonyms are made with: its
        newest pinned key, else the active key."""
        pinned = self._domains.get(domain)
        return pinned[-1].kid if pinned else self._active

    def domain_secret(self, kid: str, domain: str) -> bytes | None:
        """A pinned domain key by kid (None: derive from the internal key ``kid``)."""
        for entry in self._domains.get(domain, ()):
            if entry.kid == kid:
                return entry.key
        return None

    def domain_kids(self, domain: str) -> tuple[str, ...]:
        """Every key version the domain may have been sent pseudonyms under,
        newest first: its pinned keys, and the internal keys still held
        (before the first pin, the domain followed the active key)."""
        pinned = [e.kid for e in reversed(self._domains.get(domain, ()))]
        held = [v.kid for v in reversed(self._versions) if v.secret is not None]
        return tuple(dict.fromkeys([*pinned, *held]))

    def pin(self, domains: list[str], *, now: datetime | None = None) -> list[str]:
        """Pin each domain that has no key of its own to the key it is served
        with now (the active key, derived for the domain); returns those pinned.
        Called before the internal key rotates, so no destination's pseudonyms
        change with it."""
        from identity.pseudonym import derive_domain_key

        created = now or datetime.now(UTC)
        done = []
        for domain in domains:
            if domain not in self._domains:
                key = derive_domain_key(self.secret(self._active), domain)
                self._domains[domain] = [DomainKey(self._active, created, key)]
                done.append(domain)
        return done

    def rotate_domain(self, domain: str, *, now: datetime | None = None) -> str:
        """Give one destination domain a new random key (its pseudonyms change
        from now on; the old key stays so erasure can still find old rows)."""
        self.pin([domain], now=now)
        entries = self._domains[domain]
        kid = f"d{len(entries) + 1}"
        entries.append(DomainKey(kid, now or datetime.now(UTC), secrets.token_bytes(32)))
        return kid

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self._signing_key)

    def signing_public_pem(self) -> bytes:
        return self.signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def vault_key(self) -> bytes:
        return self._vault_key

    # -- changes -----------------------------------------------------------
    def rotate(self, *, now: datetime | None = None, pin: list[str] | None = None) -> str:
        """Make a new active key; the old one stays for lookups as ``previous``.
        ``pin``: destination domains that keep their pseudonyms (see :meth:`pin`)."""
        self.pin(pin or [], now=now)
        for version in self._versions:
            if version.state == "active":
                version.state = "previous"
        numbers = [int(v.kid[1:]) for v in self._versions if v.kid[1:].isdigit()]
        kid = f"k{max(numbers, default=0) + 1}"
        self._versions.append(
            KeyVersion(kid, "active", now or datetime.now(UTC), secret=secrets.token_bytes(32))
        )
        self._refresh()
        return kid

    def retire(self, kid: str, *, now: datetime | None = None) -> None:
        for version in self._versions:
            if version.kid == kid:
                if version.state == "active":
                    raise KeyringError(f"key {kid} is active; rotate before retiring it")
                version.state = "retired"
                version.retired = now or datetime.now(UTC)
                version.secret = None
                self._refresh()
                return
        raise KeyringError(f"no key {kid} in the keyring")

    # -- persistence -------------------------------------------------------
    @staticmethod
    def _seal(aead: AESGCM, name: str, data: bytes) -> _Sealed:
        nonce = secrets.token_bytes(12)
        ct = aead.encrypt(nonce, data, f"{FORMAT}/{name}".encode())
        return _Sealed(_b64(nonce), _b64(ct))

    @staticmethod
    def _open(aead: AESGCM, name: str, sealed: _Sealed) -> bytes:
        try:
            return aead.decrypt(
                _unb64(sealed.nonce), _unb64(sealed.ciphertext), f"{FORMAT}/{name}".encode()
            )
        except (InvalidTag, ValueError) as exc:
            raise KeyringError("the master key does not open this keyring") from exc

    def save(self, path: Path, master_key: bytes) -> None:
        aead = AESGCM(master_key)
        doc = _KeyringFile(
            format=FORMAT,
            keys=[
                _KeyEntry(
                    kid=v.kid,
                    state=v.state,
                    created=v.created,
                    retired=v.retired,
                    sealed=None if v.secret is None else self._seal(aead, f"key/{v.kid}", v.secret),
                )
                for v in self._versions
            ],
            signing=self._seal(aead, "signing", self._signing_key),
            vault=self._seal(aead, "vault", self._vault_key),
            domains={
                domain: [
                    _DomainEntry(
                        kid=e.kid,
                        created=e.created,
                        sealed=self._seal(aead, f"domain/{domain}/{e.kid}", e.key),
                    )
                    for e in entries
                ]
                for domain, entries in self._domains.items()
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:  # mkstemp: mode 0600, a name of its own
                fh.write(msgspec.json.format(msgspec.json.encode(doc)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: Path, master_key: bytes) -> Keyring:
        try:
            doc = msgspec.json.decode(path.read_bytes(), type=_KeyringFile)
        except FileNotFoundError as exc:
            raise KeyringError(f"no keyring at {path}; run `consentry keys init`") from exc
        except msgspec.ValidationError as exc:
            raise KeyringError(f"keyring {path} is damaged: {exc}") from exc
        if doc.format != FORMAT:
            raise KeyringError(f"keyring {path} has format {doc.format!r}, expected {FORMAT!r}")
        aead = AESGCM(master_key)
        versions = [
            KeyVersion(
                e.kid,
                e.state,
                e.created,
                e.retired,
                None if e.sealed is None else cls._open(aead, f"key/{e.kid}", e.sealed),
            )
            for e in doc.keys
        ]
        domains = {
            domain: [
                DomainKey(e.kid, e.created, cls._open(aead, f"domain/{domain}/{e.kid}", e.sealed))
                for e in entries
            ]
            for domain, entries in doc.domains.items()
        }
        return cls(
            versions,
            signing_key=cls._open(aead, "signing", doc.signing),
            vault_key=cls._open(aead, "vault", doc.vault),
            domains=domains,
        )

    @classmethod
    def open_or_create(cls, path: Path, master_key: bytes) -> tuple[Keyring, bool]:
        if path.exists():
            return cls.load(path, master_key), False
        with keyring_lock(path):
            if path.exists():  # another process created it while we waited
                return cls.load(path, master_key), False
            ring = cls.generate()
            ring.save(path, master_key)
            return ring, True

    @classmethod
    def update(cls, path: Path, master_key: bytes, change: Callable[[Keyring], T]) -> T:
        """Apply ``change`` to the keyring on disk under the exclusive lock: load,
        change, save, then load again and check the saved versions are the
        changed ones; raises KeyringError when they are not (the change did not
        stick) and whatever ``change`` raises. Returns what ``change`` returned."""
        with keyring_lock(path):
            ring = cls.load(path, master_key)
            result = change(ring)
            ring.save(path, master_key)
            if cls.load(path, master_key)._fingerprint() != ring._fingerprint():
                raise KeyringError(f"keyring {path} did not keep the change; try again")
            return result

    def _fingerprint(self) -> tuple[object, ...]:
        """Key ids and states, pseudonym and per-destination: what a change alters."""
        return (
            tuple((v.kid, v.state) for v in self._versions),
            tuple(sorted((d, tuple(e.kid for e in es)) for d, es in self._domains.items())),
        )


@contextlib.contextmanager
def keyring_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``<path>.lock`` (created 0600), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
