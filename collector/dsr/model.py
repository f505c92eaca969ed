"""Data subject requests as a small state machine with statutory deadlines.

States::

    received ──verify──► verified ──start──► in_progress ──complete──► completed
        │                   │  └──────────complete───────────────────►   ▲
        └──refuse──►  refused ◄──refuse── (any state before completed)

Deadlines, counted from receipt (configurable per jurisdiction; defaults):

=========  ==============================  ==================================
GDPR       one month, extendable by two    Art. 12(3); a month ends on the
           more months (once, with         same day number of the next month,
           reasons given to the person)    or that month's last day
CCPA/US    45 days, extendable once by 45  Cal. Civ. Code §1798.130(a)(2);
                                           the Virginia, Colorado, Connecticut
                                           and Utah acts use the same periods
PIPL       15 working days (Monday to      Art. 45 and 50 ask for "timely"
           Friday)                         handling without a number; 15
                                           working days is Consentry's
                                           default: set yours
=========  ==============================  ==================================

Public holidays are not known to this module: set a shorter PIPL period if
yours must allow for them. Everything here is pure; `now` is passed in.
Errors: `DsrError` says which transition is not allowed from which state.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec

from collector.errors import CollectorError

DsrType = Literal["access", "portability", "erasure", "withdrawal"]
DsrState = Literal["received", "verified", "in_progress", "completed", "refused"]
DSR_TYPES: tuple[DsrType, ...] = ("access", "portability", "erasure", "withdrawal")
TERMINAL: frozenset[str] = frozenset({"completed", "refused"})
_NEXT: dict[str, frozenset[str]] = {
    "received": frozenset({"verified", "refused"}),
    "verified": frozenset({"in_progress", "completed", "refused"}),
    "in_progress": frozenset({"completed", "refused"}),
    "completed": frozenset(),
    "refused": frozenset(),
}


class DsrError(CollectorError):
    """A request cannot move as asked; the message says from which state."""


class DeadlineRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long a jurisdiction allows: `amount` `unit`s, plus one extension
    (in the same unit; 0 = none). Also the shape of ``[dsr.deadlines.<LAW>]``."""

    unit: Literal["months", "days", "working_days"]
    amount: Annotated[int, msgspec.Meta(ge=1, le=366)]
    extension: Annotated[int, msgspec.Meta(ge=0, le=366)] = 0


DEFAULT_DEADLINES: dict[str, DeadlineRule] = {
    "GDPR": DeadlineRule(unit="months", amount=1, extension=2),
    "CCPA": DeadlineRule(unit="days", amount=45, extension=45),
    "US": DeadlineRule(unit="days", amount=45, extension=45),
    "PIPL": DeadlineRule(unit="working_days", amount=15, extension=0),
}


def deadline_rule(
    jurisdiction: str, overrides: dict[str, DeadlineRule] | None = None
) -> DeadlineRule:
    """The rule for `jurisdiction` (``US-CA`` and other ``US-XX`` codes use ``US``
    unless configured on their own; unknown names use GDPR's, the strictest
    common period)."""
    table = {**DEFAULT_DEADLINES, **(overrides or {})}
    key = jurisdiction.upper()
    if key in table:
        return table[key]
    if key.startswith("US-") or key == "CPRA":
        return table.get(key, table["US"])
    return table["GDPR"]


def add_months(start: datetime, months: int) -> datetime:
    """Same day number `months` later, or that month's last day when it has no such day."""
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def add_working_days(start: datetime, days: int) -> datetime:
    """`days` Monday-to-Friday days after `start` (receipt day not counted)."""
    current = start
    left = days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def due(received_at: datetime, rule: DeadlineRule, *, extended: bool = False) -> datetime:
    """When a request received at `received_at` must be answered."""
    amount = rule.amount + (rule.extension if extended else 0)
    if rule.unit == "months":
        return add_months(received_at, amount)
    if rule.unit == "working_days":
        return add_working_days(received_at, amount)
    return received_at + timedelta(days=amount)


