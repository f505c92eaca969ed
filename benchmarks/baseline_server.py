"""The baseline: a Starlette endpoint that only reads and msgspec-decodes a batch
(and counts the messages, for the SDK benchmark's sink)."""

from __future__ import annotations

import gzip
import sys

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sdk_python.messages import Batch, Message

_batch = msgspec.json.Decoder(Batch)
_message = msgspec.json.Decoder(Message)
RECEIVED = [0]


async def batch(request: Request) -> Response:
    body = await request.body()
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    envelope = _batch.decode(body)
    for raw in envelope.batch:
        _message.decode(raw)
    RECEIVED[0] += len(envelope.batch)
    return Response(b'{"success":true}', media_type="application/json")


async def single(request: Request) -> Response:
    _message.decode(await request.body())
    RECEIVED[0] += 1
    return Response(b'{"success":true}', media_type="application/json")


async def count(request: Request) -> Response:
    return Response(str(RECEIVED[0]).encode())


async def healthz(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/v1/batch", batch, methods=["POST"]),
        Route("/v1/track", single, methods=["POST"]),
        Route("/healthz", healthz),
        Route("/count", count),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
