"""Errors raised by the collector, drawn once here.

ConsentryError                    base of every collector error
├── ConfigError                   the configuration is invalid; names the key or variable
├── UsageError                    a command-line argument is invalid; names it
├── StorageError                  the database cannot be opened or upgraded
├── DeliveryError                 a destination could not be set up or reached
├── QuarantineError               a quarantined payload cannot be decrypted
└── RequestError                  a request is refused; ``status`` is the HTTP status
    ├── BadRequest                400: the body as a whole is unusable (encoding, empty)
    │   └── InvalidMessage        400: bad input; ``reason`` and ``path`` (a JSON path)
    │       └── HeldByPlan        a tracking plan quarantines the message (kept, replayable)
    ├── Unauthorized              401: no or wrong write key / admin token
    ├── Forbidden                 403: the endpoint is off, or the origin/role may not use it
    ├── PayloadTooLarge           413: over a size limit (bytes are in the message)
    └── Unavailable               503: nothing was stored; the client should retry

The domain raises these; the HTTP boundary (``collector.http.errors``) turns a
``RequestError`` into a response in one place, and the CLI prints the message
of any ``ConsentryError``. Every message says what was wrong and how to fix it.
"""

from __future__ import annotations


class ConsentryError(Exception):
    """Base class for every collector error."""


CollectorError = ConsentryError  # the name this base had before the error tree


class ConfigError(ConsentryError):
    """The configuration is invalid; the message names the key (or the
    environment variable) and the problem."""


class UsageError(ConsentryError):
    """A command-line argument is invalid; the message names it and what is allowed."""


class StorageError(ConsentryError):
    """The database cannot be opened, upgraded or read; the message names the file."""


class DeliveryError(ConsentryError):
    """A destination is misconfigured or unreachable."""


class QuarantineError(ConsentryError):
    """A quarantined payload cannot be decrypted with this keyring (wrong key,
    or a ciphertext moved to another row)."""


class RequestError(ConsentryError):
    """A request is refused. ``status``: the HTTP status it maps to;
    ``message``: what to fix; ``path``: the JSON path at fault, if any.

    Raise the subclass that names the problem; ``RequestError(status, message,
    path)`` itself is for the rarer statuses (404, 429)."""

    status = 400

    def __init__(self, status: int, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.path = path


class _Refused(RequestError):
    """A RequestError whose status is its class's: raised as ``Cls(message, path)``."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(type(self).status, message, path)


class BadRequest(_Refused):
    """400: the request body as a whole is unusable (bad compression, empty)."""

    status = 400


class InvalidMessage(BadRequest, ValueError):
    """400: bad input. ``reason`` says what is wrong, ``path`` where
    (``$.batch[3].userId``). Inside a batch an invalid message is quarantined
    and reported in the result; anywhere else it fails the request.

    Catch it by name and read ``reason`` and ``path``. It is also a
    ``ValueError`` whose ``args`` are ``(reason, path)``, for code written
    against the tuples this error replaced; do not write new code that way."""

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(reason, path)
        self.reason = reason
        self.path: str = path
        self.args = (reason, path)

    def __str__(self) -> str:
        return self.reason


class Unauthorized(_Refused):
    """401: no credentials, or not ones this collector knows."""

    status = 401


class Forbidden(_Refused):
    """403: the endpoint is switched off in this deployment, or the caller
    (an origin, a role) may not use it."""

    status = 403


class PayloadTooLarge(_Refused):
    """413: a body or message is over its size limit; the message gives the
    limit in bytes."""

    status = 413


class Unavailable(_Refused):
    """503: nothing was stored (the database failed); the client should retry."""

    status = 503


class HeldByPlan(InvalidMessage):
    """A valid message that its source's tracking plan quarantines (action
    ``quarantine``, or ``block`` for an unplanned event). Unlike other invalid
    input it is quarantined even on a single-message endpoint (the request
    gets 200 with the message listed as rejected), so it can be replayed once
    the plan is fixed. ``violations`` are (kind, path, reason) triples;
    ``kept`` is what the quarantine keeps (JSON, with its ``type``);
    ``verdict`` is ``quarantine`` or ``block``; ``event`` the metric label."""

    def __init__(
        self,
        reason: str,
        path: str,
        *,
        violations: tuple[tuple[str, str, str], ...],
        kept: bytes,
        verdict: str,
        event: str,
    ) -> None:
        super().__init__(reason, path)
        self.violations = violations
        self.kept = kept
        self.verdict = verdict
        self.event = event
