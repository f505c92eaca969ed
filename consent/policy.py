"""Jurisdiction packs: the law as data.

Each pack is a TOML file shipped in ``consent/packs`` (one per law) and can be
overridden by a file of the same name in a configured directory. Packs are
decoded into frozen Structs with unknown keys forbidden, so a typo in a pack
is an error naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec

from consent.errors import PolicyError
from consent.purposes import PURPOSES

Rule = Literal["none", "opt_in", "opt_out"]


class LegalBasis(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    default: str = "consent"
    necessary: str = "contract"


class Sensitive(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    rule: Literal["explicit", "separate", "limit_use"] = "explicit"
    categories: frozenset[str] = frozenset()


class Separate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    third_party: bool = False
    cross_border: bool = False
    home_region: str | None = None


class Gpc(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    opts_out: frozenset[str] = frozenset()


class Children(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    default_age: int = 16
    consenter: Literal["guardian", "self"] = "guardian"
    by_country: dict[str, int] = {}
    opt_in_purposes: frozenset[str] = frozenset()

    def age(self, country: str | None) -> int:
        return self.by_country.get(country or "", self.default_age)


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    purposes: dict[str, Rule]
    description: str = ""
    strictness: int = 0
    legal_basis: LegalBasis = LegalBasis()
    sensitive: Sensitive = Sensitive()
    separate: Separate = Separate()
    gpc: Gpc = Gpc()
    children: Children = Children()


BUILTIN = ("GDPR", "PIPL", "CCPA")


def load_pack(name: str, *, override_dir: Path | None = None) -> Policy:
    if override_dir is not None and (override_dir / f"{name}.toml").exists():
        data = (override_dir / f"{name}.toml").read_bytes()
        where = str(override_dir / f"{name}.toml")
    else:
        try:
            data = resources.files("consent").joinpath(f"packs/{name}.toml").read_bytes()
        except FileNotFoundError as exc:
            raise PolicyError(f"no policy pack {name!r}; built in: {', '.join(BUILTIN)}") from exc
        where = f"consent/packs/{name}.toml"
    try:
        policy = msgspec.toml.decode(data, type=Policy)
    except msgspec.ValidationError as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    unknown = set(policy.purposes) - set(PURPOSES)
    if unknown:
        raise PolicyError(f"{where}: unknown purposes {sorted(unknown)}; known: {PURPOSES}")
    return policy


class Policies:
    """The loaded packs and how a jurisdiction name picks one."""

    def __init__(
        self, packs: Mapping[str, Policy], *, default: str, unknown: str = "strictest"
    ) -> None:
        self._packs = dict(packs)
        if default not in self._packs:
            raise PolicyError(
                f"default jurisdiction {default!r} has no pack; have {sorted(self._packs)}"
            )
        self.default = default
        if unknown == "strictest":
            unknown = max(self._packs.values(), key=lambda p: p.strictness).name
        if unknown not in self._packs:
            raise PolicyError(f"unknown_jurisdiction {unknown!r} has no pack")
        self.unknown = unknown

    @classmethod
    def builtin(
        cls, *, default: str = "GDPR", unknown: str = "strictest", override_dir: Path | None = None
    ) -> Policies:
        return cls(
            {n: load_pack(n, override_dir=override_dir) for n in BUILTIN},
            default=default,
            unknown=unknown,
        )

    def get(self, jurisdiction: str | None) -> Policy:
        if jurisdiction is None:
            return self._packs[self.default]
        return self._packs.get(jurisdiction.upper()) or self._packs[self.unknown]

    def names(self) -> list[str]:
        return sorted(self._packs)
