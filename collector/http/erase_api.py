"""``POST /v1/erase``: erase a person (GDPR Art. 17, PIPL Art. 47, CCPA
1798.105) found by raw identifiers that are pseudonymized in memory and never
stored. Needs a token whose role has the ``erase`` permission
(collector.access); every use is written to the access log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector.access.roles import Permission
from collector.errors import InvalidMessage
from collector.http import erasure
from collector.http.errors import json_response
from collector.http.guard import Guard, access_entry
from collector.http.request import read_body
from collector.pipeline.decode import split_error
from collector.runtime import Runtime


class EraseRequest(msgspec.Struct, kw_only=True):
    userId: str | None = None
    anonymousId: str | None = None
    traits: dict[str, Any] | None = None


_erase_decoder = msgspec.json.Decoder(EraseRequest)


class EraseApi:
    def __init__(self, runtime: Runtime, guard: Guard) -> None:
        self.rt = runtime
        self.guard = guard

    def routes(self) -> Sequence[BaseRoute]:
        return [Route("/v1/erase", self.erase, methods=["POST"])]

    async def erase(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.ERASE)
        body = await read_body(request)
        try:
            req = _erase_decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            reason, path = split_error(str(exc), "$")
            raise InvalidMessage(reason, path) from None
        identifiers = self.rt.preparer.identifiers_for(req.userId, req.anonymousId, req.traits, "$")
        summary = await erasure.erase(self.rt, identifiers)
        people = summary.get("people")
        subject = ",".join(str(p["one_id"]) for p in people) if isinstance(people, list) else None
        entry = access_entry(
            principal,
            Permission.ERASE,
            "erase",
            subject=subject,
            outcome="erased" if subject else "not found",
        )
        await self.rt.writer.run(lambda uow: uow.dsr.log_access(entry))
        return json_response(summary)
