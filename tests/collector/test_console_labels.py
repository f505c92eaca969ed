"""The console's plain-language labels: every code a decision or a delivery
can carry reads as words, and the why page's views use them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from collector.audit.why import Explanation
from collector.console import labels
from collector.console.why import decision_view, record_view
from collector.storage.ports import DecisionRecord, DeliveryOutcome
from consent.ledger import ConsentRecord
from consent.state import LAWFUL_BASES

CODES = list(labels._WORDS)


def test_every_outcome_basis_and_delivery_state_has_words() -> None:
    for code in ("allow", "deny", "no_decision"):
        assert "_" not in labels.label(labels.OUTCOME_LABELS, code)
    for code in LAWFUL_BASES:
        assert "_" not in labels.basis(code)
    for code in ("delivered", "dropped", "dead", "purged", "pending"):
        assert "_" not in labels.label(labels.DELIVERY_LABELS, code)
    assert labels.basis("consent+legitimate_interests") == (
        "the person's consent (GDPR Art. 6(1)(a)); legitimate interests (GDPR Art. 6(1)(f))"
    )
    assert labels.law("GDPR+PIPL") == "EU/UK GDPR and China (PIPL)"
    assert labels.label(labels.METHOD_LABELS, "brand_new_method") == "brand new method"
    assert labels.label(labels.METHOD_LABELS, None) == "not recorded"


@given(
    st.lists(
        st.one_of(st.sampled_from(CODES), st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
        max_size=12,
    )
)
def test_plain_leaves_no_code_in_a_reason(words: list[str]) -> None:
    text = labels.plain(": ".join(words))
    for code in CODES:
        assert code not in text.split(": ")


def test_when_reads_seconds_iso_and_text() -> None:
    assert labels.when(0.0) == "1970-01-01 00:00 UTC"
    assert labels.when("2026-11-29T12:42:24.017824+00:00") == "2026-11-29 12:42 UTC"
    assert labels.when("2026-11-29T12:42:24Z") == "2026-11-29 12:42 UTC"
    assert labels.when("soon") == "soon" and labels.when(None) == "not recorded"


def _record(**changes: object) -> ConsentRecord:
    at = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    fields: dict[str, object] = {
        "seq": 4,
        "action": "grant",
        "one_id": 7,
        "subject": "p",
        "jurisdiction": "GDPR",
        "legal_basis": "consent",
        "purposes": {"analytics": True, "advertising": False},
        "method": "banner_accept",
        "given_at": at,
        "received_at": at,
        "notice_id": "privacy",
        "notice_version": "3.1",
        **changes,
    }
    return ConsentRecord(**fields)  # type: ignore[arg-type]


def test_record_and_decision_views_are_words() -> None:
    view = record_view(_record())
    assert view.choice == "Gave consent" and view.notice == "privacy notice “privacy” version 3.1"
    assert view.purposes == [
        ("Advertising (advertising)", "no"),
        ("Measuring how the service is used (analytics)", "yes"),
    ]
    assert view.how == "accepted in the consent banner" and view.signal == "none recorded"
    assert record_view(_record(notice_version=None)).notice == "no notice version was recorded"
    assert record_view(_record(signal="C" * 200)).signal.endswith("…")

    decision = DecisionRecord(
        "lake", "no_decision", "GDPR", "none", ("analytics: pack has no rule",), ()
    )
    e = Explanation("m1", "lake", 0.0, decision, [])
    shown = decision_view(e)
    assert not shown.allowed and "_" not in shown.outcome and shown.delivery is None

    allowed = DecisionRecord(
        "lake", "allow", "GDPR", "legitimate_interests", ("analytics: legitimate_interests",), ()
    )
    dead = DeliveryOutcome("dead", None, 12, error="HTTP 500")
    shown = decision_view(Explanation("m1", "lake", 0.0, allowed, [], dead))
    assert shown.basis == "legitimate interests (GDPR Art. 6(1)(f))"
    assert shown.reasons == ["analytics: legitimate interests"]
    assert shown.delivery == "Given up after repeated failures (12 attempts; last error: HTTP 500)."
    never = decision_view(Explanation("m1", "lake", 0.0, allowed, []))
    assert never.delivery is not None and never.delivery.startswith("Never queued")


def test_periods_read_as_words() -> None:
    assert labels.period(1, "months") == "1 month"
    assert labels.period(2, "months") == "2 months"
    assert labels.period(15, "working_days") == "15 working days"
    assert labels.period(1, "days") == "1 day"
