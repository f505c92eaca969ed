"""A merge never invents a denial, and never widens consent (issue 14 §2), over
random clusters and records in a real SQLite ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.storage.sqlite.connection import open_database
from consent.ledger import Ledger

T0 = datetime(2026, 11, 1, tzinfo=UTC)
KEYS = [
    "analytics",
    "advertising",
    "marketing",
    "sensitive:health",
    "third_party:Ads CN@CN",
    "cross_border:Brand GmbH@DE",
]

# Per cluster: a history of records, each setting some keys.
records = st.lists(st.dictionaries(st.sampled_from(KEYS), st.booleans(), min_size=1), max_size=4)
clusters = st.lists(records, min_size=2, max_size=4)


@settings(max_examples=150, deadline=None)
@given(clusters)
def test_merged_state_is_exactly_what_the_records_imply(
    histories: list[list[dict[str, bool]]],
) -> None:
    conn = open_database(":memory:")
    ledger = Ledger(conn.ledger_store)
    at = T0
    latest: list[dict[str, bool]] = []
    for one_id, history in enumerate(histories, start=1):
        final: dict[str, bool] = {}
        for purposes in history:
            at += timedelta(seconds=1)
            ledger.append(
                one_id=one_id,
                subject=f"s{one_id}",
                purposes=purposes,
                jurisdiction="PIPL",
                method="api",
                given_at=at,
                received_at=at,
            )
            final.update(purposes)
        latest.append(final)
    absorbed = list(range(2, len(histories) + 1))
    record = ledger.merge(1, absorbed, subject="s1", jurisdiction="PIPL", now=at)
    merged = {k: e.granted for k, e in ledger.state(1).purposes.items()}
    keys = {k for side in latest for k in side}
    if not keys:
        assert record is None and merged == {}
        return
    assert record is not None
    for key in KEYS:
        said = [side[key] for side in latest if key in side]
        if not said:
            assert key not in merged  # no record anywhere stays no record
        elif False in said:
            assert merged[key] is False  # an explicit denial or withdrawal on any side wins
        else:
            assert merged[key] is True  # grants with no record elsewhere stay granted
        if said:
            sides = record.contributions[key]
            assert [s.one_id for s in sides] == [1, *absorbed]
            assert [s.granted for s in sides] == [side.get(key) for side in latest]
    for other in absorbed:
        assert ledger.state(other).purposes == {}


def test_login_keeps_consent() -> None:
    """Issue 14's story: consent as login-user, a consent-less anonymous track,
    then identify merges the two; analytics stays granted."""
    conn = open_database(":memory:")
    ledger = Ledger(conn.ledger_store)
    ledger.append(
        one_id=1,
        subject="login-user",
        purposes={"analytics": True},
        jurisdiction="GDPR",
        method="api",
        given_at=T0,
        received_at=T0,
    )
    assert ledger.merge(1, [2], subject="login-user", jurisdiction="GDPR", now=T0) is not None
    entry = ledger.state(1).get("analytics")
    assert entry is not None and entry.granted and entry.record_id == 1
