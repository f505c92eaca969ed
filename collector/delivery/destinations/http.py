"""HTTP webhook: POST a JSON batch, signed so the receiver can trust it.

Body: ``{"batch": [...messages...], "sentAt": "<ISO time>"}``.

Header ``X-Consentry-Signature: t=<unix seconds>,v1=<hex>`` where
``hex = HMAC-SHA256(secret, "<t>." + body)``. A receiver verifies it by
recomputing the HMAC over the raw body with the shared secret, comparing in
constant time, and rejecting a ``t`` older than a few minutes (replay).
``verify_signature`` below is the reference implementation.

429 and 5xx and network errors are retried (honouring ``Retry-After``); any
other 4xx is not, and the response is kept with the dead letter.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from collector.config import HttpDestinationConfig, env_secret
from collector.delivery.destinations.base import SendResult
from collector.delivery.retry import parse_retry_after
from collector.errors import DeliveryError

SIGNATURE_HEADER = "X-Consentry-Signature"


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: bytes, body: bytes, header: str, *, now: float | None = None, tolerance: float = 300
) -> bool:
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def batch_body(messages: list[bytes]) -> bytes:
    sent = datetime.now(UTC).isoformat().encode()
    return b'{"batch":[' + b",".join(messages) + b'],"sentAt":"' + sent + b'"}'


def classify(response: httpx.Response) -> SendResult:
    if response.status_code < 300:
        return SendResult(True)
    detail = f"HTTP {response.status_code}: {response.text[:500]}"
    if response.status_code == 429 or response.status_code >= 500:
        return SendResult(
            False, True, parse_retry_after(response.headers.get("retry-after")), detail
        )
    return SendResult(False, False, None, detail)


class HttpDestination:
    config_type = HttpDestinationConfig

    def __init__(self, config: HttpDestinationConfig, *, data_dir: Path, **_: object) -> None:
        self.name = config.name
        secret = env_secret(config.secret, config.secret_env)
        if secret is None:
            raise DeliveryError(
                f"destination {config.name}: set secret or secret_env so deliveries can be signed"
            )
        self._secret = secret.encode()
        self._url = config.url
        self._headers = dict(config.headers)
        self._client = httpx.AsyncClient(timeout=config.timeout_seconds)

    async def send(self, messages: list[bytes]) -> SendResult:
        body = batch_body(messages)
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
            "User-Agent": "consentry-forwarder",
        }
        try:
            response = await self._client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(False, True, None, f"{type(exc).__name__}: {exc}")
        return classify(response)

    async def close(self) -> None:
        await self._client.aclose()
