from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consent import ConsentState, DestinationFacts, EventFacts, Policies, PurposeState, decide
from consent.purposes import PURPOSES

P = Policies.builtin()
GDPR, PIPL, CCPA = P.get("GDPR"), P.get("PIPL"), P.get("CCPA")
LAKE = DestinationFacts("lake", ("analytics",), region="DE", recipient="Brand GmbH")
ADS = DestinationFacts("ads", ("advertising",), region="US", recipient="Ads Inc", third_party=True)


def state(**purposes: bool) -> ConsentState:
    return ConsentState(
        {k.replace("__", ":"): PurposeState(v, i + 1) for i, (k, v) in enumerate(purposes.items())}
    )


def test_gdpr_default_deny_and_grant_with_record() -> None:
    d = decide(state(), EventFacts(), LAKE, GDPR)
    assert d.outcome == "deny" and "no consent on record" in d.reasons[0]
    d = decide(state(analytics=True), EventFacts(), LAKE, GDPR)
    assert d.allowed and d.record_ids == (1,) and d.legal_basis == "consent"
    d = decide(state(analytics=False), EventFacts(), LAKE, GDPR)
    assert not d.allowed and "denied by record 1" in d.reasons[0]


def test_destination_without_purposes_receives_nothing() -> None:
    d = decide(state(analytics=True), EventFacts(), DestinationFacts("x", ()), GDPR)
    assert d.outcome == "no_decision" and not d.allowed


def test_necessary_needs_no_consent() -> None:
    d = decide(state(), EventFacts(), DestinationFacts("ops", ("necessary",)), GDPR)
    assert d.allowed and d.legal_basis == "contract"


def test_ccpa_allows_until_opt_out_and_gpc_opts_out_of_sale() -> None:
    assert decide(state(), EventFacts(), ADS, CCPA).allowed
    d = decide(state(), EventFacts(gpc=True), ADS, CCPA)
    assert not d.allowed and "Global Privacy Control" in d.reasons[0]
    assert decide(
        state(), EventFacts(gpc=True), DestinationFacts("lake", ("analytics",)), CCPA
    ).allowed
    assert not decide(state(advertising=False), EventFacts(), ADS, CCPA).allowed


def test_ccpa_us_section_opt_outs_deny_sale_and_name_section_and_field() -> None:
    facts = EventFacts(opt_outs=("gpp.usca.SaleOptOut", "gpp.usva (unreadable)"))
    d = decide(state(), facts, ADS, CCPA)
    assert not d.allowed
    # (ADS is a third party, so the sale to it is named first: §1798.140(ad))
    assert d.reasons[1:] == (
        "advertising: opted out by gpp.usca.SaleOptOut, gpp.usva (unreadable)",
    )
    marketing = DestinationFacts("crm", ("marketing",))
    assert not decide(state(), facts, marketing, CCPA).allowed
    # Opt-outs of sale/sharing say nothing about analytics.
    assert decide(state(), facts, DestinationFacts("lake", ("analytics",)), CCPA).allowed
    # A recorded opt-out and the event's own are both cited.
    d = decide(state(advertising=False), facts, ADS, CCPA)
    own = [r.split(" by ")[0] for r in d.reasons if r.startswith("advertising")]
    assert own == ["advertising: opted out"] * 2


@given(st.lists(st.sampled_from(["gpp.usca.SaleOptOut", "usPrivacy.OptOutSale"]), max_size=2))
def test_a_us_opt_out_never_turns_deny_into_allow_or_allows_advertising(
    opt_outs: list[str],
) -> None:
    facts = EventFacts(opt_outs=tuple(opt_outs))
    for pack in (GDPR, PIPL, CCPA):
        for st_ in (state(), state(advertising=True), state(advertising=False)):
            with_opt_out = decide(st_, facts, ADS, pack)
            without = decide(st_, EventFacts(), ADS, pack)
            assert not (with_opt_out.allowed and not without.allowed)
            if opt_outs and pack is CCPA:
                assert not with_opt_out.allowed


