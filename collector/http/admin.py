"""The admin API under ``/v1/admin/``: person lookup, data subject requests,
why an event went (or not) to a destination, records of processing and the
access log.

Every endpoint checks a role-scoped bearer token (``Guard``: 401 missing or
unknown, 403 with the reason when the role lacks the permission); every use
of a person-level permission is written to the access log in the same
transaction as the work. Raw identifiers in request bodies are pseudonymized
in memory (``dsr.person``) and never stored or logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.access.principals import Principal
from collector.access.roles import Permission
from collector.audit import why
from collector.dsr import export, person, ropa, store
from collector.dsr.model import DataSubjectRequest, DsrError, extend, move, open_request
from collector.errors import RequestError
from collector.http import erasure
from collector.http.admin_types import (
    CompleteBody,
    ExtendBody,
    LookupBody,
    OpenBody,
    RefuseBody,
    VerifyBody,
)
from collector.http.guard import Guard, access_entry
from collector.pipeline.decode import split_error
from collector.runtime import Runtime
from collector.storage.ports import AccessEntry, UnitOfWork
from identity.graph import Identifier, OneId

_encoder = msgspec.json.Encoder()
T = TypeVar("T")


def _json(data: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


async def _decode(request: Request, kind: type[T]) -> T:
    body = await request.body()
    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reason, path = split_error(str(exc), "$")
        raise RequestError(400, reason, path) from None


Endpoint = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Endpoint) -> Endpoint:
    """Map the domain's errors to responses in one place."""

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except RequestError as exc:
            return _json({"error": exc.message, "path": exc.path}, exc.status)
        except DsrError as exc:
            status = 404 if str(exc).startswith("no request with id") else 409
            return _json({"error": str(exc), "path": None}, status)

    return endpoint


