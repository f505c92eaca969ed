"""From a ``POST /v1/consent`` call to the state keys the ledger records.

The wire shape (``purposes``, ``piCategories``, ``recipients`` and the typed
``separateConsents``) is turned into per-category, per-recipient-and-region keys
by :func:`consent.scope.consent_keys`; this module only reads the Struct.
"""

from __future__ import annotations

from consent.scope import SeparateGrant, consent_keys
from sdk_python.messages import ConsentCall


def separate_grants(call: ConsentCall) -> list[SeparateGrant]:
    """The typed separate consents of a call, each with its JSON path."""
    sep = call.separateConsents
    if sep is None:
        return []
    grants = [
        SeparateGrant(
            "sensitive",
            s.state == "granted",
            f"$.separateConsents.sensitive[{i}]",
            categories=tuple(s.categories),
            purposes=tuple(s.purposes),
        )
        for i, s in enumerate(sep.sensitive)
    ]
    for kind, field, items in (
        ("third_party", "thirdParty", sep.thirdParty),
        ("cross_border", "crossBorder", sep.crossBorder),
    ):
        grants += [
            SeparateGrant(
                kind,
                r.state == "granted",
                f"$.separateConsents.{field}[{i}]",
                recipient=r.recipient,
                region=r.region,
            )
            for i, r in enumerate(items)
        ]
    return grants


def call_keys(call: ConsentCall) -> tuple[dict[str, bool], dict[str, tuple[str, ...]]]:
    """State keys and sensitive scopes; raises consent.errors.ConsentScopeError."""
    return consent_keys(
        {k: v == "granted" for k, v in call.purposes.items()},
        pi_categories=call.piCategories,
        recipients=[(r.name, r.region) for r in call.recipients],
        separate=separate_grants(call),
    )


def call_recipients(call: ConsentCall) -> list[tuple[str, str | None]]:
    """Every recipient the call names, for the ledger record (PIPL Art. 23, 39)."""
    named = [(r.name, r.region) for r in call.recipients]
    sep = call.separateConsents
    if sep is not None:
        named += [(r.recipient, r.region) for r in (*sep.thirdParty, *sep.crossBorder)]
    return list(dict.fromkeys(named))
