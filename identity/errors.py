"""Errors raised by the identity package.

IdentityError
├── InvalidIdentifier   a value cannot be used as an identifier (junk, wrong shape)
├── KeyringError        the keyring cannot be read, decrypted or changed as asked
└── MergeRefused        linking identifiers would break a per-kind limit
"""


class IdentityError(Exception):
    """Base class for every identity error."""


class InvalidIdentifier(IdentityError):
    """The value is not a usable identifier; the message says why (never the value)."""


class KeyringError(IdentityError):
    """The keyring is missing, damaged, or the master key does not open it."""


class MergeRefused(IdentityError):
    """A merge would exceed a per-kind limit; the conflict is recorded in the graph."""
