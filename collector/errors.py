"""Errors raised by the collector.

CollectorError
├── ConfigError        the configuration file is invalid; names the key
├── RequestError       a request is rejected; carries the HTTP status and JSON path
└── DeliveryError      a destination could not be set up or reached
"""

from __future__ import annotations


class CollectorError(Exception):
    """Base class for every collector error."""


class ConfigError(CollectorError):
    """The configuration is invalid; the message names the key and the problem."""


class RequestError(CollectorError):
    def __init__(self, status: int, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.path = path


class DeliveryError(CollectorError):
    """A destination is misconfigured or unreachable."""
