"""What a destination is: something that takes a batch of encoded messages.

A destination type is a class registered under the ``consentry.destinations``
entry-point group, constructed from its config Struct. ``send`` gets the
messages exactly as they will be delivered (already transformed for this
destination) and says whether the batch landed, and if not whether to retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class SendResult:
    ok: bool
    retryable: bool = True
    retry_after: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteResult:
    ok: bool
    deleted: int | None = None
    detail: str | None = None


class Destination(Protocol):
    name: str

    async def send(self, messages: list[bytes]) -> SendResult: ...

    async def close(self) -> None: ...


@runtime_checkable
class SupportsDeletion(Protocol):
    """Destinations that can forget a person. ``one_ids`` are the person's OneIDs
    as this destination saw them (``context.consentry.oneId``, its own domain)."""

    async def delete(self, one_ids: list[str]) -> DeleteResult: ...
