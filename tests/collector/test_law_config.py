"""Issue 20's configuration keys: destination legal facts, the country map and
notice versions are checked at load time, each error naming the key."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest

from collector.config import parse
from collector.errors import ConfigError
from collector.event_facts import SignalClock
from collector.pipeline.route import destination_facts
from collector.runtime import build_policies
from consent import tcf
from sdk_python.messages import Track

# tests/consent/test_tcf.py's BITFIELD vector (a TCF v2 string).
TC = "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA"

BASE = """
[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics", "necessary", "marketing"]
region = "DE"
"""


def test_legal_facts_are_read_into_destination_facts() -> None:
    config = parse(
        BASE + 'legal_bases = { analytics = "legitimate_interests", necessary = "contract",'
        ' marketing = "soft_opt_in" }\n'
        'transfer = { GDPR = "scc", PIPL = "contract_necessity" }\n'
        'ccpa_role = "contractor"\nmin_notice_version = "5"\n'
        '[privacy]\nmin_notice_versions = { analytics = "3" }\n'
    )
    [dest] = config.effective_destinations()
    facts = destination_facts(dest, config.privacy.min_notice_versions)
    assert facts.legal_bases["analytics"] == "legitimate_interests"
    assert facts.transfer == {"GDPR": "scc", "PIPL": "contract_necessity"}
    assert facts.role == "contractor"
    assert facts.min_notice == {"analytics": "3", "*": "5"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('legal_bases = { analytics = "contract" }', "legal_bases.analytics: contract only"),
        ('legal_bases = { necessary = "legitimate_interests" }', "legal_bases.necessary"),
        ('legal_bases = { analytics = "soft_opt_in" }', "soft_opt_in is for marketing"),
        ('legal_bases = { shopping = "consent" }', "legal_bases.shopping: unknown purpose"),
        (
            'legal_bases = { analytics = "vibes" }',
            "destinations[0].legal_bases[...]: Invalid enum value",
        ),
        ('transfer = { GDPR = "handshake" }', "destinations[0].transfer[...]: Invalid enum value"),
        ('ccpa_role = "friend"', "destinations[0].ccpa_role"),
    ],
)
def test_bad_legal_facts_name_the_key(extra: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(BASE + extra + "\n")


def test_country_map_naming_no_pack_is_a_config_error() -> None:
    config = parse('[privacy]\ncountry_jurisdictions = { JP = "APPI" }\n')
    with pytest.raises(ConfigError, match="APPI"):
        build_policies(config)
    ok = build_policies(parse('[privacy]\ncountry_jurisdictions = { CH = "GDPR" }\n'))
    assert ok.resolve(None, "CH").name == "GDPR"
    assert ok.resolve(None, "CN").name == "PIPL"  # the built-in map stays


def test_signals_are_timed_by_the_cmp_when_it_says_when() -> None:
    """A TCF string's LastUpdated orders its signal (the event may replay an old
    banner state); otherwise the event's own time; never later than arrival."""
    base = tcf.decode(TC)
    two_days_ago = datetime(2026, 11, 27, tzinfo=UTC)
    old_tc = tcf.encode(dataclasses.replace(base, last_updated=two_days_ago))
    now = datetime(2026, 11, 29, 12, tzinfo=UTC)
    clock = SignalClock()
    msg = Track(event="x", userId="u", timestamp=now - timedelta(minutes=1))
    assert clock(msg, now, {"consent": {"tcString": old_tc}}) == two_days_ago.timestamp()
    assert clock(msg, now, {}) == (now - timedelta(minutes=1)).timestamp()
    ahead = Track(event="x", userId="u", timestamp=now + timedelta(days=1))
    assert clock(ahead, now, {}) == now.timestamp()
    assert clock(msg, now, {"consent": {"tcString": "%%%"}}) == msg.timestamp.timestamp()  # type: ignore[union-attr]
