"""``POST /v1/webhooks/<source name>``: verify, deduplicate, map, store.

Order of work, each step able to end the request:
1. the source exists and is a webhook type (404 otherwise);
2. rate limit per source and client address (429 + ``Retry-After``);
3. the platform's signature over the raw body, in constant time (401, nothing
   stored; a WooCommerce set-up ping is acknowledged, nothing stored);
4. the body is JSON (400 naming ``$``);
5. the topic is one the platform module maps (else 200, counted as
   ``unknown_topic``: an error would make the platform retry for days);
6. messages prepared (identifiers pseudonymized in memory), then one
   transaction claims the delivery id, appends the marketing-consent records,
   erases the customer for ``customers/redact`` and writes the outbox; a
   delivery id seen before stores nothing and is acknowledged (200,
   ``duplicate``).
The raw body is never stored: only the mapped, pseudonymized messages are.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from collector.config import SourceConfig
from collector.errors import ConfigError, InvalidMessage, RequestError
from collector.runtime import Runtime
from collector.sources import feed
from collector.sources.http import client_address, json_response, read_raw
from collector.sources.ratelimit import RateLimiter
from collector.sources.webhooks import PLATFORMS
from collector.sources.webhooks.base import MarketingConsent, Platform
from collector.sources.webhooks.woocommerce import is_ping
from collector.storage.ports import UnitOfWork
from identity.graph import Identifier

_encoder = msgspec.json.Encoder()


def load_secret(source: SourceConfig) -> bytes:
    """The signing secret from ``secret_env`` or a ``secret_file`` that only its
    owner may read (mode 0600 or stricter). Raises ConfigError."""
    where = f"sources.{source.name}"
    if source.secret_env:
        value = os.environ.get(source.secret_env)
        if value:
            return value.encode()
        if not source.secret_file:
            raise ConfigError(f"{where}: the environment variable {source.secret_env} is not set")
    assert source.secret_file is not None
    path = Path(source.secret_file)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"{where}: secret_file {path} cannot be read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{where}: secret_file {path} is readable by others: chmod 600 it")
    secret = path.read_bytes().strip()
    if not secret:
        raise ConfigError(f"{where}: secret_file {path} is empty")
    return secret


@dataclass(frozen=True, slots=True)
class _Hook:
    name: str
    platform: Platform
    secret: bytes


class Webhooks:
    def __init__(self, rt: Runtime, limiter: RateLimiter) -> None:
        self.rt = rt
        self.limiter = limiter
        self.hooks = {
            s.name: _Hook(s.name, PLATFORMS[s.type], load_secret(s))
            for s in rt.config.sources
            if s.type in PLATFORMS
        }
        self._claims = 0

    def _count(self, source: str, outcome: str) -> None:
        self.rt.metrics.webhooks.labels(source, outcome).inc()

    async def receive(self, request: Request) -> Response:
        name = request.path_params["source"]
        try:
            hook = self.hooks.get(name)
            if hook is None:
                raise RequestError(404, f"no webhook source named {name!r}", "$.path")
            retry = self.limiter.hit(name, client_address(request, self.rt.config))
            if retry is not None:
                self._count(name, "rate_limited")
                return json_response(
                    {"error": "too many requests", "path": "$"},
                    429,
                    headers={"Retry-After": str(retry)},
                )
            body = await read_raw(request)
            headers = {k.lower(): v for k, v in request.headers.items()}
            if not hook.platform.verify(hook.secret, body, headers):
                if hook.platform.name == "woocommerce" and is_ping(body):
                    self._count(name, "ping")
                    return json_response({"success": True, "ping": True})
                self._count(name, "bad_signature")
                raise RequestError(
                    401,
                    f"the {hook.platform.name} webhook signature is missing or does not match"
                    " the body: check the source's signing secret",
                    f"$.headers.{_signature_header(hook.platform.name)}",
                )
            return await self._deliver(hook, body, headers)
        except RequestError as exc:
            return json_response({"error": exc.message, "path": exc.path}, exc.status)

    async def _deliver(self, hook: _Hook, body: bytes, headers: Mapping[str, str]) -> Response:
        delivery = hook.platform.delivery(headers)
        delivery_id = delivery.delivery_id or "sha256:" + hashlib.sha256(body).hexdigest()
        try:
            payload = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise RequestError(400, f"body is not valid JSON: {exc}", "$") from None
        translation = hook.platform.translate(delivery, payload)
        del payload
        if not translation.known:
            self._count(hook.name, "unknown_topic")
            return json_response({"success": True, "ignored": f"topic {delivery.topic!r}"})
        received = datetime.now(UTC)
        raws = [_encoder.encode(m) for m in translation.messages]
        prepared, rejected = feed.prepare(self.rt, raws, received_at=received)
        evidence = [
            (c, self._identifiers(c.email, c.phone, c.anonymous_id)) for c in translation.consents
        ]
        erase = translation.erase
        erase_ids = self._identifiers(erase.email, erase.phone, erase.anonymous_id) if erase else []
        records = 0
        erased: dict[str, object] | None = None

        def before(uow: UnitOfWork) -> bool:
            nonlocal records, erased
            stamp = received.timestamp()
            if not uow.deliveries.claim(hook.name, delivery_id, stamp):
                return False
            self._claims += 1
            if self._claims % 1000 == 1:
                uow.deliveries.prune(stamp)
            for consent, identifiers in evidence:
                if identifiers and self.rt.router.may_record(hook.name):
                    self._record(uow, hook, consent, identifiers, received)
                    records += 1
            if erase_ids:
                erased = self.rt.router.erase(uow, erase_ids, now=received)
            return True

        tally = await feed.write(
            self.rt, hook.name, prepared, rejected, received_at=received, before=before
        )
        if tally is None:
            self._count(hook.name, "duplicate")
            return json_response({"success": True, "duplicate": True, "accepted": 0})
        self._count(hook.name, "stored" if erase is None else "erasure")
        if erased is not None and erased.get("people") and self.rt.forwarder is not None:
            await self.rt.forwarder.propagate_erasures()
        if erased is not None and erased.get("people"):
            await asyncio.to_thread(self.rt.truncate_wal)  # issue 14 §4
        if records:
            self.rt.metrics.consent_records.inc(records)
        return json_response(
            {
                "success": True,
                "accepted": tally.accepted,
                "consent_records": records,
                **({"erased": bool(erased and erased.get("people"))} if erase else {}),
                "rejected": [
                    {"index": r.index, "reason": r.reason, "path": r.path} for r in rejected
                ],
            }
        )

    def _identifiers(
        self, email: str | None, phone: str | None, anonymous_id: str | None
    ) -> list[Identifier]:
        """Pseudonymized in memory; raw values go no further."""
        traits = {k: v for k, v in (("email", email), ("phone", phone)) if v}
        try:
            return self.rt.preparer.identifiers_for(None, anonymous_id, traits, "$")
        except InvalidMessage:
            return []

    def _record(
        self,
        uow: UnitOfWork,
        hook: _Hook,
        consent: MarketingConsent,
        identifiers: list[Identifier],
        received: datetime,
    ) -> None:
        country = consent.jurisdiction_country
        jurisdiction = (
            self.rt.config.privacy.country_jurisdictions.get(country) if country else None
        )
        self.rt.router.record_consent(
            uow,
            identifiers,
            purposes={"marketing": consent.granted},
            jurisdiction=jurisdiction,
            given_at=consent.given_at or received,
            received_at=received,
            legal_basis="consent",
            method=consent.method,
            pi_categories=(),
            recipients=(),
            separate=False,
            consenter="self",
            notice_id=None,
            notice_version=None,
            signal=f"{hook.platform.name}:{consent.channel}:"
            f"{'granted' if consent.granted else 'withdrawn'}",
            source=hook.name,
        )


def _signature_header(platform: str) -> str:
    return {
        "shopify": "X-Shopify-Hmac-Sha256",
        "woocommerce": "X-WC-Webhook-Signature",
        "shoplazza": "X-Shoplazza-Hmac-Sha256",
        "shopline": "X-Shopline-Hmac-Sha256",
    }[platform]
