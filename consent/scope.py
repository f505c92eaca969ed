"""What a consent covers, and how consent states combine (pure).

- Separate consents are keyed per recipient *and* region:
  ``third_party:<recipient>@<REGION>`` (PIPL Art. 23) and
  ``cross_border:<recipient>@<REGION>`` (PIPL Art. 39; GDPR Art. 49(1)(a)), so a
  consent for "Ads Inc" in the US does not cover "Ads Inc" in Singapore.
- Sensitive consents are keyed per category (``sensitive:health``) and carry the
  purposes they were given for (GDPR Art. 9(2)(a): "for one or more specified
  purposes"); a consent naming no purpose covers ``necessary`` only.
- Notice versions compare naturally (``v2`` < ``v10``, ``2024-05`` < ``2024-11``);
  consent given under an older notice than a destination requires counts as
  absent (PIPL Art. 14 para. 2: re-consent when the purpose changes).
- Signals are ordered by their own time: a signal older than the record it would
  replace changes nothing (GDPR Art. 7(3), PIPL Art. 15).
- Merges: an explicit denial on either side wins; a grant with no record on the
  other side stays granted; *no record* is never a denial.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consent.errors import ConsentScopeError
from consent.purposes import PURPOSES
from consent.state import PurposeState

_TOKEN = re.compile(r"\d+|[^\d]+")


def recipient_key(kind: str, recipient: str, region: str | None) -> str:
    """``kind:<recipient>@<REGION>``; ``kind`` is ``third_party`` or ``cross_border``."""
    return f"{kind}:{recipient}@{region.upper()}" if region else f"{kind}:{recipient}"


def notice_key(version: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key that orders versions naturally (digit runs as numbers)."""
    return tuple(
        (0, int(t), "") if t.isdigit() else (1, 0, t) for t in _TOKEN.findall(version.lower())
    )


def notice_at_least(version: str | None, minimum: str) -> bool:
    """Whether ``version`` is ``minimum`` or newer; an unversioned consent is older
    than any minimum."""
    return version is not None and notice_key(version) >= notice_key(minimum)


def fresh(
    current: Mapping[str, PurposeState], purposes: Mapping[str, bool], at: float
) -> dict[str, bool]:
    """The part of an event's signal that is newer than what is on record: a key
    whose record was given at or after ``at`` (epoch seconds, the signal's own
    time) is left alone, so a replayed spool or a cached banner state never
    overrides a later explicit choice."""
    out: dict[str, bool] = {}
    for key, value in purposes.items():
        entry = current.get(key)
        if entry is not None and entry.at is not None and entry.at >= at:
            continue
        if entry is None or entry.granted != value:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one side of a merge held for a key: its OneID and record (or none)."""

    one_id: int
    record_id: int | None
    granted: bool | None


def merge_states(
    sides: Sequence[tuple[int, Mapping[str, PurposeState]]],
) -> tuple[dict[str, PurposeState], dict[str, tuple[Contribution, ...]]]:
    """Merge the consent states of clusters that became one person.

    ``sides``: (OneID, state) pairs, the surviving one first. Per key: a denial on
    any side wins (the latest denial is kept); otherwise the latest grant is kept;
    a key no side has stays absent. Returns the merged entries (each the winning
    side's own entry, so its record, guardian flag, scope and time survive) and,
    per key, what each side contributed."""
    keys = sorted({k for _, s in sides for k in s})
    merged: dict[str, PurposeState] = {}
    contributions: dict[str, tuple[Contribution, ...]] = {}
    for key in keys:
        entries = [(one_id, s.get(key)) for one_id, s in sides]
        contributions[key] = tuple(
            Contribution(one_id, e.record_id if e else None, e.granted if e else None)
            for one_id, e in entries
        )
        present = [e for _, e in entries if e is not None]
        denials = [e for e in present if not e.granted]
        pool = denials or present
        merged[key] = max(pool, key=lambda e: (e.at or 0.0, e.record_id))
    return merged, contributions


@dataclass(frozen=True, slots=True)
class SeparateGrant:
    """One separate consent of a consent call (the wire's ``separateConsents``):
    ``kind`` is ``sensitive`` (with ``categories`` and the ``purposes`` it is for),
    ``third_party`` or ``cross_border`` (with ``recipient`` and ``region``)."""

    kind: str
    granted: bool
    path: str
    categories: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    recipient: str | None = None
    region: str | None = None


def consent_keys(
    purposes: Mapping[str, bool],
    *,
    pi_categories: Sequence[str] = (),
    recipients: Sequence[tuple[str, str | None]] = (),
    separate: Sequence[SeparateGrant] = (),
) -> tuple[dict[str, bool], dict[str, tuple[str, ...]]]:
    """The state keys a consent call sets, and the purposes each sensitive key
    covers. ``sensitive`` with ``pi_categories`` becomes one ``sensitive:<c>`` per
    category; ``third_party:<r>``/``cross_border:<r>`` are bound to the regions
    ``recipients`` gives for ``<r>``. A sensitive consent covers the ordinary
    purposes granted in the same call (or those it names), else ``necessary``.

    Raises ConsentScopeError (with the JSON path) for a recipient key with no
    region, or a sensitive purpose that is not a purpose."""
    out: dict[str, bool] = {}
    scopes: dict[str, tuple[str, ...]] = {}
    granted_purposes = tuple(sorted(p for p, v in purposes.items() if p in PURPOSES and v))
    regions: dict[str, list[str]] = {}
    for name, region in recipients:
        if region:
            regions.setdefault(name, []).append(region.upper())
    for key, value in purposes.items():
        kind, _, rest = key.partition(":")
        if key == "sensitive" and pi_categories:
            for category in pi_categories:
                out[f"sensitive:{category}"] = value
                scopes[f"sensitive:{category}"] = granted_purposes or ("necessary",)
        elif kind == "sensitive" and rest:
            out[key] = value
            scopes[key] = granted_purposes or ("necessary",)
        elif kind in ("third_party", "cross_border") and rest and "@" not in rest:
            if rest not in regions:
                raise ConsentScopeError(
                    f"a {kind} consent is bound to a recipient and a region: add"
                    f' recipients = [{{"name": "{rest}", "region": "XX"}}]'
                    " or use separateConsents",
                    f"$.purposes.{key}",
                )
            for region in regions[rest]:
                out[recipient_key(kind, rest, region)] = value
        else:
            out[key] = value
    for grant in separate:
        if grant.kind == "sensitive":
            bad = [p for p in grant.purposes if p not in PURPOSES]
            if bad:
                raise ConsentScopeError(
                    f"unknown purposes {bad}; use {', '.join(PURPOSES)}", f"{grant.path}.purposes"
                )
            for category in grant.categories:
                out[f"sensitive:{category}"] = grant.granted
                scopes[f"sensitive:{category}"] = tuple(sorted(grant.purposes)) or ("necessary",)
        else:
            assert grant.recipient is not None
            out[recipient_key(grant.kind, grant.recipient, grant.region)] = grant.granted
    return out, scopes
