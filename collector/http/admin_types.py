"""Request bodies of the admin API and their OpenAPI description (401 vs 403).

The Structs validate requests and generate the schemas in ``/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from collector.dsr.model import DsrType


class LookupBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    identifiers: dict[str, str]


class OpenBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: DsrType
    identifiers: dict[str, str]
    jurisdiction: str = "GDPR"


class VerifyBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    method: str


class CompleteBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    note: str = ""


# A reason the person is told (GDPR Art. 12(3)-(4)): something other than blanks.
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000, pattern=r"\S")]


class RefuseBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class ExtendBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


BODIES = (LookupBody, OpenBody, VerifyBody, CompleteBody, RefuseBody, ExtendBody)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*extra: tuple[str, str]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": _ref("ErrorBody")}}}
    out = {
        "400": {"description": "A field is invalid; `path` names it", **error},
        "401": {"description": "No bearer token, or one that is not configured", **error},
        "403": {
            "description": "The token's role lacks the permission; `error` says which and"
            " which roles hold it",
            **error,
        },
    }
    for status, text in extra:
        out[status] = {"description": text, **error}
    return out


def _op(summary: str, ok: str, body: str | None = None, *extra: tuple[str, str]) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {"200": {"description": ok}, **_errors(*extra)},
    }
    if body:
        op["requestBody"] = {"content": {"application/json": {"schema": _ref(body)}}}
    return op


NOT_FOUND = ("404", "No such request (or no person known by these identifiers)")
CONFLICT = ("409", "The request cannot move so from its state; `error` says why")


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}


def paths() -> dict[str, Any]:
    """The ``/v1/admin/...`` paths (permissions as in ``collector.access.roles``)."""
    out = _paths()
    for path, item in out.items():
        if "{id}" in path:
            item["parameters"] = [ID]
    return out


def _paths() -> dict[str, Any]:
    return {
        "/v1/admin/subjects/lookup": {
            "post": _op(
                "What is held on a person, found by a raw identifier (person.lookup)",
                "Identifier kinds, consent state and history, destinations, erasures",
                "LookupBody",
                NOT_FOUND,
            )
        },
        "/v1/admin/dsr": {
            "post": _op("Open a data subject request (dsr.manage)", "{id, request}", "OpenBody"),
            "get": _op("The request queue, earliest due first (dsr.manage)", "{requests}"),
        },
        "/v1/admin/dsr/{id}": {
            "get": _op("One request (dsr.manage)", "The request", None, NOT_FOUND)
        },
        "/v1/admin/dsr/{id}/verify": {
            "post": _op(
                "Record identity verification (dsr.manage)",
                "The request",
                "VerifyBody",
                NOT_FOUND,
                CONFLICT,
            )
        },
        "/v1/admin/dsr/{id}/start": {
            "post": _op(
                "Start work on a verified request: state in_progress (dsr.manage)",
                "The request",
                None,
                NOT_FOUND,
                CONFLICT,
            )
        },
        "/v1/admin/dsr/{id}/extend": {
            "post": _op(
                "Extend the deadline once, with the reason the person is told (GDPR Art. 12(3):"
                " two more months; CCPA: 45 more days; as configured in [dsr.deadlines])"
                " (dsr.manage)",
                "The request with its new due_at and extended: true",
                "ExtendBody",
                NOT_FOUND,
                ("409", "Closed, already extended, or no extension under its law; `error` says"),
            )
        },
        "/v1/admin/dsr/{id}/refuse": {
            "post": _op(
                "Refuse with a reason (dsr.manage)",
                "The request",
                "RefuseBody",
                NOT_FOUND,
                CONFLICT,
            )
        },
        "/v1/admin/dsr/{id}/complete": {
            "post": _op(
                "Complete; an erasure runs it (also person.erase), a withdrawal records it",
                "{request, erasure?: receipts per destination, withdrawal?}",
                "CompleteBody",
                NOT_FOUND,
                CONFLICT,
            )
        },
        "/v1/admin/dsr/{id}/export": {
            "get": _op(
                "Access/portability export: zip of JSON, CSV, HTML (dsr.export)",
                "application/zip",
                None,
                NOT_FOUND,
                CONFLICT,
            )
        },
        "/v1/admin/why": {
            "get": {
                **_op(
                    "Why an event went (or did not go) to a destination: the decision, law,"
                    " legal basis, reasons, the consent records cited and the delivery"
                    " outcome (person.why)",
                    "{message_id, destination, decisions: [{at, outcome, jurisdiction,"
                    " legal_basis, reasons, records, delivery}]}",
                    None,
                    ("404", "No decision recorded for this message at this destination"),
                ),
                "parameters": [
                    {
                        "name": "message_id",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "the event's messageId",
                    },
                    {
                        "name": "destination",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "a configured destination's name",
                    },
                ],
            }
        },
        "/v1/admin/ropa": {
            "get": _op(
                "Records of processing, GDPR Art. 30 (ropa.read); ?format=csv|xlsx", "CSV or XLSX"
            )
        },
        "/v1/admin/access-log": {
            "get": _op("Who used person-level data, newest first (access_log.read)", "{entries}")
        },
    }
