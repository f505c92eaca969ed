"""Requests kept in the database: encode, save, load, list.

A request is stored as the JSON of ``model.DataSubjectRequest`` (no raw
identifier is part of it). Errors: ``DsrError`` for an unknown request id.
"""

from __future__ import annotations

import secrets

import msgspec

from collector.dsr.model import DataSubjectRequest, DsrError
from collector.storage.ports import UnitOfWork

_decoder = msgspec.json.Decoder(DataSubjectRequest)


def new_id() -> str:
    """A request id that says nothing about the person: ``dsr_`` + 16 hex digits."""
    return "dsr_" + secrets.token_hex(8)


def save(conn: UnitOfWork, request: DataSubjectRequest) -> None:
    conn.dsr.save_request(
        id=request.id,
        type=request.type,
        state=request.state,
        received_at=request.received_at.timestamp(),
        due_at=request.due_at.timestamp(),
        body=msgspec.json.encode(request),
    )


def load(conn: UnitOfWork, id: str) -> DataSubjectRequest:
    body = conn.dsr.load_request(id)
    if body is None:
        raise DsrError(f"no request with id {id!r}; `consentry dsr list` shows them")
    return _decoder.decode(body)


def all_requests(conn: UnitOfWork) -> list[DataSubjectRequest]:
    """Every request, earliest due first."""
    return [_decoder.decode(b) for b in conn.dsr.list_requests()]


def as_json(request: DataSubjectRequest, now: object) -> dict[str, object]:
    """The API shape: the request's fields plus ``days_left`` and ``overdue``."""
    from datetime import datetime

    assert isinstance(now, datetime)
    out = msgspec.to_builtins(request)
    assert isinstance(out, dict)
    out["days_left"] = round(request.days_left(now), 1)
    out["overdue"] = request.overdue(now)
    return out
