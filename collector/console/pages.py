"""The console's pages (routes under ``/console``).

Each handler: read the session (none -> the login page), check the role
matrix (missing permission -> a 403 page saying which role may), do the work
through the same modules as the admin API (``collector.dsr``), render a
template. Person-level pages write the access log in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from collector.access.principals import Principal, Principals
from collector.access.roles import Permission, allows, why_not
from collector.console import chart, labels
from collector.console.session import Session, Sessions
from collector.dsr import export, person, store
from collector.dsr.model import DsrError, deadline_rule, extend, move, open_request
from collector.errors import RequestError
from collector.http import erasure
from collector.http.guard import access_entry
from collector.runtime import Runtime
from collector.storage.ports import OptInCount, UnitOfWork
from identity.graph import Identifier, OneId

TYPE_LABELS = {
    "access": "Access (a copy of their data)",
    "portability": "Portability (data in a reusable format)",
    "erasure": "Erasure (delete their data)",
    "withdrawal": "Withdraw consent",
}
STATE_LABELS = {
    "received": "Received, identity not yet checked",
    "verified": "Identity checked",
    "in_progress": "In progress",
    "completed": "Completed",
    "refused": "Refused",
}
CHART_DAYS = 30  # the overview's opt-in charts: a bounded window keeps the ledger scan short
CHART_TTL = 300.0  # seconds the charts' counts are reused

Handler = Callable[[Request, Session], Awaitable[Response]]


class Console:
    def __init__(self, runtime: Runtime, principals: Principals) -> None:
        self.rt = runtime
        self.principals = principals
        access = runtime.config.access
        self.sessions = Sessions(
            runtime.master_key,
            idle_minutes=access.session_idle_minutes,
            login_attempts=access.login_attempts,
        )
        self._chart_cache: tuple[float, str, list[OptInCount]] | None = None
        self.env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(["html"]),
        )
        self.env.globals.update(
            type_labels=TYPE_LABELS,
            state_labels=STATE_LABELS,
            Permission=Permission,
            allows=allows,
            labels=labels,
            wechat_app=runtime.config.identity.wechat_app_id,
        )
        self.env.filters["when"] = labels.when

    def routes(self) -> list[Route]:
        from collector.console.records import RecordPages
        from collector.console.why import WhyPage

        p = self.page
        return [
            Route("/console", p(self.overview, Permission.DASHBOARD), methods=["GET"]),
            Route("/console/login", self.login_form, methods=["GET"]),
            Route("/console/login", self.login, methods=["POST"]),
            Route("/console/logout", self.logout, methods=["POST"]),
            Route(
                "/console/person", p(self.person, Permission.PERSON_LOOKUP), methods=["GET", "POST"]
            ),
            Route("/console/dsr", p(self.queue, Permission.DSR_MANAGE), methods=["GET", "POST"]),
            Route(
                "/console/dsr/{id}", p(self.detail, Permission.DSR_MANAGE), methods=["GET", "POST"]
            ),
            Route(
                "/console/dsr/{id}/export", p(self.export, Permission.DSR_EXPORT), methods=["GET"]
            ),
            *RecordPages(self).routes(),
            *WhyPage(self).routes(),
        ]

    # -- plumbing ----------------------------------------------------------
    def render(
        self,
        request: Request,
        session: Session | None,
        name: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        html = self.env.get_template(name).render(session=session, **context)
        response = HTMLResponse(html, status)
        if session is not None:
            self.sessions.write(response, session, request)  # sliding idle timeout
        response.headers["content-security-policy"] = (
            "default-src 'self'; style-src 'self' 'unsafe-inline'"
        )
        response.headers["x-frame-options"] = "DENY"
        return response

    def page(
        self, handler: Handler, permission: Permission
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.sessions.read(request)
            if session is None:
                return RedirectResponse("/console/login", 303)
            if not allows(session.role, permission):
                return self.render(
                    request, session, "denied.html", 403, reason=why_not(session.role, permission)
                )
            if request.method == "POST":
                form = await _form(request)
                if not self.sessions.csrf_ok(session, form.get("csrf")):
                    return self.render(
                        request,
                        session,
                        "denied.html",
                        403,
                        reason="the form expired; reload the page and try again",
                    )
                request.state.form = form
            try:
                return await handler(request, session)
            except (RequestError, DsrError) as exc:
                message = exc.message if isinstance(exc, RequestError) else str(exc)
                return self.render(request, session, "denied.html", 400, reason=message)

        return endpoint

    async def _log(
        self,
        session: Session,
        permission: Permission,
        action: str,
        *,
        request_id: str | None = None,
        subject: str | None,
    ) -> None:
        entry = access_entry(
            Principal(session.name, session.role, "user"),
            permission,
            action,
            request_id=request_id,
            subject=subject,
            outcome="ok" if subject else "not found",
        )
        await self.rt.writer.run(lambda c: c.dsr.log_access(entry))

    def _identifiers(self, given: dict[str, str]) -> list[Identifier]:
        wechat_app = self.rt.config.identity.wechat_app_id
        return person.pseudonymize(self.rt.preparer, given, wechat_app_id=wechat_app)

    # -- login -------------------------------------------------------------
    async def login_form(self, request: Request) -> Response:
        return self.render(request, None, "login.html")

    async def login(self, request: Request) -> Response:
        form = await _form(request)
        name, password = form.get("name", ""), form.get("password", "")
        address = request.client.host if request.client else "-"
        if not self.sessions.may_try_login(address, name):
            return self.render(
                request,
                None,
                "login.html",
                429,
                error="Too many attempts. Wait 15 minutes and try again.",
            )
        principal = self.principals.login(name, password)
        if principal is None:
            return self.render(request, None, "login.html", 401, error="Wrong name or password.")
        response = RedirectResponse("/console", 303)
        self.sessions.write(response, self.sessions.start(principal.name, principal.role), request)
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/console/login", 303)
        self.sessions.end(response)
        return response

    # -- pages -------------------------------------------------------------
    async def overview(self, request: Request, session: Session) -> Response:
        now = time.time()
        totals = await self.rt.writer.run(lambda c: c.dsr.decision_totals())
        outbox = (
            await self.rt.writer.run(lambda c: c.outbox_admin.status(now))
            if allows(session.role, Permission.OUTBOX_READ)
            else None
        )
        ledger = None
        if allows(session.role, Permission.LEDGER_READ):
            result = await self.rt.writer.run(lambda c: c.audit.verify(None, anchor=None))
            ledger = {"ok": result.ok, "problem": result.problem, "bad": result.first_bad_seq}
        days = chart.window(datetime.fromtimestamp(now, UTC).date(), CHART_DAYS)
        counts = await self._opt_in_counts(days, now)
        return self.render(
            request,
            session,
            "overview.html",
            totals=totals,
            outbox=outbox,
            ledger=ledger,
            charts=chart.opt_in_charts(counts, days),
            days=days,
            chart=chart,
        )

    async def _opt_in_counts(self, days: list[str], now: float) -> list[OptInCount]:
        """The charts' counts, computed at most every CHART_TTL seconds per
        process: the scan runs on the writer, and a daily chart loses nothing
        by being a few minutes old."""
        cached = self._chart_cache
        if cached is not None and cached[1] == days[0] and now - cached[0] < CHART_TTL:
            return cached[2]
        since = datetime.fromisoformat(days[0]).replace(tzinfo=UTC)
        counts = await self.rt.writer.run(lambda c: c.audit.opt_in_counts(since))
        self._chart_cache = (now, days[0], counts)
        return counts

    async def person(self, request: Request, session: Session) -> Response:
        if request.method == "GET":
            return self.render(request, session, "person.html", found=None, asked=False)
        idents = self._identifiers(_given(request.state.form))

        def work(conn: UnitOfWork) -> dict[str, Any] | None:
            one_id = person.resolve(self.rt.graph, idents)
            return (
                None
                if one_id is None
                else person.summary(conn, self.rt.graph, one_id, self.rt.destinations)
            )

        found = await self.rt.writer.run(work)
        await self._log(
            session,
            Permission.PERSON_LOOKUP,
            "lookup",
            subject=str(found["one_id"]) if found else None,
        )
        return self.render(request, session, "person.html", found=found, asked=True)

    async def queue(self, request: Request, session: Session) -> Response:
        now = datetime.now(UTC)
        if request.method == "POST":
            form = request.state.form
            given = _given(form)
            idents = self._identifiers(given)

            def open_work(conn: UnitOfWork) -> str:
                one_id = person.resolve(self.rt.graph, idents)
                req = open_request(
                    id=store.new_id(),
                    type=form.get("type", ""),
                    jurisdiction=form.get("jurisdiction", "GDPR"),
                    received_at=now,
                    by=session.name,
                    identifier_kinds=tuple(k for k in given if k in person.IDENTIFIER_KEYS),
                    subject=None if one_id is None else str(one_id),
                    deadlines=self.rt.config.dsr.deadlines,
                )  # type: ignore[arg-type]
                store.save(conn, req)
                conn.dsr.log_access(
                    access_entry(
                        Principal(session.name, session.role, "user"),
                        Permission.DSR_MANAGE,
                        "open request",
                        request_id=req.id,
                        subject=req.subject,
                        outcome="ok" if req.subject else "not found",
                    ),
                )
                return req.id

            rid = await self.rt.writer.run(open_work)
            return RedirectResponse(f"/console/dsr/{rid}", 303)
        requests = await self.rt.writer.run(store.all_requests)
        rows = [(r, r.days_left(now), r.overdue(now)) for r in requests]
        return self.render(request, session, "dsr_list.html", rows=rows)

    async def detail(self, request: Request, session: Session) -> Response:
        rid = request.path_params["id"]
        now = datetime.now(UTC)
        req = await self.rt.writer.run(lambda c: store.load(c, rid))
        result: dict[str, Any] | None = None
        if request.method == "POST":
            form = request.state.form
            action = form.get("action")
            deadlines = self.rt.config.dsr.deadlines
            if action == "verify":
                req = move(req, "verified", at=now, by=session.name, method=form.get("method", ""))
            elif action == "start":
                req = move(req, "in_progress", at=now, by=session.name)
            elif action == "extend":
                reason = form.get("reason", "")
                req = extend(req, at=now, by=session.name, reason=reason, deadlines=deadlines)
            elif action == "refuse":
                req = move(req, "refused", at=now, by=session.name, note=form.get("reason", ""))
            elif action == "complete":
                move(req, "completed", at=now, by=session.name)
                if req.type == "erasure":
                    if not allows(session.role, Permission.ERASE):
                        return self.render(
                            request,
                            session,
                            "denied.html",
                            403,
                            reason=why_not(session.role, Permission.ERASE),
                        )
                    result = await self._erase(session, req)
                req = move(req, "completed", at=now, by=session.name, note=form.get("note", ""))
            else:
                raise DsrError(f"unknown action {action!r}")
            saved = req
            await self.rt.writer.run(lambda c: store.save(c, saved))
            await self._log(
                session,
                Permission.DSR_MANAGE,
                str(action),
                request_id=rid,
                subject=req.subject or "-",
            )
        rule = deadline_rule(req.jurisdiction, self.rt.config.dsr.deadlines)
        return self.render(
            request,
            session,
            "dsr_detail.html",
            r=req,
            days_left=req.days_left(now),
            overdue=req.overdue(now),
            result=result,
            rule=rule,
            may_extend=req.state not in ("completed", "refused")
            and not req.extended
            and rule.extension > 0,
        )

    async def _erase(self, session: Session, req: Any) -> dict[str, Any]:
        def idents(conn: UnitOfWork) -> list[Identifier]:
            lineage = self.rt.graph.lineage(OneId(int(req.subject)))
            return [Identifier(k, p) for k, p in conn.dsr.pseudonyms(lineage)]

        found = await self.rt.writer.run(idents) if req.subject else []
        if not found:
            return {"erased": False, "reason": "no person is known for this request"}
        summary = await erasure.erase(self.rt, found)
        await self._log(session, Permission.ERASE, "erase", request_id=req.id, subject=req.subject)
        return summary

    async def export(self, request: Request, session: Session) -> Response:
        rid = request.path_params["id"]
        now = datetime.now(UTC)

        def work(conn: UnitOfWork) -> tuple[bytes, str]:
            req = store.load(conn, rid)
            if req.state not in ("verified", "in_progress", "completed") or req.subject is None:
                raise DsrError(
                    "check the person's identity first; a request that matched nobody has no export"
                )
            summary = person.summary(conn, self.rt.graph, int(req.subject), self.rt.destinations)
            return export.build(
                store.as_json(req, now), summary, controller=self.rt.config.dsr.controller, now=now
            ), req.subject

        data, subject = await self.rt.writer.run(work)
        await self._log(session, Permission.DSR_EXPORT, "export", request_id=rid, subject=subject)
        return Response(
            data,
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{rid}.zip"'},
        )


def _given(form: dict[str, str]) -> dict[str, str]:
    """The identifier a lookup form names (kind and value; for a WeChat openid
    also its app id when one was typed)."""
    kind = form.get("kind", "")
    if kind not in person.IDENTIFIER_KEYS:
        return {}
    given = {kind: form.get("value", "")}
    if kind == "wechat_openid" and form.get("app", "").strip():
        given[person.WECHAT_APP] = form["app"].strip()
    return given


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form's fields (first value of each)."""
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
