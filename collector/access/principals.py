"""Principals: API tokens and console users declared in configuration.

Config shape (names are a contract)::

    [[access.tokens]]
    name = "dpo"
    role = "auditor"
    token_env = "DPO_TOKEN"          # or token_file = "/run/secrets/dpo" (0600)

    [[access.users]]
    name = "maria"
    role = "auditor"
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$…"   # consentry access hash-password

The pre-existing ``[server] admin_token_env`` (default
``CONSENTRY_ADMIN_TOKEN``) keeps working as an admin token named ``admin``.

Tokens are compared in constant time (`hmac.compare_digest` on SHA-256
digests, so lengths do not leak either); passwords are verified with
argon2id (`argon2-cffi`, RFC 9106), never stored or logged in the clear.
Errors: `ConfigError` names the token and the variable or file that is missing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import argon2
import msgspec

from collector.access.roles import Role
from collector.errors import ConfigError

_hasher = argon2.PasswordHasher()
# Verifying against this keeps an unknown user's login as slow as a known one's.
_DUMMY = _hasher.hash("consentry-no-such-user")


class TokenConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    role: Role
    token_env: str | None = None
    token_file: str | None = None


class UserConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    role: Role
    password_hash: str


class AccessConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tokens: list[TokenConfig] = []
    users: list[UserConfig] = []
    # Console sessions end after this many idle minutes (a fraction is allowed).
    session_idle_minutes: Annotated[float, msgspec.Meta(gt=0)] = 30
    # Failed console logins allowed per client address and per user name, per 15 minutes.
    login_attempts: int = 10


@dataclass(frozen=True)
class Principal:
    """Who is acting: a token or a console user, and the role they act in."""

    name: str
    role: Role
    kind: str  # "token" | "user"


def _read_secret_file(path: str, *, name: str) -> str:
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"access token {name!r}: token_file {path} cannot be read ({exc.strerror})"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"access token {name!r}: token_file {path} must be readable by its owner only (chmod 600)"
        )
    return text


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Principals:
    """Resolves bearer tokens and console logins to principals."""

    def __init__(
        self, tokens: Mapping[bytes, Principal], users: Mapping[str, tuple[str, Principal]]
    ) -> None:
        self._tokens = dict(tokens)
        self._users = dict(users)

    @classmethod
    def from_config(
        cls,
        access: AccessConfig,
        *,
        admin_token_env: str | None,
        environ: Mapping[str, str] | None = None,
    ) -> Principals:
        """Read every token from its variable or file; a token whose variable is
        unset is a `ConfigError` naming it (the legacy admin variable is optional)."""
        env = os.environ if environ is None else environ
        tokens: dict[bytes, Principal] = {}
        if admin_token_env and env.get(admin_token_env):
            tokens[_digest(env[admin_token_env])] = Principal("admin", "admin", "token")
        for t in access.tokens:
            if (t.token_env is None) == (t.token_file is None):
                raise ConfigError(
                    f"access token {t.name!r}: set exactly one of token_env or token_file"
                )
            if t.token_env is not None:
                value = env.get(t.token_env, "")
                if not value:
                    raise ConfigError(
                        f"access token {t.name!r}: environment variable {t.token_env} is not set"
                    )
            else:
                assert t.token_file is not None
                value = _read_secret_file(t.token_file, name=t.name)
            if len(value) < 16:
                raise ConfigError(f"access token {t.name!r}: a token needs at least 16 characters")
            tokens[_digest(value)] = Principal(t.name, t.role, "token")
        users: dict[str, tuple[str, Principal]] = {}
        for u in access.users:
            if not u.password_hash.startswith("$argon2"):
                raise ConfigError(
                    f"access user {u.name!r}: password_hash must be an argon2 hash "
                    "(print one with `consentry access hash-password`)"
                )
            users[u.name] = (u.password_hash, Principal(u.name, u.role, "user"))
        return cls(tokens, users)

    def by_token(self, token: str) -> Principal | None:
        """The principal holding `token`, compared in constant time."""
        given = _digest(token)
        found = None
        for digest, principal in self._tokens.items():
            if hmac.compare_digest(digest, given):
                found = principal
        return found

    def login(self, name: str, password: str) -> Principal | None:
        """The user `name` when `password` matches its argon2 hash, else None."""
        stored = self._users.get(name)
        try:
            _hasher.verify(stored[0] if stored else _DUMMY, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return None
        return stored[1] if stored else None

    @property
    def names(self) -> Sequence[str]:
        return sorted({p.name for p in self._tokens.values()} | set(self._users))


def hash_password(password: str) -> str:
    """An argon2id hash for ``[[access.users]] password_hash``."""
    return _hasher.hash(password)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1);
    None for any other scheme or a missing header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
