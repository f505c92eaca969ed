"""Records of processing activities (GDPR Art. 30(1)) generated from configuration.

One row per destination: the recipient, purposes, legal basis per purpose,
categories of personal information, region, whether it is a third party,
the cross-border transfer mechanism per law, retention, and the controller's
name and contact (Art. 30(1)(a), from ``[dsr.controller]``). Rendered as CSV
(RFC 4180) and XLSX (``openpyxl``; None when an old environment lacks it).
"""

from __future__ import annotations

import csv
import io

from collector.config import Config

COLUMNS = (
    "destination",
    "recipient",
    "purposes",
    "legal_basis",
    "categories_of_personal_information",
    "region",
    "third_party",
    "cross_border_transfer",
    "ccpa_role",
    "retention",
    "controller",
    "controller_contact",
)


def rows(config: Config) -> list[dict[str, str]]:
    """The records, one per configured destination, as plain strings."""
    retention = (
        f"outbox: undelivered events are dropped after the destination's max_age_seconds;"
        f" consent ledger: kept as proof of consent (GDPR Art. 7(1)); quarantine:"
        f" {config.privacy.quarantine_ttl_days} days"
    )
    out = []
    for dest in config.effective_destinations():
        out.append(
            {
                "destination": dest.name,
                "recipient": dest.recipient or dest.name,
                "purposes": "; ".join(dest.purposes) or "(none configured)",
                "legal_basis": "; ".join(f"{p}: {b}" for p, b in dest.legal_bases.items())
                or "consent (default)",
                "categories_of_personal_information": "; ".join(dest.pi_categories)
                or "pseudonymous identifiers, event data",
                "region": dest.region or "(not stated)",
                "third_party": "yes" if dest.third_party else "no",
                "cross_border_transfer": "; ".join(f"{k}: {v}" for k, v in dest.transfer.items())
                or "none declared",
                "ccpa_role": dest.ccpa_role or "",
                "retention": f"max {dest.max_age_seconds / 86400:g} days in the outbox; "
                + retention,
                "controller": config.dsr.controller.name,
                "controller_contact": config.dsr.controller.contact or "(not configured)",
            }
        )
    return out


def to_csv(config: Config) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows(config))
    return buf.getvalue()


def to_xlsx(config: Config) -> bytes | None:
    """The records as an XLSX workbook, or None when openpyxl is not installed."""
    try:
        from openpyxl import Workbook
    except ImportError:
        return None
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Records of processing"
    sheet.append(list(COLUMNS))
    for row in rows(config):
        sheet.append([row[c] for c in COLUMNS])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
