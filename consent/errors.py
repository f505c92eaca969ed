"""Errors raised by the consent package.

ConsentError
├── ConsentSignalError   a consent signal (TCF, GPP, context.consent) is malformed
├── ConsentScopeError    a consent call's keys, recipients or regions do not fit
├── PolicyError          a jurisdiction pack or mapping table is invalid
└── LedgerError          the ledger cannot be appended to or fails verification
"""


class ConsentError(Exception):
    """Base class for every consent error."""


class ConsentSignalError(ConsentError):
    """A consent signal could not be read; the message says where and why."""


class ConsentScopeError(ConsentError):
    """A consent call cannot be recorded as given; ``path`` is the JSON path."""

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path = path


class PolicyError(ConsentError):
    """A policy pack or mapping is invalid; the message names the key."""


class LedgerError(ConsentError):
    """The ledger is damaged or cannot be written."""
