"""Console pages over records: the consent log (filters, CSV), records of
processing (GDPR Art. 30; CSV), and the access log (admin)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from collector.access.roles import Permission
from collector.audit import report
from collector.console.labels import ACTION_LABELS
from collector.console.session import Session
from collector.dsr import ropa
from collector.storage.ports import UnitOfWork
from consent.ledger import ConsentRecord

if TYPE_CHECKING:
    from collector.console.pages import Console

SHOWN = 500


def _day(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        return None


class RecordPages:
    def __init__(self, console: Console) -> None:
        self.c = console

    def routes(self) -> list[Route]:
        p = self.c.page
        return [
            Route("/console/consent", p(self.consent, Permission.LEDGER_READ), methods=["GET"]),
            Route(
                "/console/consent.csv", p(self.consent_csv, Permission.LEDGER_READ), methods=["GET"]
            ),
            Route("/console/ropa", p(self.ropa, Permission.ROPA), methods=["GET"]),
            Route("/console/ropa.csv", p(self.ropa_csv, Permission.ROPA), methods=["GET"]),
            Route("/console/ropa.xlsx", p(self.ropa_xlsx, Permission.ROPA), methods=["GET"]),
            Route("/console/access-log", p(self.access, Permission.ACCESS_LOG), methods=["GET"]),
        ]

    async def _records(self, request: Request) -> list[ConsentRecord]:
        q = request.query_params
        since, until = _day(q.get("from")), _day(q.get("to"))
        action, law = q.get("action") or None, q.get("jurisdiction") or None

        def work(conn: UnitOfWork) -> list[ConsentRecord]:
            found = conn.audit.records(since=since, until=until)
            return [
                r
                for r in found
                if (action is None or r.action == action) and (law is None or r.jurisdiction == law)
            ]

        return await self.c.rt.writer.run(work)

    async def consent(self, request: Request, session: Session) -> Response:
        records = await self._records(request)
        return self.c.render(
            request,
            session,
            "consent.html",
            records=records[-SHOWN:][::-1],
            total=len(records),
            shown=SHOWN,
            q=dict(request.query_params),
            action_labels=ACTION_LABELS,
            query=request.url.query,
        )

    async def consent_csv(self, request: Request, session: Session) -> Response:
        buf = io.StringIO()
        report.records_csv(await self._records(request), buf)
        return Response(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="consent-log.csv"'},
        )

    async def ropa(self, request: Request, session: Session) -> Response:
        rows = ropa.rows(self.c.rt.config)
        return self.c.render(request, session, "ropa.html", rows=rows, columns=ropa.COLUMNS)

    async def ropa_csv(self, request: Request, session: Session) -> Response:
        return Response(
            ropa.to_csv(self.c.rt.config),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": 'attachment; filename="records-of-processing.csv"'},
        )

    async def ropa_xlsx(self, request: Request, session: Session) -> Response:
        data = ropa.to_xlsx(self.c.rt.config)
        if data is None:
            return self.c.render(
                request, session, "denied.html", 501, reason="XLSX needs openpyxl; use the CSV"
            )
        return Response(
            data,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"content-disposition": 'attachment; filename="records-of-processing.xlsx"'},
        )

    async def access(self, request: Request, session: Session) -> Response:
        subject = request.query_params.get("subject") or None
        entries = await self.c.rt.writer.run(lambda c: c.dsr.access_log(subject=subject))
        rows = [
            (datetime.fromtimestamp(e.at, UTC).isoformat(timespec="seconds"), e) for e in entries
        ]
        return self.c.render(request, session, "access_log.html", rows=rows, subject=subject)
