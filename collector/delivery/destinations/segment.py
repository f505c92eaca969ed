"""A Segment-compatible HTTP API: Segment, RudderStack, or another Consentry.

This is how a brand feeds its existing CDP through Consentry: batches in
Segment's ``/v1/batch`` format with this destination's write key (Basic auth),
at most 500 KB per request and 32 KB per message (larger messages are
dead-lettered, not truncated), gzipped unless turned off.

Deletion hook: Segment's own deletion API needs a workspace token and is out
of band, so when ``delete_hook_url`` is set an erasure POSTs
``{"type": "erasure", "destination": NAME, "oneIds": [...]}``, signed like
webhook deliveries (``X-Consentry-Signature``), for the brand to relay. Without
it the erasure is recorded as "not supported" for this destination.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import httpx

from collector.config import SegmentDestinationConfig
from collector.delivery.destinations.base import DeleteResult, SendResult
from collector.delivery.destinations.http import SIGNATURE_HEADER, batch_body, classify, sign
from collector.errors import ConfigError, DeliveryError
from sdk_python.messages import MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES


def split(messages: list[bytes], limit: int = MAX_REQUEST_BYTES - 1024) -> list[list[bytes]]:
    chunks: list[list[bytes]] = [[]]
    size = 0
    for m in messages:
        if chunks[-1] and size + len(m) + 1 > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(m)
        size += len(m) + 1
    return [c for c in chunks if c]


def _hook_secret(config: SegmentDestinationConfig, write_key: str) -> bytes:
    """The key that signs erasure requests to ``delete_hook_url``: the variable
    ``delete_hook_secret_env`` names, else the write key. A named variable that
    is unset or empty is a ``ConfigError`` naming it: an empty key would sign
    requests anyone can forge."""
    env = config.delete_hook_secret_env
    if not env:
        return write_key.encode()
    secret = os.environ.get(env)
    if not secret:
        raise ConfigError(
            f"destination {config.name}: delete_hook_secret_env names {env}, which is not set;"
            f" set {env} to the secret that signs erasure requests"
        )
    return secret.encode()


class SegmentDestination:
    config_type = SegmentDestinationConfig

    def __init__(self, config: SegmentDestinationConfig, *, data_dir: Path, **_: object) -> None:
        self.name = config.name
        key = config.write_key or (
            os.environ.get(config.write_key_env) if config.write_key_env else None
        )
        if not key:
            raise DeliveryError(f"destination {config.name}: set write_key or write_key_env")
        self._key = key
        self._url = config.url
        self._gzip = config.gzip
        self._hook = config.delete_hook_url
        self._hook_secret = _hook_secret(config, key)
        self._client = httpx.AsyncClient(timeout=config.timeout_seconds)

    async def send(self, messages: list[bytes]) -> SendResult:
        too_big = [m for m in messages if len(m) > MAX_MESSAGE_BYTES]
        if too_big:
            return SendResult(
                False, False, None, f"{len(too_big)} message(s) over Segment's 32 KB limit"
            )
        for chunk in split(messages):
            body = batch_body(chunk)
            headers = {"Content-Type": "application/json", "User-Agent": "consentry-forwarder"}
            if self._gzip:
                body = gzip.compress(body, 6)
                headers["Content-Encoding"] = "gzip"
            try:
                response = await self._client.post(
                    self._url, content=body, headers=headers, auth=(self._key, "")
                )
            except httpx.HTTPError as exc:
                return SendResult(False, True, None, f"{type(exc).__name__}: {exc}")
            result = classify(response)
            if not result.ok:
                # Chunks already accepted are redelivered on retry; the receiver
                # deduplicates by messageId, as Segment's API does.
                return result
        return SendResult(True)

    async def delete(self, one_ids: list[str]) -> DeleteResult:
        if not self._hook:
            return DeleteResult(False, None, "not supported: set delete_hook_url to relay erasures")
        body = json.dumps({"type": "erasure", "destination": self.name, "oneIds": one_ids}).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._hook_secret, body, int(time.time())),
        }
        try:
            response = await self._client.post(self._hook, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return DeleteResult(False, None, f"{type(exc).__name__}: {exc}")
        if response.status_code >= 300:
            return DeleteResult(False, None, f"hook answered HTTP {response.status_code}")
        return DeleteResult(True, None, "erasure relayed to hook")

    async def close(self) -> None:
        await self._client.aclose()
