"""The Starlette app: decode, call the domain, encode.

Endpoints are Segment's HTTP Tracking API (``/v1/batch``, ``/v1/track``, ...)
plus ``/v1/consent``, ``/v1/erase``, health, metrics and the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector import openapi
from collector.access.principals import Principals
from collector.access.roles import Permission
from collector.consent_calls import call_keys, call_recipients
from collector.errors import HeldByPlan, InvalidMessage, RequestError
from collector.health import not_ready_reason
from collector.http import erasure
from collector.http.admin import AdminApi
from collector.http.allowed import explain
from collector.http.body import BodyError, inflate
from collector.http.envelope import read_batch, read_single
from collector.http.guard import Guard, access_entry
from collector.limits import check_batch_size, summarise_rejections, summarise_warnings
from collector.pipeline.decode import Rejection, decode_message, split_error
from collector.pipeline.prepare import Prepared
from collector.pipeline.warnings import InputWarning
from collector.runtime import Runtime
from collector.sources.browser import Browser, Visit
from collector.sources.browser_http import BrowserEndpoints
from collector.sources.cookies import request_consent
from collector.sources.webhooks.endpoint import Webhooks
from collector.sources.wechat import strip_session_keys
from collector.storage.sqlite.dsr import log_access
from collector.storage.sqlite.outbox import gauges as outbox_gauges
from collector.text_rules import replace_nul
from consent.errors import ConsentScopeError
from consent.purposes import is_state_key
from sdk_python.messages import (
    MAX_REQUEST_BYTES,
    BatchResult,
    ConsentCall,
    ErrorBody,
    MessageWarning,
    Rejected,
)

log = logging.getLogger("consentry.collector")
_consent_decoder = msgspec.json.Decoder(ConsentCall)
_encoder = msgspec.json.Encoder()


class _KeyOnly(msgspec.Struct):
    writeKey: str | None = None


class EraseRequest(msgspec.Struct, kw_only=True):
    userId: str | None = None
    anonymousId: str | None = None
    traits: dict[str, Any] | None = None


_key_decoder = msgspec.json.Decoder(_KeyOnly)
_erase_decoder = msgspec.json.Decoder(EraseRequest)


def _json(data: Any, status: int = 200) -> Response:
    return Response(_encoder.encode(data), status_code=status, media_type="application/json")


def _error(exc: RequestError) -> Response:
    return _json(ErrorBody(error=exc.message, path=exc.path), exc.status)


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        raise RequestError(
            413, f"request body is {declared} bytes; the limit is {MAX_REQUEST_BYTES}"
        )
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_REQUEST_BYTES:
                raise RequestError(413, f"request body is over the {MAX_REQUEST_BYTES}-byte limit")
            chunks.append(chunk)
    except ClientDisconnect:
        # Gone before the body was complete (or cut by the body timeout): nothing
        # was stored, and nobody is left to answer; no traceback for it.
        raise RequestError(400, "the client disconnected before the body was complete") from None
    body = b"".join(chunks)
    try:
        body = inflate(body, request.headers.get("content-encoding", ""), limit=MAX_REQUEST_BYTES)
    except BodyError as exc:
        if exc.status == 413:
            raise RequestError(
                413, f"decompressed body is over the {MAX_REQUEST_BYTES}-byte limit"
            ) from None
        raise RequestError(exc.status, exc.message) from None
    if not body:
        raise RequestError(400, "request body is empty; send a JSON object")
    return body


def basic_user(request: Request) -> str | None:
    return _basic_user(request.headers.get("authorization", ""))


@functools.lru_cache(maxsize=64)
def _basic_user(header: str) -> str | None:
    """Clients send the same header on every request: decode it once."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0]


