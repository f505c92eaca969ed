"""The baseline: a Starlette endpoint that only reads and msgspec-decodes a batch."""

from __future__ import annotations

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


async def batch(request: Request) -> Response:
    body = await request.body()
    envelope = _batch.decode(body)
    for raw in envelope.batch:
        _message.decode(raw)
    return Response(b'{"success":true}', media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(
    routes=[
        Route("/v1/batch", batch, methods=["POST"]),
        Route("/v1/track", batch, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
