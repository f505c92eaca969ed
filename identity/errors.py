"""Errors raised by the identity package.

IdentityError
├── InvalidIdentifier   a value cannot be used as an identifier (junk, wrong shape)
└── KeyringError        the keyring cannot be read, decrypted or changed as asked

A merge that would break a per-kind limit is not an error: the graph refuses
it, records the conflict and returns it in the Resolution.
"""


class IdentityError(Exception):
    """Base class for every identity error."""


class InvalidIdentifier(IdentityError):
    """The value is not a usable identifier; the message says why (never the value)."""


class KeyringError(IdentityError):
    """The keyring is missing, damaged, or the master key does not open it."""
