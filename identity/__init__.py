"""Identity: normalization, keyed pseudonyms, the keyring and the OneID graph."""

from identity.errors import IdentityError, InvalidIdentifier, KeyringError
from identity.graph import Conflict, Graph, Identifier, MergeRecord, OneId, Resolution
from identity.keyring import Keyring, KeyVersion, load_master_key, new_master_key
from identity.normalize import BUILTIN_KINDS, NormalizeOptions, normalize
from identity.pseudonym import INTERNAL, Pseudonymizer, looks_like_pseudonym, parse_pseudonym

__all__ = [
    "BUILTIN_KINDS",
    "INTERNAL",
    "Conflict",
    "Graph",
    "Identifier",
    "IdentityError",
    "InvalidIdentifier",
    "KeyVersion",
    "Keyring",
    "KeyringError",
    "MergeRecord",
    "NormalizeOptions",
    "OneId",
    "Pseudonymizer",
    "Resolution",
    "load_master_key",
    "looks_like_pseudonym",
    "new_master_key",
    "normalize",
    "parse_pseudonym",
]
