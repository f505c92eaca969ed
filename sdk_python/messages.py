"""Wire messages: the one home of the event schema.

The collector validates requests with these Structs, the SDK encodes with them,
and ``/openapi.json`` is generated from them, so the three can never drift.
Field names follow Segment's HTTP Tracking API spec so that unmodified Segment
and RudderStack clients work; fields we do not know are ignored, not rejected,
because those clients add their own metadata (``channel``, ``rudderId``, ...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Id = Annotated[str, Meta(max_length=1024)]
Name = Annotated[str, Meta(min_length=1, max_length=1024)]
JsonObject = dict[str, Any]

MAX_MESSAGE_BYTES = 32 * 1024
MAX_REQUEST_BYTES = 500 * 1024


class _Base(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type"):
    messageId: Id | None = None
    timestamp: datetime | None = None
    originalTimestamp: datetime | None = None
    sentAt: datetime | None = None
    receivedAt: datetime | None = None
    anonymousId: Id | None = None
    userId: Id | None = None
    context: JsonObject | None = None
    integrations: JsonObject | None = None
    channel: str | None = None
    version: int | str | None = None


class Track(_Base, tag="track"):
    event: Name
    properties: JsonObject | None = None


class Identify(_Base, tag="identify"):
    traits: JsonObject | None = None


class Page(_Base, tag="page"):
    name: str | None = None
    category: str | None = None
    properties: JsonObject | None = None


class Screen(_Base, tag="screen"):
    name: str | None = None
    category: str | None = None
    properties: JsonObject | None = None


class Group(_Base, tag="group"):
    groupId: Id
    traits: JsonObject | None = None


class Alias(_Base, tag="alias"):
    previousId: Id


Message = Track | Identify | Page | Screen | Group | Alias
MESSAGE_TYPES: dict[str, type[Message]] = {
    "track": Track,
    "identify": Identify,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}


class Batch(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A Segment batch. Messages stay raw so each is validated on its own and a
    bad one is quarantined without rejecting its neighbours."""

    batch: list[msgspec.Raw]
    writeKey: str | None = None
    sentAt: datetime | None = None
    context: JsonObject | None = None
    integrations: JsonObject | None = None


ConsentState = Literal["granted", "denied"]
Method = Literal[
    "banner_accept",
    "banner_reject",
    "preferences",
    "gpc",
    "tcf",
    "gpp",
    "consent_mode",
    "api",
    "event",
    "import",
]


class Recipient(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    name: Name
    region: Annotated[str, Meta(pattern="^[A-Z]{2}$")] | None = None


Region = Annotated[str, Meta(pattern="^[A-Z]{2}$")]
Label = Annotated[str, Meta(min_length=1, max_length=64)]


class SensitiveConsent(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Separate consent for sensitive PI (PIPL Art. 29; GDPR Art. 9(2)(a)): bound to
    its ``categories`` (``health``, ``biometric``, ``minor``, ...) and to the
    ``purposes`` it was given for; naming none covers ``necessary`` only."""

    categories: Annotated[list[Label], Meta(min_length=1)]
    purposes: list[Label] = []
    state: ConsentState = "granted"


class RecipientConsent(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """Separate consent bound to one recipient (a legal entity, as a destination's
    ``recipient``) in one region (ISO 3166-1 alpha-2, as its ``region``)."""

    recipient: Name
    region: Region
    state: ConsentState = "granted"


class SeparateConsents(msgspec.Struct, kw_only=True, frozen=True, omit_defaults=True):
    """PIPL separate consents: ``sensitive`` (Art. 29), ``thirdParty`` provision per
    recipient (Art. 23) and ``crossBorder`` transfer per recipient and region (Art. 39;
    also GDPR Art. 49(1)(a) explicit consent to a transfer)."""

    sensitive: list[SensitiveConsent] = []
    thirdParty: list[RecipientConsent] = []
    crossBorder: list[RecipientConsent] = []


class ConsentCall(
    msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type", tag="consent"
):
    """Grant, deny and withdraw share one shape (GDPR Art. 7(3)): withdrawing is a
    ``denied`` state for a purpose that was granted before."""

    purposes: dict[Annotated[str, Meta(min_length=1, max_length=64)], ConsentState] = {}
    separateConsents: SeparateConsents | None = None
    messageId: Id | None = None
    anonymousId: Id | None = None
    userId: Id | None = None
    traits: JsonObject | None = None
    jurisdiction: Annotated[str, Meta(max_length=16)] | None = None
    legalBasis: Annotated[str, Meta(max_length=64)] = "consent"
    piCategories: list[Annotated[str, Meta(max_length=64)]] = []
    recipients: list[Recipient] = []
    separate: bool = False
    consenter: Literal["self", "guardian"] = "self"
    noticeId: Annotated[str, Meta(max_length=256)] | None = None
    noticeVersion: Annotated[str, Meta(max_length=64)] | None = None
    method: Method = "api"
    signal: Annotated[str, Meta(max_length=8192)] | None = None
    timestamp: datetime | None = None
    context: JsonObject | None = None
    writeKey: str | None = None


class Rejected(msgspec.Struct, kw_only=True):
    index: int
    reason: str
    path: str


class MessageWarning(msgspec.Struct, kw_only=True):
    """A message that was accepted with part of it repaired or not used:
    which message (its index in the batch, 0 for a single call, null for the
    batch envelope), why (never quoting the value), and the JSON path."""

    index: int | None
    reason: str
    path: str


class BatchResult(msgspec.Struct, kw_only=True):
    success: bool
    accepted: int
    rejected: list[Rejected] = []
    warnings: list[MessageWarning] = []


class ErrorBody(msgspec.Struct, kw_only=True):
    error: str
    path: str | None = None