@dataclass(frozen=True)
class Step:
    """One entry of a request's history: who moved it, when, and why."""

    state: str
    at: datetime
    by: str
    note: str = ""


@dataclass(frozen=True)
class DataSubjectRequest:
    """A request. `identifier_kinds` names what the person gave (``email``,
    ``phone`` …), never the values; `subject` is the OneID it resolved to."""

    id: str
    type: DsrType
    jurisdiction: str
    received_at: datetime
    due_at: datetime
    state: DsrState = "received"
    identifier_kinds: tuple[str, ...] = ()
    subject: str | None = None
    extended: bool = False
    verification: str | None = None  # method, e.g. "email_link", "signed_in_account"
    verified_by: str | None = None
    refusal_reason: str | None = None
    history: tuple[Step, ...] = field(default_factory=tuple)

    def days_left(self, now: datetime) -> float:
        """Days until `due_at` (negative when overdue)."""
        return (self.due_at - now).total_seconds() / 86400

    def overdue(self, now: datetime) -> bool:
        return self.state not in TERMINAL and now > self.due_at


def open_request(
    *,
    id: str,
    type: DsrType,
    jurisdiction: str,
    received_at: datetime,
    by: str,
    identifier_kinds: tuple[str, ...] = (),
    subject: str | None = None,
    deadlines: dict[str, DeadlineRule] | None = None,
) -> DataSubjectRequest:
    """A new request in state ``received`` with its statutory due date."""
    if type not in DSR_TYPES:
        raise DsrError(f"unknown request type {type!r}; allowed: {', '.join(DSR_TYPES)}")
    rule = deadline_rule(jurisdiction, deadlines)
    return DataSubjectRequest(
        id=id,
        type=type,
        jurisdiction=jurisdiction,
        received_at=received_at,
        due_at=due(received_at, rule),
        identifier_kinds=identifier_kinds,
        subject=subject,
        history=(Step("received", received_at, by),),
    )


def move(
    request: DataSubjectRequest,
    to: DsrState,
    *,
    at: datetime,
    by: str,
    note: str = "",
    method: str | None = None,
) -> DataSubjectRequest:
    """`request` moved to state `to`. Verifying needs a `method`; refusing needs
    a reason in `note` (GDPR Art. 12(4): the person is told why)."""
    if to not in _NEXT[request.state]:
        allowed = ", ".join(sorted(_NEXT[request.state])) or "nothing (it is closed)"
        raise DsrError(f"a {request.state} request cannot become {to}; it can become {allowed}")
    changes: dict[str, object] = {
        "state": to,
        "history": (*request.history, Step(to, at, by, note)),
    }
    if to == "verified":
        if not method:
            raise DsrError(
                "verifying a request needs the method used to verify the person's identity"
            )
        changes.update(verification=method, verified_by=by)
    if to == "refused":
        if not note.strip():
            raise DsrError("refusing a request needs a reason, which the person is told")
        changes["refusal_reason"] = note
    return replace(request, **changes)  # type: ignore[arg-type]


def extend(
    request: DataSubjectRequest,
    *,
    at: datetime,
    by: str,
    reason: str,
    deadlines: dict[str, DeadlineRule] | None = None,
) -> DataSubjectRequest:
    """The request with its one statutory extension applied (GDPR Art. 12(3),
    CCPA §1798.130(a)(2)); needs a reason, refused when none is allowed."""
    rule = deadline_rule(request.jurisdiction, deadlines)
    if request.state in TERMINAL:
        raise DsrError(f"a {request.state} request cannot be extended")
    if request.extended or rule.extension == 0:
        raise DsrError(f"no (further) extension is allowed under {request.jurisdiction}")
    if not reason.strip():
        raise DsrError("an extension needs a reason, which the person is told")
    return replace(
        request,
        extended=True,
        due_at=due(request.received_at, rule, extended=True),
        history=(*request.history, Step(request.state, at, by, f"extended: {reason}")),
    )
