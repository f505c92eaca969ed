"""Who is calling, and may they: bearer tokens checked against the role matrix.

401 when the ``Authorization: Bearer`` token is missing or unknown (RFC 6750
§3.1 ``invalid_token``); 403 when the token's role lacks the permission, with
``roles.why_not``'s reason. Every use of a ``PERSONAL`` permission is written
to the access log by the endpoint, in the transaction that does the work.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from collector.access.principals import Principal, Principals, bearer
from collector.access.roles import Permission, allows, why_not
from collector.errors import RequestError
from collector.storage.ports import AccessEntry


class Guard:
    """Checks a request's bearer token against `permission`."""

    def __init__(self, principals: Principals) -> None:
        self.principals = principals

    def check(self, request: Request, permission: Permission) -> Principal:
        """The caller, or RequestError 401 (no/unknown token) / 403 (role lacks it)."""
        token = bearer(request.headers.get("authorization"))
        if token is None:
            raise RequestError(
                401, "this endpoint needs a token: send Authorization: Bearer <token>"
            )
        principal = self.principals.by_token(token)
        if principal is None:
            raise RequestError(401, "the bearer token is not one of [[access.tokens]]")
        if not allows(principal.role, permission):
            raise RequestError(403, why_not(principal.role, permission))
        return principal


def access_entry(
    principal: Principal,
    permission: Permission,
    action: str,
    *,
    request_id: str | None = None,
    subject: str | None = None,
    outcome: str = "ok",
) -> AccessEntry:
    """An access-log entry for `principal` using `permission` now."""
    return AccessEntry(
        at=datetime.now(UTC).timestamp(),
        principal=principal.name,
        role=principal.role,
        permission=permission.value,
        action=action,
        request_id=request_id,
        subject=subject,
        outcome=outcome,
    )
