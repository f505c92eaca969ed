"""Console sessions: who is signed in, for how long, and CSRF.

The cookie holds ``{"u": name, "r": role, "c": csrf}`` signed with
itsdangerous (HMAC-SHA1 over a key derived from the data directory's master
key, so every worker accepts it); it is re-issued on every page, and one
idle longer than ``[access] session_idle_minutes`` is refused. ``HttpOnly``,
``SameSite=Strict``, ``Path=/console``; ``Secure`` when served over HTTPS.
CSRF: every form carries the session's token, compared in constant time.
Logins are limited per client address and per user name (``limits``, moving
window of 15 minutes, ``[access] login_attempts``), counted in each worker
process on its own: with N workers an attacker gets up to N times as many.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request
from starlette.responses import Response

from collector.access.roles import Role

COOKIE = "consentry_console"


@dataclass(frozen=True)
class Session:
    name: str
    role: Role
    csrf: str


class Sessions:
    def __init__(self, master_key: bytes, *, idle_minutes: float, login_attempts: int) -> None:
        key = hmac.new(master_key, b"consentry console session v1", hashlib.sha256).hexdigest()
        self._serializer = URLSafeTimedSerializer(key, salt="console")
        self._idle = max(1, round(idle_minutes * 60))  # whole seconds, as itsdangerous counts
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._limit = parse(f"{login_attempts}/15 minutes")

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=self._idle)
        except BadSignature:  # also SignatureExpired: idle too long
            return None
        return Session(data["u"], data["r"], data["c"])

    def start(self, name: str, role: Role) -> Session:
        return Session(name, role, secrets.token_urlsafe(24))

    def write(self, response: Response, session: Session, request: Request) -> None:
        value = self._serializer.dumps({"u": session.name, "r": session.role, "c": session.csrf})
        response.set_cookie(
            COOKIE,
            value,
            max_age=self._idle,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def end(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/console")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(session.csrf, token)

    def may_try_login(self, address: str, name: str) -> bool:
        """Count one attempt; False when the address or the name is over its limit."""
        ok_ip = self._limiter.hit(self._limit, "ip", address)
        ok_user = self._limiter.hit(self._limit, "user", name)
        return ok_ip and ok_user
