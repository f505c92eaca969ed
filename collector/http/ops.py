"""Operations endpoints: ``/healthz``, ``/readyz``, ``/metrics`` (Prometheus
text format), ``/openapi.json``."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collector.health import not_ready_reason
from collector.http import openapi
from collector.http.errors import json_response
from collector.runtime import Runtime
from collector.storage.ports import UnitOfWork
from identity.graph import Graph


class Ops:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok", "worker": self.rt.worker})

    async def readyz(self, request: Request) -> Response:
        """Ready when writes can land: the database answers through the writer
        (a transaction of its own); with SQLite, the data directory also has
        room, and after a failed commit a test write succeeds there."""
        try:
            await self.rt.writer.run(lambda uow: uow.ping())
        except Exception as exc:  # any failure means not ready
            failing = self.rt.writer.failing
            error = str(exc) if failing is None else f"writes are failing ({failing})"
            return json_response({"status": "not ready", "error": error}, 503)
        disk = self.rt.backend.data_disk
        if disk is not None:
            reason = await asyncio.to_thread(not_ready_reason, disk, self.rt.writer.failing)
            if reason is not None:
                return json_response({"status": "not ready", "error": reason}, 503)
        return json_response({"status": "ready", "active_key": self.rt.keyring.active_kid})

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi.document())

    async def metrics(self, request: Request) -> Response:
        gauges = await self.rt.writer.run(functools.partial(_gauges, time.time()))
        m = self.rt.metrics
        for dest in self.rt.destinations:
            pending, dead, wait = gauges.get(dest.name, (0, 0, 0.0))
            m.outbox_depth.labels(dest.name).set(pending)
            m.outbox_dead.labels(dest.name).set(dead)
            m.next_attempt.labels(dest.name).set(wait)
        for kid in self.rt.keyring.lookup_kids()[1:]:
            n = await self.rt.writer.run(functools.partial(_unmigrated, self.rt.graph, kid))
            m.key_unmigrated.labels(kid).set(n)
        return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)


def _gauges(now: float, uow: UnitOfWork) -> dict[str, tuple[int, int, float]]:
    return uow.outbox.gauges(now)


def _unmigrated(graph: Graph, kid: str, _uow: object) -> int:
    return graph.unmigrated(kid)