class AdminApi:
    def __init__(self, runtime: Runtime, guard: Guard) -> None:
        self.rt = runtime
        self.guard = guard

    def routes(self) -> list[Route]:
        g = _guarded
        return [
            Route("/v1/admin/subjects/lookup", g(self.lookup), methods=["POST"]),
            Route("/v1/admin/dsr", g(self.open), methods=["POST"]),
            Route("/v1/admin/dsr", g(self.list_requests), methods=["GET"]),
            Route("/v1/admin/dsr/{id}", g(self.show), methods=["GET"]),
            Route("/v1/admin/dsr/{id}/verify", g(self.verify), methods=["POST"]),
            Route("/v1/admin/dsr/{id}/start", g(self.start), methods=["POST"]),
            Route("/v1/admin/dsr/{id}/extend", g(self.extend), methods=["POST"]),
            Route("/v1/admin/dsr/{id}/complete", g(self.complete), methods=["POST"]),
            Route("/v1/admin/dsr/{id}/refuse", g(self.refuse), methods=["POST"]),
            Route("/v1/admin/dsr/{id}/export", g(self.export), methods=["GET"]),
            Route("/v1/admin/why", g(self.why), methods=["GET"]),
            Route("/v1/admin/ropa", g(self.ropa), methods=["GET"]),
            Route("/v1/admin/access-log", g(self.access_log), methods=["GET"]),
        ]

    # -- helpers ---------------------------------------------------------
    def _resolve(self, identifiers: dict[str, str]) -> list[Identifier]:
        wechat_app = self.rt.config.identity.wechat_app_id
        return person.pseudonymize(self.rt.preparer, identifiers, wechat_app_id=wechat_app)

    def _summary(self, conn: UnitOfWork, one_id: int) -> dict[str, Any]:
        return person.summary(conn, self.rt.graph, one_id, self.rt.destinations)

    async def _logged(
        self,
        principal: Principal,
        permission: Permission,
        action: str,
        work: Callable[[UnitOfWork], tuple[T, str | None]],
        *,
        request_id: str | None = None,
    ) -> T:
        """Run `work` (-> (result, subject)) and log the access in one transaction."""

        def run(conn: UnitOfWork) -> T:
            result, subject = work(conn)
            entry = access_entry(
                principal,
                permission,
                action,
                request_id=request_id,
                subject=subject,
                outcome="ok" if subject else "not found",
            )
            conn.dsr.log_access(entry)
            return result

        return await self.rt.writer.run(run)

    # -- endpoints -------------------------------------------------------
    async def lookup(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.PERSON_LOOKUP)
        body = await _decode(request, LookupBody)
        idents = self._resolve(body.identifiers)

        def work(conn: UnitOfWork) -> tuple[dict[str, Any] | None, str | None]:
            one_id = person.resolve(self.rt.graph, idents)
            if one_id is None:
                return None, None
            return self._summary(conn, one_id), str(one_id)

        found = await self._logged(principal, Permission.PERSON_LOOKUP, "lookup", work)
        if found is None:
            raise RequestError(404, "no person is known by these identifiers", "$.identifiers")
        return _json(found)

    async def open(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.DSR_MANAGE)
        body = await _decode(request, OpenBody)
        idents = self._resolve(body.identifiers)
        now = datetime.now(UTC)

        def work(conn: UnitOfWork) -> tuple[DataSubjectRequest, str | None]:
            one_id = person.resolve(self.rt.graph, idents)
            req = open_request(
                id=store.new_id(),
                type=body.type,
                jurisdiction=body.jurisdiction,
                received_at=now,
                by=principal.name,
                identifier_kinds=tuple(
                    sorted(k for k in body.identifiers if k in person.IDENTIFIER_KEYS)
                ),
                subject=None if one_id is None else str(one_id),
                deadlines=self.rt.config.dsr.deadlines,
            )
            store.save(conn, req)
            return req, req.subject

        req = await self._logged(principal, Permission.DSR_MANAGE, "open request", work)
        return _json({"id": req.id, "request": store.as_json(req, now)}, 201)

    async def list_requests(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.DSR_MANAGE)
        now = datetime.now(UTC)

        def work(conn: UnitOfWork) -> tuple[list[DataSubjectRequest], str | None]:
            return store.all_requests(conn), "*"

        found = await self._logged(principal, Permission.DSR_MANAGE, "list requests", work)
        return _json({"requests": [store.as_json(r, now) for r in found]})

    async def show(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.DSR_MANAGE)
        rid = request.path_params["id"]

        def work(conn: UnitOfWork) -> tuple[DataSubjectRequest, str | None]:
            req = store.load(conn, rid)
            return req, req.subject or "-"

        req = await self._logged(
            principal, Permission.DSR_MANAGE, "show request", work, request_id=rid
        )
        return _json(store.as_json(req, datetime.now(UTC)))

    async def _transition(
        self,
        request: Request,
        action: str,
        change: Callable[[DataSubjectRequest], DataSubjectRequest],
    ) -> DataSubjectRequest:
        principal = self.guard.check(request, Permission.DSR_MANAGE)
        rid = request.path_params["id"]

        def work(conn: UnitOfWork) -> tuple[DataSubjectRequest, str | None]:
            req = change(store.load(conn, rid))
            store.save(conn, req)
            return req, req.subject or "-"

        return await self._logged(principal, Permission.DSR_MANAGE, action, work, request_id=rid)

    async def verify(self, request: Request) -> Response:
        by = self.guard.check(request, Permission.DSR_MANAGE).name
        body = await _decode(request, VerifyBody)
        now = datetime.now(UTC)
        req = await self._transition(
            request,
            "verify identity",
            lambda r: move(r, "verified", at=now, by=by, method=body.method),
        )
        return _json(store.as_json(req, now))

    async def start(self, request: Request) -> Response:
        by = self.guard.check(request, Permission.DSR_MANAGE).name
        now = datetime.now(UTC)
        req = await self._transition(
            request, "start work", lambda r: move(r, "in_progress", at=now, by=by)
        )
        return _json(store.as_json(req, now))

    async def extend(self, request: Request) -> Response:
        by = self.guard.check(request, Permission.DSR_MANAGE).name
        body = await _decode(request, ExtendBody)
        now = datetime.now(UTC)
        deadlines = self.rt.config.dsr.deadlines
        req = await self._transition(
            request,
            "extend deadline",
            lambda r: extend(r, at=now, by=by, reason=body.reason, deadlines=deadlines),
        )
        return _json(store.as_json(req, now))

    async def refuse(self, request: Request) -> Response:
        by = self.guard.check(request, Permission.DSR_MANAGE).name
        body = await _decode(request, RefuseBody)
        now = datetime.now(UTC)
        req = await self._transition(
            request, "refuse", lambda r: move(r, "refused", at=now, by=by, note=body.reason)
        )
        return _json(store.as_json(req, now))

    async def complete(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.DSR_MANAGE)
        body = await _decode(request, CompleteBody)
        rid = request.path_params["id"]
        now = datetime.now(UTC)
        req = await self.rt.writer.run(lambda c: store.load(c, rid))
        move(req, "completed", at=now, by=principal.name)  # refuse early if it may not
        outcome: dict[str, Any] = {}
        if req.type == "erasure":
            eraser = self.guard.check(request, Permission.ERASE)
            outcome["erasure"] = await self._erase(eraser, req)
        elif req.type == "withdrawal":
            outcome["withdrawal"] = await self._withdraw(req, now)
        done = await self._transition(
            request,
            f"complete {req.type}",
            lambda r: move(r, "completed", at=now, by=principal.name, note=body.note),
        )
        return _json({"request": store.as_json(done, now), **outcome})

    def _identifiers(self, conn: UnitOfWork, req: DataSubjectRequest) -> list[Identifier]:
        if req.subject is None:
            return []
        lineage = self.rt.graph.lineage(OneId(int(req.subject)))
        return [Identifier(k, p) for k, p in conn.dsr.pseudonyms(lineage)]

    async def _erase(self, principal: Principal, req: DataSubjectRequest) -> dict[str, object]:
        idents = await self.rt.writer.run(lambda c: self._identifiers(c, req))
        if not idents:
            return {"erased": False, "reason": "no person is known for this request"}
        summary = await erasure.erase(self.rt, idents)
        entry = access_entry(
            principal, Permission.ERASE, "erase", request_id=req.id, subject=req.subject
        )
        await self.rt.writer.run(lambda c: c.dsr.log_access(entry))
        return summary

    async def _withdraw(self, req: DataSubjectRequest, now: datetime) -> dict[str, object]:
        def work(conn: UnitOfWork) -> dict[str, object]:
            idents = self._identifiers(conn, req)
            if not idents or req.subject is None:
                return {"recorded": False, "reason": "no person is known for this request"}
            granted = self._summary(conn, int(req.subject))["consent"]["state"]
            purposes = {k: False for k in granted if k != "necessary"} or {"analytics": False}
            seq, _one_id, action = self.rt.router.record_consent(
                conn,
                idents,
                purposes=purposes,
                jurisdiction=req.jurisdiction,
                given_at=now,
                received_at=now,
                legal_basis="consent",
                method="api",
                pi_categories=(),
                recipients=(),
                separate=False,
                consenter="self",
                notice_id=None,
                notice_version=None,
                signal="data_subject_request",
            )
            return {"recorded": True, "record": seq, "action": action, "purposes": purposes}

        return await self.rt.writer.run(work)

    async def export(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.DSR_EXPORT)
        rid = request.path_params["id"]
        now = datetime.now(UTC)

        def work(conn: UnitOfWork) -> tuple[bytes, str | None]:
            req = store.load(conn, rid)
            if req.type not in ("access", "portability"):
                raise DsrError(
                    f"only access and portability requests have an export; {rid} is {req.type}"
                )
            if req.state not in ("verified", "in_progress", "completed"):
                raise DsrError(
                    f"verify the person's identity before exporting ({rid} is {req.state})"
                )
            if req.subject is None:
                raise DsrError(f"request {rid} matched nobody: there is nothing to export")
            summary = self._summary(conn, int(req.subject))
            data = export.build(
                store.as_json(req, now), summary, controller=self.rt.config.dsr.controller, now=now
            )
            return data, req.subject

        data = await self._logged(principal, Permission.DSR_EXPORT, "export", work, request_id=rid)
        return Response(
            data,
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{rid}.zip"'},
        )

    async def why(self, request: Request) -> Response:
        principal = self.guard.check(request, Permission.WHY)
        q = request.query_params
        message_id, destination = q.get("message_id", ""), q.get("destination", "")
        for name, value in (("message_id", message_id), ("destination", destination)):
            if not value.strip():
                raise RequestError(400, f"give ?{name}=… (the event and where it went)", name)

        def work(conn: UnitOfWork) -> tuple[list[why.Explanation], str | None]:
            found = why.explain(conn.audit, message_id, destination)
            return found, (why.subject_of(found) or "-") if found else None

        found = await self._logged(
            principal, Permission.WHY, f"why {message_id[:200]} at {destination[:100]}", work
        )
        if not found:
            raise RequestError(
                404,
                f"no decision is recorded for message {message_id!r} at {destination!r}",
                "message_id",
            )
        return _json(why.as_json(found))

    async def ropa(self, request: Request) -> Response:
        self.guard.check(request, Permission.ROPA)
        fmt = request.query_params.get("format", "csv")
        if fmt == "csv":
            return Response(ropa.to_csv(self.rt.config), media_type="text/csv; charset=utf-8")
        if fmt == "xlsx":
            data = ropa.to_xlsx(self.rt.config)
            if data is None:
                raise RequestError(400, "XLSX needs openpyxl installed; use format=csv", "format")
            return Response(
                data,
                media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        raise RequestError(400, f"format must be csv or xlsx, not {fmt!r}", "format")

    async def access_log(self, request: Request) -> Response:
        self.guard.check(request, Permission.ACCESS_LOG)
        subject = request.query_params.get("subject")
        entries = await self.rt.writer.run(lambda c: c.dsr.access_log(subject=subject))
        return _json({"entries": [_entry(e) for e in entries]})


def _entry(e: AccessEntry) -> dict[str, object]:
    return {
        "at": datetime.fromtimestamp(e.at, UTC).isoformat(),
        "principal": e.principal,
        "role": e.role,
        "permission": e.permission,
        "action": e.action,
        "request_id": e.request_id,
        "subject": e.subject,
        "outcome": e.outcome,
    }
