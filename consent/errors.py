"""Errors raised by the consent package.

ConsentError
├── ConsentSignalError   a consent signal (TCF, GPP, context.consent) is malformed
├── PolicyError          a jurisdiction pack or mapping table is invalid
└── LedgerError          the ledger cannot be appended to or fails verification
"""


class ConsentError(Exception):
    """Base class for every consent error."""


class ConsentSignalError(ConsentError):
    """A consent signal could not be read; the message says where and why."""


class PolicyError(ConsentError):
    """A policy pack or mapping is invalid; the message names the key."""


class LedgerError(ConsentError):
    """The ledger is damaged or cannot be written."""
