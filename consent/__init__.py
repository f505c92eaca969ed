"""Consent: taxonomy, signal parsers, jurisdiction policies, decisions, the ledger."""

from consent.decide import (
    ConsentState,
    Decision,
    DestinationFacts,
    EventFacts,
    PurposeState,
    decide,
)
from consent.errors import ConsentError, ConsentSignalError, LedgerError, PolicyError
from consent.jurisdiction import Regime
from consent.ledger import ConsentRecord, Ledger, VerifyResult, verify
from consent.policy import Policies, Policy, load_pack
from consent.purposes import PURPOSES, TAXONOMY
from consent.scope import merge_states, notice_at_least, recipient_key
from consent.signals import Signals, read_context

__all__ = [
    "PURPOSES",
    "TAXONOMY",
    "ConsentError",
    "ConsentRecord",
    "ConsentSignalError",
    "ConsentState",
    "Decision",
    "DestinationFacts",
    "EventFacts",
    "Ledger",
    "LedgerError",
    "Policies",
    "Policy",
    "PolicyError",
    "PurposeState",
    "Regime",
    "Signals",
    "VerifyResult",
    "decide",
    "load_pack",
    "merge_states",
    "notice_at_least",
    "read_context",
    "recipient_key",
    "verify",
]