def test_pipl_separate_consents() -> None:
    cn_lake = DestinationFacts("lake", ("analytics",), region="CN", recipient="Brand Shanghai")
    assert decide(state(analytics=True), EventFacts(), cn_lake, PIPL).allowed
    # cross-border transfer needs a mechanism (Art. 38) and its own consent per
    # recipient and region (Art. 39)
    de = DestinationFacts(
        "lake",
        ("analytics",),
        region="DE",
        recipient="Brand GmbH",
        transfer={"PIPL": "standard_contract"},
    )
    d = decide(state(analytics=True), EventFacts(), de, PIPL)
    assert not d.allowed and any("Brand GmbH in DE" in r for r in d.reasons)
    legacy = ConsentState(
        {"analytics": PurposeState(True, 1), "cross_border:Brand GmbH": PurposeState(True, 2)}
    )
    assert not decide(legacy, EventFacts(), de, PIPL).allowed  # not bound to a region
    ok = ConsentState(
        {"analytics": PurposeState(True, 1), "cross_border:Brand GmbH@DE": PurposeState(True, 2)}
    )
    assert decide(ok, EventFacts(), de, PIPL).allowed
    # third party provision needs separate consent too (Art. 23)
    cn_ads = DestinationFacts(
        "ads", ("advertising",), region="CN", recipient="Ads CN", third_party=True
    )
    s = ConsentState({"advertising": PurposeState(True, 1)})
    assert not decide(s, EventFacts(), cn_ads, PIPL).allowed
    s = ConsentState(
        {"advertising": PurposeState(True, 1), "third_party:Ads CN@CN": PurposeState(True, 2)}
    )
    assert decide(s, EventFacts(), cn_ads, PIPL).allowed


def test_pipl_sensitive_and_minors() -> None:
    health = DestinationFacts(
        "care", ("analytics",), region="CN", pi_categories=frozenset({"health"})
    )
    facts = EventFacts(pi_categories=frozenset({"health"}))
    assert not decide(state(analytics=True), facts, health, PIPL).allowed
    s = ConsentState(
        {
            "analytics": PurposeState(True, 1),
            "sensitive:health": PurposeState(True, 2, scope=frozenset({"analytics"})),
        }
    )
    assert decide(s, facts, health, PIPL).allowed
    cn = DestinationFacts("lake", ("analytics",), region="CN")
    d = decide(state(analytics=True), EventFacts(age=12), cn, PIPL)
    assert not d.allowed and any("guardian" in r for r in d.reasons)
    g = ConsentState({"analytics": PurposeState(True, 1, guardian=True)})
    # under 14 all of a child's PI is sensitive (Art. 28): the guardian's separate
    # consent for it is needed too
    assert not decide(g, EventFacts(age=12), cn, PIPL).allowed
    minor = PurposeState(True, 2, guardian=True, scope=frozenset({"analytics"}))
    g = ConsentState({**g.purposes, "sensitive:minor": minor})
    assert decide(g, EventFacts(age=12), cn, PIPL).allowed


def test_gdpr_child_age_by_country() -> None:
    s = ConsentState({"analytics": PurposeState(True, 1)})
    assert decide(s, EventFacts(age=14, country="AT"), LAKE, GDPR).allowed  # AT: 14
    assert not decide(s, EventFacts(age=14, country="DE"), LAKE, GDPR).allowed  # DE: 16


def test_undeclared_region_under_pipl_is_no_decision() -> None:
    d = decide(state(analytics=True), EventFacts(), DestinationFacts("x", ("analytics",)), PIPL)
    assert d.outcome == "no_decision" and not d.allowed


def test_unknown_jurisdiction_gets_the_strictest_rules() -> None:
    assert P.get("XX").name == "PIPL"  # the single-pack view keeps the strictest pack
    assert P.get(None).name == "GDPR"
    regime = P.resolve("XX", None)
    assert regime.unknown == ("XX",) and {"GDPR", "PIPL", "CCPA"} <= {p.name for p in regime.packs}


states = st.dictionaries(st.sampled_from(PURPOSES), st.booleans())
dests = st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True)


@given(
    states,
    dests,
    st.sampled_from(["GDPR", "PIPL", "CCPA"]),
    st.booleans(),
    st.sampled_from(PURPOSES),
)
def test_a_withdrawal_never_turns_deny_into_allow(s, purposes, law, gpc, withdrawn) -> None:
    dest = DestinationFacts("d", tuple(purposes), region="CN", recipient="r")
    before = ConsentState({k: PurposeState(v, 1) for k, v in s.items()})
    after = ConsentState({**before.purposes, withdrawn: PurposeState(False, 2)})
    policy = P.get(law)
    d1 = decide(before, EventFacts(gpc=gpc), dest, policy)
    d2 = decide(after, EventFacts(gpc=gpc), dest, policy)
    assert not (d2.allowed and not d1.allowed)
    if withdrawn in purposes and policy.purposes[withdrawn] != "none":
        assert not d2.allowed


@given(dests, st.sampled_from(["GDPR", "PIPL"]))
def test_missing_consent_means_no_under_opt_in_laws(purposes, law) -> None:
    # the recipient is inside the law's zone: no transfer rule is involved
    dest = DestinationFacts("d", tuple(purposes), region="CN" if law == "PIPL" else "DE")
    d = decide(ConsentState(), EventFacts(), dest, P.get(law))
    assert d.allowed == all(p == "necessary" for p in purposes)
