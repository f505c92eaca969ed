"""Roles and the permissions each one holds.

Four roles, from the most to the least trusted:

========  ==================================================================
admin     everything, including erasure, keys and the access log
auditor   the consent ledger, person lookup, data subject requests and their
          exports, "why" reports, records of processing
operator  health, outbox, destinations, metrics; never person-level data
viewer    aggregate dashboards only
========  ==================================================================

"Person-level data" is anything about one data subject (a lookup, a consent
timeline, an export, a why report): PIPL Art. 54 compliance audits and GDPR
Art. 5(2) accountability ask who looked at whose data, so every use of a
`PERSONAL` permission is written to the access log by the caller.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

Role = Literal["admin", "auditor", "operator", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "auditor", "operator", "viewer")


class Permission(StrEnum):
    DASHBOARD = "dashboard.read"  # aggregate counts and rates
    HEALTH = "health.read"
    OUTBOX_READ = "outbox.read"
    OUTBOX_MANAGE = "outbox.manage"  # replay, retry now
    DESTINATIONS_READ = "destinations.read"
    METRICS = "metrics.read"
    LEDGER_READ = "ledger.read"  # consent log (subjects as pseudonyms), verification
    ROPA = "ropa.read"  # records of processing (GDPR Art. 30)
    PERSON_LOOKUP = "person.lookup"
    WHY = "person.why"
    DSR_MANAGE = "dsr.manage"
    DSR_EXPORT = "dsr.export"
    ERASE = "person.erase"
    KEYS = "keys.manage"
    ACCESS_LOG = "access_log.read"
    QUARANTINE = "quarantine.manage"


PERSONAL: frozenset[Permission] = frozenset(
    {
        Permission.PERSON_LOOKUP,
        Permission.WHY,
        Permission.DSR_MANAGE,
        Permission.DSR_EXPORT,
        Permission.ERASE,
    }
)

_VIEWER = frozenset({Permission.DASHBOARD})
_OPERATOR = _VIEWER | {
    Permission.HEALTH,
    Permission.OUTBOX_READ,
    Permission.OUTBOX_MANAGE,
    Permission.DESTINATIONS_READ,
    Permission.METRICS,
    Permission.QUARANTINE,
}
_AUDITOR = _VIEWER | {
    Permission.HEALTH,
    Permission.LEDGER_READ,
    Permission.ROPA,
    Permission.PERSON_LOOKUP,
    Permission.WHY,
    Permission.DSR_MANAGE,
    Permission.DSR_EXPORT,
    Permission.DESTINATIONS_READ,
}
MATRIX: dict[Role, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "auditor": frozenset(_AUDITOR),
    "operator": frozenset(_OPERATOR),
    "viewer": _VIEWER,
}


def allows(role: Role, permission: Permission) -> bool:
    """True when `role` holds `permission`."""
    return permission in MATRIX[role]


def why_not(role: Role, permission: Permission) -> str:
    """The 403 reason: which permission is missing and which roles hold it."""
    holders = [r for r in ROLES if permission in MATRIX[r]]
    return f"the {role} role may not do {permission.value}; roles that may: {', '.join(holders)}"
