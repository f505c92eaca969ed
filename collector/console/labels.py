"""Plain-language labels for the console: every code the domain uses
(decision outcomes, legal bases, ledger actions, delivery states, laws,
consent methods) has the words a non-engineer reads instead.

``label(table, code)`` returns the label, or the code with underscores as
spaces when a table lacks it (a new code still reads as words, never as
``NO_DECISION``). ``plain(text)`` rewrites the codes inside a decision
reason. Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime

from collector.dsr.export import PURPOSE_LABELS

ACTION_LABELS = {
    "grant": "Gave consent",
    "deny": "Refused",
    "withdraw": "Withdrew consent",
    "update": "Changed choices",
    "merge": "Profiles joined",
    "erase": "Erased",
}
OUTCOME_LABELS = {
    "allow": "Allowed: the event could be sent",
    "deny": "Not allowed: the event was not sent",
    "no_decision": "Not sent: the settings have no rule for this case",
}
BASIS_LABELS = {
    "consent": "the person's consent (GDPR Art. 6(1)(a))",
    "contract": "needed for a contract with the person (GDPR Art. 6(1)(b))",
    "legal_obligation": "a legal obligation (GDPR Art. 6(1)(c))",
    "legitimate_interests": "legitimate interests (GDPR Art. 6(1)(f))",
    "soft_opt_in": "existing-customer marketing, the soft opt-in (ePrivacy Art. 13(2))",
    "opt_out": "allowed until the person opts out",
    "necessary": "strictly necessary, no consent needed",
    "none": "none",
}
DELIVERY_LABELS = {
    "delivered": "Delivered",
    "dropped": "Not sent after all: withdrawn or erased before it went out",
    "dead": "Given up after repeated failures",
    "purged": "Given up, then removed by an operator",
    "pending": "Waiting to be sent",
}
LAW_LABELS = {
    "GDPR": "EU/UK GDPR",
    "CCPA": "California (CCPA)",
    "US": "US state privacy laws",
    "PIPL": "China (PIPL)",
    "LGPD": "Brazil (LGPD)",
}
METHOD_LABELS = {
    "banner_accept": "accepted in the consent banner",
    "banner_reject": "rejected in the consent banner",
    "preferences": "set in the privacy preferences",
    "gpc": "Global Privacy Control signal from the browser",
    "tcf": "IAB TCF consent string",
    "gpp": "IAB GPP consent string",
    "consent_mode": "Google Consent Mode signal",
    "api": "recorded through the API",
    "event": "read from an event's consent fields",
    "import": "imported",
    "merge": "two profiles of the same person were joined",
    "erasure": "the person was erased",
    "checkout_checkbox": "a checkbox at checkout",
    "customer_opt_in": "the customer opted in at the shop",
}

KIND_LABELS = {
    "email": "Email address",
    "phone": "Phone number",
    "user_id": "User ID",
    "anonymous_id": "Anonymous ID (a browser or device)",
    "device_id": "Device ID",
    "wechat_openid": "WeChat OpenID (one app)",
    "wechat_unionid": "WeChat UnionID",
}
VERIFICATION_LABELS = {
    "email_link": "they clicked a link sent to their email",
    "signed_in_account": "they asked from their signed-in account",
    "document": "they showed a document",
}
_UNITS = {"months": "month", "days": "day", "working_days": "working day"}

_CODE = re.compile(
    r"\b(no_decision|legitimate_interests|soft_opt_in|legal_obligation|opt_in|opt_out)\b"
)
_WORDS = {
    "no_decision": "no rule",
    "legitimate_interests": "legitimate interests",
    "soft_opt_in": "soft opt-in",
    "legal_obligation": "legal obligation",
    "opt_in": "opt-in",
    "opt_out": "opt-out",
}


def label(table: Mapping[str, str], code: str | None, *, missing: str = "not recorded") -> str:
    """The plain label of `code` (``missing`` when there is none)."""
    if not code:
        return missing
    return table.get(code) or table.get(code.upper()) or code.replace("_", " ")


def basis(code: str) -> str:
    """A legal basis, or several joined by ``+`` (one per purpose), in words."""
    return "; ".join(label(BASIS_LABELS, part) for part in code.split("+"))


def law(code: str) -> str:
    """A jurisdiction (``GDPR``, ``US-CA``, ``GDPR+PIPL``) in words."""
    parts = [p for p in code.replace(",", "+").split("+") if p]
    return " and ".join(LAW_LABELS.get(p, p.replace("_", " ")) for p in parts) or code


def purpose(code: str) -> str:
    return f"{label(PURPOSE_LABELS, code)} ({code})"


def plain(reason: str) -> str:
    """A decision reason with its codes in words ("[GDPR] analytics:
    legitimate_interests, ..." -> "... legitimate interests, ...")."""
    return _CODE.sub(lambda m: _WORDS[m.group(1)], reason)


def when(value: float | str | datetime | None) -> str:
    """A time (Unix seconds, ISO 8601 or datetime) as ``2026-11-29 12:42 UTC``;
    text that is no time is returned as it is."""
    if value is None or value == "":
        return "not recorded"
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def period(amount: int, unit: str) -> str:
    """``1 month``, ``2 months``, ``15 working days``."""
    one = _UNITS.get(unit, unit.replace("_", " "))
    return f"{amount} {one}" if amount == 1 else f"{amount} {one}s"
