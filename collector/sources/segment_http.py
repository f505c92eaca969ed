"""The Segment-compatible HTTP Tracking API (the ``/v1`` source).

``POST /v1/batch`` and ``/v1/import`` (a batch), ``/v1/<type>`` for one
message (track, identify, page, screen, group, alias; analytics-next's
``/v1/t``, ``/v1/p`` ...), the beacon paths (``/v1/b``,
``/beacon/v1/batch``), and ``POST /v1/consent`` (explicit consent calls).
Each endpoint reads: decode, call the domain (``Pipeline.ingest`` or the
router's consent call), encode. Write keys come as the Basic auth user name,
as ``writeKey`` in the body or, for browsers, in the query string. Browser
requests (an ``Origin``, a beacon) get CORS and the first-party cookie
(collector.sources.browser); errors become responses in collector.http.errors.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from collector.consent_calls import call_keys, call_recipients
from collector.errors import Forbidden, InvalidMessage, Unauthorized
from collector.http import openapi
from collector.http.allowed import explain
from collector.http.envelope import read_batch, read_single
from collector.http.errors import json_response
from collector.http.request import basic_user, read_body
from collector.limits import check_batch_size
from collector.pipeline.decode import split_error
from collector.pipeline.pipeline import RawMessage, RequestFacts
from collector.pipeline.warnings import InputWarning
from collector.runtime import Runtime
from collector.sources.browser import Browser, Visit
from collector.sources.cookies import request_consent
from collector.sources.wechat import strip_session_keys
from consent.errors import ConsentScopeError
from consent.purposes import is_state_key
from sdk_python.messages import ConsentCall

log = logging.getLogger("consentry.collector")
_consent_decoder = msgspec.json.Decoder(ConsentCall)


class _KeyOnly(msgspec.Struct):
    writeKey: str | None = None


_key_decoder = msgspec.json.Decoder(_KeyOnly)


class SegmentHttpSource:
    """The ``/v1`` API over a runtime's pipeline; ``browser`` adds CORS, the
    first-party cookie and rate limits for requests from web pages."""

    def __init__(self, runtime: Runtime, browser: Browser) -> None:
        self.rt = runtime
        self.browser = browser

    def routes(self) -> list[Route]:
        # Starlette tries routes in order: the ingest endpoints first.
        return [
            Route("/v1/batch", self.batch, methods=["POST"]),
            *(Route(f"/v1/{k}", self.single(k), methods=["POST"]) for k in openapi.SINGLE),
            Route("/v1/import", self.batch, methods=["POST"]),
            # Segment analytics-next posts to <apiHost>/<first letter of the type>
            # (its batching dispatcher to /b); RudderStack's SDK beacons to /beacon/v1/batch.
            *(Route(f"/v1/{k[0]}", self.single(k), methods=["POST"]) for k in openapi.SINGLE),
            Route("/v1/b", self.beacon, methods=["POST"]),
            Route("/beacon/v1/batch", self.beacon, methods=["POST"]),
        ]

    def consent_routes(self) -> Sequence[BaseRoute]:
        return [Route("/v1/consent", self.consent, methods=["POST"])]

    def _authenticate(self, request: Request, body_key: str | None) -> str:
        source = self.rt.sources.authenticate(
            basic_user(request) or body_key or request.query_params.get("writeKey")
        )
        if source is None:
            raise Unauthorized(
                "unknown or missing write key: send it as the Basic auth user name or as writeKey"
            )
        return source

    def _visit(self, request: Request, source: str, *, always: bool = False) -> Visit | None:
        """A browser request's visit (None for a server), kept on the request so
        an error response carries its headers too."""
        visit = self.browser.begin(request, source, always=always)
        request.state.visit = visit
        return visit

    def _facts(self, request: Request, visit: Visit | None, **given: Any) -> RequestFacts:
        # A browser visit has read the CMP cookies already (its cookie decision needs them).
        if visit is not None:
            consent, warnings = visit.facts.cmp_consent, visit.facts.cmp_warnings
        else:
            consent, warnings = request_consent(request.headers.getlist("cookie"))
        return RequestFacts(consent=consent, consent_warnings=warnings, **given)

    async def batch(self, request: Request, *, beacon: bool = False) -> Response:
        body = await read_body(request)
        parsed = read_batch(body, max_depth=self.rt.config.ingest.max_depth)
        source = self._authenticate(request, parsed.write_key)
        check_batch_size(len(parsed.messages), self.rt.config.server.max_batch_messages)
        visit = self._visit(request, source, always=beacon)
        raws, stripped = self._prepare_items(visit, source, parsed.messages, False)
        result = await self.rt.pipeline.ingest(
            source,
            [RawMessage(i, raw) for i, raw in enumerate(raws)],
            received_at=datetime.now(UTC),
            request_facts=self._facts(
                request,
                visit,
                context=parsed.context,
                sent_at=parsed.sent_at,
                integrations=parsed.integrations,
                warnings=parsed.warnings + stripped,
            ),
        )
        return self.browser.finish(visit, json_response(result))

    async def beacon(self, request: Request) -> Response:
        return await self.batch(request, beacon=True)

    def single(self, kind: str) -> Any:
        async def endpoint(request: Request) -> Response:
            body, warnings = read_single(await read_body(request))
            key = None
            if basic_user(request) is None:
                try:
                    key = _key_decoder.decode(body).writeKey
                except (msgspec.ValidationError, RecursionError):
                    pass
                except msgspec.DecodeError as exc:
                    raise InvalidMessage(f"body is not valid JSON: {exc}", "$") from None
            source = self._authenticate(request, key)
            visit = self._visit(request, source)
            (body,), stripped = self._prepare_items(visit, source, [body], True)
            result = await self.rt.pipeline.ingest(
                source,
                [RawMessage(0, body, kind)],
                received_at=datetime.now(UTC),
                request_facts=self._facts(request, visit, warnings=warnings + stripped),
            )
            return self.browser.finish(visit, json_response(result))

        return endpoint

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

    async def consent(self, request: Request) -> Response:
        call = _decode_consent_call(await read_body(request))
        source = self._authenticate(request, call.writeKey)
        if not self.rt.router.may_record(source):
            raise Forbidden(
                f"source {source!r} may not record consent: only sources with"
                " consent_authority = true in [[sources]] may"
            )
        _check_purposes(call)
        try:
            purposes, scopes = call_keys(call)
        except ConsentScopeError as exc:
            raise InvalidMessage(exc.reason, exc.path) from None
        identifiers = self.rt.preparer.identifiers_for(
            call.userId, call.anonymousId, call.traits, "$"
        )
        received = datetime.now(UTC)
        seq, _one_id, action = await self.rt.writer.run(
            lambda uow: self.rt.router.record_consent(
                uow,
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
        return json_response({"success": True, "record": seq, "action": action})


def _decode_consent_call(body: bytes) -> ConsentCall:
    """A ``POST /v1/consent`` body; raises InvalidMessage naming the path."""
    try:
        call = _consent_decoder.decode(body)
    except msgspec.ValidationError as exc:
        reason, path = split_error(str(exc), "$")
        raise InvalidMessage(explain(ConsentCall, reason, path), path) from None
    except msgspec.DecodeError as exc:
        raise InvalidMessage(f"body is not valid JSON: {exc}", "$") from None
    return call


def _check_purposes(call: ConsentCall) -> None:
    """Every purpose key is one we know; at least one is stated."""
    for key in call.purposes:
        if not is_state_key(key):
            raise InvalidMessage(
                f"unknown purpose {key!r}: use a purpose (necessary, analytics, personalization,"
                " advertising, marketing) or sensitive[:category], third_party:<recipient>,"
                " cross_border:<recipient>",
                f"$.purposes.{key}",
            )
    if not call.purposes and call.separateConsents is None:
        raise InvalidMessage("purposes must state at least one purpose", "$.purposes")