class Api:
    def __init__(self, runtime: Runtime, guard: Guard) -> None:
        self.rt = runtime
        self.guard = guard
        config = runtime.config
        self.browser = Browser(
            config,
            {s.name: s.allowed_origins for s in config.effective_sources() if s.type == "http_api"},
            count=lambda source, outcome: runtime.metrics.browser.labels(source, outcome).inc(),
        )

    def _authenticate(self, request: Request, body_key: str | None) -> str:
        source = self.rt.sources.authenticate(
            basic_user(request) or body_key or request.query_params.get("writeKey")
        )
        if source is None:
            raise RequestError(
                401,
                "unknown or missing write key: send it as the Basic auth user name or as writeKey",
            )
        return source

    async def _ingest(
        self,
        source: str,
        items: Sequence[tuple[int, bytes, str | None]],
        batch_context: dict[str, Any] | None,
        request: Request | None = None,
        *,
        sent_at: datetime | None = None,
        integrations: dict[str, Any] | None = None,
        warnings: Sequence[InputWarning] = (),
    ) -> BatchResult:
        received_at = datetime.now(UTC)
        cookie_consent: dict[str, Any] | None = None
        cookie_warnings: list[tuple[str, str]] = []
        if request is not None:
            cookie_consent, cookie_warnings = request_consent(request.headers.getlist("cookie"))
        prepared: list[Prepared] = []
        rejected: list[Rejection] = []
        found = list(warnings)
        plan = self.rt.plans.get(source)
        max_depth = self.rt.config.ingest.max_depth
        for index, raw, kind in items:
            prefix = f"$.batch[{index}]" if kind is None else "$"
            storable, nul_paths = replace_nul(raw, prefix)
            decoded = [InputWarning(index, "nul_replaced", why, at) for why, at in nul_paths]
            try:
                message = decode_message(
                    storable,
                    index=index,
                    prefix=prefix,
                    kind=kind,
                    max_depth=max_depth,
                    warnings=decoded,
                )
                p = self.rt.preparer.prepare(
                    message,
                    index=index,
                    prefix=prefix,
                    received_at=received_at,
                    batch_context=batch_context,
                    sent_at=sent_at,
                    batch_integrations=integrations,
                    request_consent=cookie_consent,
                    plan=plan,
                )
            except HeldByPlan as held:
                # Kept (encrypted) for a replay even from a single-message endpoint.
                self.rt.metrics.plan_checked(
                    source, held.event, held.verdict, (v[0] for v in held.violations)
                )
                rejected.append(Rejection(index, held.reason, held.path, held.kept))
                continue
            except Exception as exc:  # one bad message never fails its batch
                reason, path = _rejection(exc, prefix)
                if kind is not None:
                    raise RequestError(400, reason, path) from None
                rejected.append(Rejection(index, reason, path, raw))
                continue
            prepared.append(p)
            if p.plan is not None and p.plan.violations:
                self.rt.metrics.plan_checked(
                    source, p.plan.event, p.plan.verdict, (v.kind for v in p.plan.violations)
                )
            found += decoded
            found += p.warnings
            found += [InputWarning(index, "consent_unreadable", r, at) for r, at in cookie_warnings]
        limits = self.rt.config.server
        rejected_total = len(rejected)
        rejected = summarise_rejections(rejected, limits.max_quarantined_per_request)
        try:
            tally = await self.rt.writer.run(
                self.rt.router.unit(prepared, rejected, source=source, received_at=received_at)
            )
        except Exception as exc:
            # Nothing was acknowledged: say so with a status clients retry on.
            log.error("batch from %s not stored: %s", source, type(exc).__name__)
            raise RequestError(503, "the batch could not be stored durably; retry later") from None
        tally.quarantined = rejected_total
        self.rt.metrics.ingested(source, len(items), tally)
        found += [
            InputWarning(
                i,
                "duplicate",
                "this messageId was received from this source before; acknowledged, stored once",
                "$.messageId" if items[0][2] is not None else f"$.batch[{i}].messageId",
            )
            for i in tally.duplicates
        ]
        if found:
            self.rt.metrics.warned(source, (w.code for w in found))
            found.sort(key=lambda w: -1 if w.index is None else w.index)  # stable
        return BatchResult(
            success=True,
            accepted=tally.accepted,
            rejected=[Rejected(index=r.index, reason=r.reason, path=r.path) for r in rejected],
            warnings=summarise_warnings(
                [MessageWarning(index=w.index, reason=w.reason, path=w.path) for w in found],
                limits.max_warnings_per_request,
            ),
        )

    def _prepare_items(
        self, visit: Visit | None, source: str, raws: list[bytes], single: bool
    ) -> tuple[list[bytes], list[InputWarning]]:
        """Request facts into browser messages; ``session_key`` out of every message."""
        if visit is not None:
            raws = self.browser.rewrite(visit, raws)
        warnings: list[InputWarning] = []
        for i, raw in enumerate(raws):
            raws[i], removed = strip_session_keys(raw, "$" if single else f"$.batch[{i}]")
            warnings += [
                InputWarning(
                    i,
                    "session_key_removed",
                    "a WeChat session_key was removed; it never leaves your backend",
                    path,
                )
                for path in removed
            ]
        if warnings:
            log.warning("source %s: %d session_key field(s) removed", source, len(warnings))
        return raws, warnings

    async def batch(self, request: Request, *, beacon: bool = False) -> Response:
        visit: Visit | None = None
        try:
            body = await read_body(request)
            parsed = read_batch(body, max_depth=self.rt.config.ingest.max_depth)
            source = self._authenticate(request, parsed.write_key)
            check_batch_size(len(parsed.messages), self.rt.config.server.max_batch_messages)
            visit = self.browser.begin(request, source, always=beacon)
            raws, stripped = self._prepare_items(visit, source, parsed.messages, False)
            items = [(i, raw, None) for i, raw in enumerate(raws)]
            result = await self._ingest(
                source,
                items,
                parsed.context,
                request,
                sent_at=parsed.sent_at,
                integrations=parsed.integrations,
                warnings=parsed.warnings + stripped,
            )
        except RequestError as exc:
            return self.browser.error(visit, exc, _error(exc))
        return self.browser.finish(visit, _json(result))

    async def beacon(self, request: Request) -> Response:
        return await self.batch(request, beacon=True)

    def single(self, kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            visit: Visit | None = None
            try:
                body, warnings = read_single(await read_body(request))
                key = None
                if basic_user(request) is None:
                    try:
                        key = _key_decoder.decode(body).writeKey
                    except (msgspec.ValidationError, RecursionError):
                        pass
                    except msgspec.DecodeError as exc:
                        raise RequestError(400, f"body is not valid JSON: {exc}", "$") from None
                source = self._authenticate(request, key)
                visit = self.browser.begin(request, source)
                (body,), stripped = self._prepare_items(visit, source, [body], True)
                result = await self._ingest(
                    source, [(0, body, kind)], None, request, warnings=warnings + stripped
                )
            except RequestError as exc:
                return self.browser.error(visit, exc, _error(exc))
            return self.browser.finish(visit, _json(result))

        return endpoint

    async def consent(self, request: Request) -> Response:
        try:
            body = await read_body(request)
            try:
                call = _consent_decoder.decode(body)
            except msgspec.ValidationError as exc:
                reason, path = split_error(str(exc), "$")
                raise RequestError(400, explain(ConsentCall, reason, path), path) from None
            except msgspec.DecodeError as exc:
                raise RequestError(400, f"body is not valid JSON: {exc}", "$") from None
            source = self._authenticate(request, call.writeKey)
            if not self.rt.router.may_record(source):
                raise RequestError(
                    403,
                    f"source {source!r} may not record consent: only sources with"
                    " consent_authority = true in [[sources]] may",
                )
            for key in call.purposes:
                if not is_state_key(key):
                    raise RequestError(
                        400,
                        f"unknown purpose {key!r}: use a purpose (necessary, analytics, personalization,"
                        " advertising, marketing) or sensitive[:category], third_party:<recipient>,"
                        " cross_border:<recipient>",
                        f"$.purposes.{key}",
                    )
            if not call.purposes and call.separateConsents is None:
                raise RequestError(400, "purposes must state at least one purpose", "$.purposes")
            try:
                purposes, scopes = call_keys(call)
            except ConsentScopeError as exc:
                raise RequestError(400, exc.reason, exc.path) from None
            identifiers = self.rt.preparer.identifiers_for(
                call.userId, call.anonymousId, call.traits, "$"
            )
            received = datetime.now(UTC)
            seq, _one_id, action = await self.rt.writer.run(
                lambda c: self.rt.router.record_consent(
                    c,
                    identifiers,
                    purposes=purposes,
                    jurisdiction=call.jurisdiction,
                    given_at=call.timestamp or received,
                    received_at=received,
                    legal_basis=call.legalBasis,
                    method=call.method,
                    pi_categories=call.piCategories,
                    recipients=call_recipients(call),
                    separate=call.separate or call.separateConsents is not None,
                    scopes=scopes,
                    consenter=call.consenter,
                    notice_id=call.noticeId,
                    notice_version=call.noticeVersion,
                    signal=call.signal,
                    source=source,
                )
            )
            self.rt.metrics.consent_records.inc()
        except RequestError as exc:
            return _error(exc)
        return _json({"success": True, "record": seq, "action": action})

    async def erase(self, request: Request) -> Response:
        try:
            principal = self.guard.check(request, Permission.ERASE)
            body = await read_body(request)
            try:
                req = _erase_decoder.decode(body)
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                reason, path = split_error(str(exc), "$")
                raise RequestError(400, reason, path) from None
            identifiers = self.rt.preparer.identifiers_for(
                req.userId, req.anonymousId, req.traits, "$"
            )
            summary = await erasure.erase(self.rt, identifiers)
            people = summary.get("people")
            subject = (
                ",".join(str(p["one_id"]) for p in people) if isinstance(people, list) else None
            )
            entry = access_entry(
                principal,
                Permission.ERASE,
                "erase",
                subject=subject,
                outcome="erased" if subject else "not found",
            )
            await self.rt.writer.run(lambda c: log_access(c, entry))
        except RequestError as exc:
            return _error(exc)
        return _json(summary)

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok", "worker": self.rt.worker})

    async def readyz(self, request: Request) -> Response:
        """Ready when writes can land: the database answers, the data directory
        has room, and after a failed commit a test write succeeds."""
        try:
            await self.rt.writer.run(lambda uow: uow.ping())
        except Exception as exc:  # any failure means not ready
            return _json({"status": "not ready", "error": str(exc)}, 503)
        reason = await asyncio.to_thread(not_ready_reason, self.rt.data_dir, self.rt.writer.failing)
        if reason is not None:
            return _json({"status": "not ready", "error": reason}, 503)
        return _json({"status": "ready", "active_key": self.rt.keyring.active_kid})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi.document())

    async def metrics(self, request: Request) -> Response:
        gauges = await self.rt.writer.run(functools.partial(outbox_gauges, now=time.time()))
        m = self.rt.metrics
        for dest in self.rt.destinations:
            pending, dead, wait = gauges.get(dest.name, (0, 0, 0.0))
            m.outbox_depth.labels(dest.name).set(pending)
            m.outbox_dead.labels(dest.name).set(dead)
            m.next_attempt.labels(dest.name).set(wait)
        for kid in self.rt.keyring.lookup_kids()[1:]:
            n = await self.rt.writer.run(functools.partial(_unmigrated, self.rt, kid))
            self.rt.metrics.key_unmigrated.labels(kid).set(n)
        return Response(self.rt.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _rejection(exc: Exception, prefix: str) -> tuple[str, str]:
    """(reason, JSON path) for a message that could not be accepted. Steps
    raise InvalidMessage(reason, path); anything else is a fault of ours, logged
    by type and place only (a message could quote personal data)."""
    if isinstance(exc, InvalidMessage):
        return exc.reason, exc.path
    if type(exc) is ValueError and len(exc.args) == 2:
        return str(exc.args[0]), str(exc.args[1])
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else "?"
    log.error("message not readable: %s at %s", type(exc).__name__, where)
    return f"the message could not be read ({type(exc).__name__})", prefix


def _unmigrated(runtime: Runtime, kid: str, conn: object) -> int:
    return runtime.graph.unmigrated(kid)


def create_app(runtime: Runtime, *, forward: bool = True, deliver: bool = True) -> Starlette:
    """``forward``: this server forwards (and fans erasures out); ``deliver``:
    this process is the one that reads the outbox (one worker among several)."""
    principals = Principals.from_config(
        runtime.config.access, admin_token_env=runtime.config.server.admin_token_env
    )
    guard = Guard(principals)
    api = Api(runtime, guard)
    admin = AdminApi(runtime, guard)
    pages = BrowserEndpoints(runtime, api.browser)
    webhooks = Webhooks(runtime, api.browser.limiter)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        forwarder = runtime.make_forwarder() if forward else None
        if forwarder is not None:
            await forwarder.start(deliver=deliver)
        try:
            yield
        finally:
            if forwarder is not None:
                await forwarder.stop()

    # Starlette tries routes in order: the ingest endpoints first.
    ingest = [
        Route("/v1/batch", api.batch, methods=["POST"]),
        *(Route(f"/v1/{k}", api.single(k), methods=["POST"]) for k in openapi.SINGLE),
        Route("/v1/import", api.batch, methods=["POST"]),
        # Segment analytics-next posts to <apiHost>/<first letter of the type>
        # (its batching dispatcher to /b); RudderStack's SDK beacons to /beacon/v1/batch.
        *(Route(f"/v1/{k[0]}", api.single(k), methods=["POST"]) for k in openapi.SINGLE),
        Route("/v1/b", api.beacon, methods=["POST"]),
        Route("/beacon/v1/batch", api.beacon, methods=["POST"]),
    ]
    routes = [
        *ingest,
        *(Route(r.path, pages.preflight, methods=["OPTIONS"]) for r in ingest),
        *(
            Route(path, pages.pixel(kind), methods=["GET"])
            for kind in ("track", "page")
            for path in (f"/v1/pixel/{kind}", f"/pixel/v1/{kind}")
        ),
        Route("/v1/consentry.js", pages.tag, methods=["GET"]),
        Route("/v1/webhooks/{source}", webhooks.receive, methods=["POST"]),
        Route("/v1/consent", api.consent, methods=["POST"]),
        Route("/v1/erase", api.erase, methods=["POST"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
        *admin.routes(),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
