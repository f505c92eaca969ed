"""Warnings about input that was kept but changed (pure).

A message with one unusable field is kept: the field is repaired, ignored or
pseudonymized without linking, and the 200 response lists one ``InputWarning``
per change (``warnings: [{index, code, reason, path}]``); ``/metrics`` counts
them per code (``consentry_ingest_warnings_total{source, warning}``). A reason says what
was wrong and what Consentry did, and never quotes the value: reasons are
logged by clients and may be stored.

Codes (each a label value of the metric):

``time_unreadable``      a ``timestamp``/``originalTimestamp``/``sentAt`` was not a
                         time; the event's ``timestamp`` is the receive time
``text_repaired``        bytes that are not UTF-8, or a lone surrogate escape,
                         became U+FFFD
``trait_unusable``       an email or phone trait that is not one was kept
                         pseudonymized as personal data, not used to link people
``ip_unreadable``        ``context.ip`` was not an IP address and was removed
``consent_unreadable``   a consent string could not be read and grants nothing
``duplicate``            a repeated ``messageId`` was acknowledged and stored once
``session_key_removed``  a WeChat ``session_key`` was removed (it never leaves the backend)
``nul_replaced``         U+0000, which destinations cannot store, became U+FFFD
``plan_violation``       the source's tracking plan found a violation (kind, path);
                         the event was forwarded (flag) or forwarded without the
                         offending properties (omit)
"""

from __future__ import annotations

from dataclasses import dataclass

from identity.pii import redact_path, redact_text

CODES = (
    "time_unreadable",
    "text_repaired",
    "trait_unusable",
    "ip_unreadable",
    "consent_unreadable",
    "duplicate",
    "session_key_removed",
    "nul_replaced",
    "plan_violation",
)


@dataclass(frozen=True, slots=True)
class InputWarning:
    """One change made to one message. ``index`` is the message's position in
    its batch (0 for a single-message endpoint; None for the batch envelope);
    ``path`` is the JSON path of the field, from the request body's root."""

    index: int | None
    code: str
    reason: str
    path: str

    def __post_init__(self) -> None:
        assert self.code in CODES, self.code
        # A key in the path may itself be personal data (issue 14 §1).
        object.__setattr__(self, "reason", redact_text(self.reason))
        object.__setattr__(self, "path", redact_path(self.path))
