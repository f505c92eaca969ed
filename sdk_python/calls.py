"""Segment's calls (``track``, ``identify``, ``group``, ``alias``, ``page``,
``screen``) and the ``consent`` body, over an ``_enqueue`` each client defines.

Argument order and names are those of ``segment.analytics.Client``; every
identifier may be a string or a number (sent as its decimal string).
"""

from __future__ import annotations

import gzip as gzip_mod
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sdk_python.encoding import (
    VERSION,
    Build,
    Builder,
    encoder,
    id_string,
    now,
    plain,
)
from sdk_python.messages import (
    Alias,
    ConsentCall,
    Group,
    Identify,
    Page,
    Recipient,
    Screen,
    Track,
)

log = logging.getLogger("consentry.sdk")
DropHandler = Callable[[str, int], None]
Id = str | int | None


class Calls:
    """Segment's call signatures over ``_enqueue``, and what both clients share."""

    _b: Builder
    gzip: bool
    dropped: int
    on_drop: DropHandler | None

    def _drop(self, reason: str, n: int) -> None:
        self.dropped += n
        if self.on_drop is not None:
            try:
                self.on_drop(reason, n)
            except Exception:
                log.exception("on_drop callback failed")

    def _wire(self, body: bytes) -> tuple[bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json", "User-Agent": f"consentry-python/{VERSION}"}
        if self.gzip:
            body = gzip_mod.compress(body, 1)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    def _enqueue(
        self,
        build: Build,
        context: Mapping[str, Any] | None,
        timestamp: datetime | None,
        message_id: str | None,
    ) -> Any:
        raise NotImplementedError

    def track(
        self,
        user_id: Id = None,
        event: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: Id = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Any:
        """Segment ``track``: ``event`` (name) with ``properties``; returns
        ``(queued, message)`` (``message`` as sent, or None when it could not be
        built). Ids may be strings or numbers."""
        b = self._b
        return self._enqueue(
            lambda c, t, m: Track(
                event=event or "",
                properties=plain(properties),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=plain(integrations),
            ),
            context,
            timestamp,
            message_id,
        )

    def identify(
        self,
        user_id: Id = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: Id = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Any:
        """Segment ``identify``: ``traits`` of the person (``email``/``phone``
        pseudonymized locally with ``pseudonym_key``); returns ``(queued, message)``."""
        b = self._b
        return self._enqueue(
            lambda c, t, m: Identify(
                traits=b.traits(traits),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=plain(integrations),
            ),
            context,
            timestamp,
            message_id,
        )

    def group(
        self,
        user_id: Id = None,
        group_id: Id = None,
        traits: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: Id = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Any:
        """Segment ``group``: ``group_id`` (string or number) and its ``traits``;
        returns ``(queued, message)``."""
        b = self._b
        return self._enqueue(
            lambda c, t, m: Group(
                groupId=id_string(group_id) or "",
                traits=plain(traits),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=plain(integrations),
            ),
            context,
            timestamp,
            message_id,
        )

    def alias(
        self,
        previous_id: Id = None,
        user_id: Id = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Any:
        """Segment ``alias``: ``previous_id`` becomes ``user_id`` (both strings or
        numbers); returns ``(queued, message)``."""
        b = self._b
        return self._enqueue(
            lambda c, t, m: Alias(
                previousId=b.ident("anonymous_id", previous_id) or "",
                userId=b.ident("user_id", user_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=plain(integrations),
            ),
            context,
            timestamp,
            message_id,
        )

    def page(
        self,
        user_id: Id = None,
        category: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: Id = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Any:
        """Segment ``page``: ``category``, ``name`` and ``properties`` of a page
        view; returns ``(queued, message)``."""
        b = self._b
        return self._enqueue(
            lambda c, t, m: Page(
                name=name,
                category=category,
                properties=plain(properties),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=plain(integrations),
            ),
            context,
            timestamp,
            message_id,
        )

    def screen(
        self,
        user_id: Id = None,
        category: str | None = None,
        name: str | None = None,
        properties: Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
        timestamp: datetime | None = None,
        anonymous_id: Id = None,
        integrations: Mapping[str, Any] | None = None,
        message_id: str | None = None,
    ) -> Any:
        """Segment ``screen``: the same for an app screen; returns
        ``(queued, message)``."""
        b = self._b
        return self._enqueue(
            lambda c, t, m: Screen(
                name=name,
                category=category,
                properties=plain(properties),
                userId=b.ident("user_id", user_id),
                anonymousId=b.ident("anonymous_id", anonymous_id),
                context=c,
                timestamp=t,
                messageId=m,
                integrations=plain(integrations),
            ),
            context,
            timestamp,
            message_id,
        )

    def _consent_body(
        self, user_id: Id, purposes: Mapping[str, bool | str] | None, kw: dict[str, Any]
    ) -> bytes:
        b = self._b
        call = ConsentCall(
            purposes={
                k: ("granted" if v is True or v == "granted" else "denied")
                for k, v in (purposes or {}).items()
            },
            userId=b.ident("user_id", user_id),
            anonymousId=b.ident("anonymous_id", kw.get("anonymous_id")),
            traits=b.traits(kw.get("traits")),
            jurisdiction=kw.get("jurisdiction"),
            legalBasis=kw.get("legal_basis", "consent"),
            piCategories=list(kw.get("pi_categories") or []),
            recipients=[Recipient(name=n, region=r) for n, r in (kw.get("recipients") or [])],
            separate=kw.get("separate", False),
            consenter=kw.get("consenter", "self"),
            noticeId=kw.get("notice_id"),
            noticeVersion=kw.get("notice_version"),
            method=kw.get("method", "api"),
            signal=kw.get("signal"),
            separateConsents=kw.get("separate_consents"),
            timestamp=kw.get("timestamp") or now(),
            messageId=str(uuid.uuid4()),
        )
        return encoder.encode(call)
