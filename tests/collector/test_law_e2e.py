"""Issue 20's scenarios end to end: SDK/HTTP -> `consentry serve` -> decide ->
JSONL destinations, for a brand selling into the EU, the US and China.

One server holds five destinations with their legal facts; each scenario is a
different person. A sentinel event that every destination accepts is sent last:
rows of one destination are delivered in order, so once the sentinels arrive,
what has not arrived was never routed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sdk_python import Client, RecipientConsent, SeparateConsents
from tests.conftest import WRITE_KEY, Server, ServerFactory, read_jsonl, wait_for

DESTS = ("eu-lake", "eu-warehouse", "us-ads", "us-analytics", "cn-lake")


def config(root: Path) -> str:
    out = root / "out"
    return f"""
[privacy]
default_jurisdiction = "GDPR"

[[destinations]]
name = "eu-lake"
type = "jsonl"
purposes = ["analytics"]
region = "DE"
recipient = "Brand GmbH"
transfer = {{ PIPL = "standard_contract" }}
path = "{out}/eu-lake"

[[destinations]]
name = "eu-warehouse"
type = "jsonl"
purposes = ["necessary"]
region = "DE"
recipient = "Brand GmbH"
legal_bases = {{ necessary = "contract" }}
transfer = {{ PIPL = "contract_necessity" }}
path = "{out}/eu-warehouse"

[[destinations]]
name = "us-ads"
type = "jsonl"
purposes = ["advertising"]
region = "US"
recipient = "Ads Inc"
third_party = true
ccpa_role = "third_party"
transfer = {{ GDPR = "scc", PIPL = "standard_contract" }}
path = "{out}/us-ads"

[[destinations]]
name = "us-analytics"
type = "jsonl"
purposes = ["analytics"]
region = "US"
recipient = "Brand Inc"
ccpa_role = "service_provider"
path = "{out}/us-analytics"

[[destinations]]
name = "cn-lake"
type = "jsonl"
purposes = ["analytics"]
region = "CN"
recipient = "Brand Shanghai"
min_notice_version = "v3"
path = "{out}/cn-lake"
"""


def ts(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def track(user: str, mid: str, **context: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "track",
        "event": "Viewed",
        "userId": user,
        "messageId": mid,
        "context": context,
    }
    at = context.pop("at", None)
    if at is not None:
        msg["timestamp"] = ts(at)
    traits = context.pop("age", None)
    if traits is not None:
        msg["context"]["traits"] = {"age": traits}
    return msg


def prefs(**granted: bool) -> dict[str, Any]:
    return {"categoryPreferences": granted}


def delivered(server: Server) -> dict[str, set[str]]:
    out = server.data_dir.parent / "out"
    return {d: {str(m["messageId"]) for m in read_jsonl(out / d)} for d in DESTS}


def test_the_law_end_to_end(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(config(tmp_path)).start()
    now = datetime.now(UTC)
    consent = lambda body: server.post("/v1/consent", body)  # noqa: E731

    # 8. CCPA child: a 12-year-old's own advertising consent (§1798.120(c)).
    assert consent({"userId": "ca-kid", "purposes": {"advertising": "granted"}}).status_code == 200
    # 9. stale signal: granted an hour ago, withdrawn now (GDPR Art. 7(3)).
    r = consent(
        {
            "userId": "de-stale",
            "purposes": {"analytics": "granted"},
            "timestamp": ts(now - timedelta(hours=1)),
        }
    )
    assert r.status_code == 200
    assert (
        consent({"userId": "de-stale", "purposes": {"analytics": "denied"}}).json()["action"]
        == "withdraw"
    )
    # 10. notice versions: cn-lake needs v3 (PIPL Art. 14 para. 2).
    for user, version in (("cn-v2", "v2"), ("cn-v3", "v3")):
        body = {"userId": user, "purposes": {"analytics": "granted"}, "noticeVersion": version}
        assert consent(body).status_code == 200
    # 11. merge: consent as the logged-in user (issue 14 §2).
    assert (
        consent({"userId": "login-user", "purposes": {"analytics": "granted"}}).status_code == 200
    )
    # 3. PIPL separate cross-border consent, typed, through the SDK (PIPL Art. 39).
    with Client(WRITE_KEY, host=server.url, flush_interval=0.05) as client:
        answer = client.consent(
            "cn-separate",
            {"analytics": True},
            separate_consents=SeparateConsents(
                crossBorder=[RecipientConsent(recipient="Brand GmbH", region="DE")]
            ),
        )
        assert answer is not None and answer["success"]
    # A cross-border key without a region is refused, naming the path.
    bad = consent({"userId": "x", "purposes": {"cross_border:Brand GmbH": "granted"}})
    assert bad.status_code == 400 and bad.json()["path"] == "$.purposes.cross_border:Brand GmbH"

    cn = {"location": {"country": "CN"}}
    batch = [
        # 1. default country map: CN -> PIPL (PIPL Art. 3, 38-39)
        track("cn-shopper", "cn-shopper", consent=prefs(analytics=True), **cn),
        # 2. an order to the EU warehouse under contract necessity (PIPL Art. 13(1)(2))
        track("cn-order", "cn-order", **cn),
        # 3. with separate consent for Brand GmbH in DE
        track("cn-separate", "cn-separate", **cn),
        # 4. CCPA label, French shopper, no consent (GDPR Art. 3(2)(a))
        track("fr-ccpa", "fr-ccpa", consent={"jurisdiction": "CCPA"}, location={"country": "FR"}),
        # 5. US-CA alias: first-party US analytics needs no opt-in (§1798.120)
        track(
            "ca-shopper",
            "ca-shopper",
            consent={"jurisdiction": "US-CA"},
            location={"country": "US"},
        ),
        # 6. GPC: the third party is a sale, the service provider is not (§1798.140(ad))
        track("ca-gpc", "ca-gpc", consent={"jurisdiction": "US-CA", "gpc": True}),
        # 7. EU data to a US recipient without a mechanism (GDPR Art. 44)
        track(
            "de-shopper", "de-shopper", consent=prefs(analytics=True), location={"country": "DE"}
        ),
        # 8.
        track("ca-kid", "ca-kid", consent={"jurisdiction": "CCPA"}, age=12),
        # 9. a replayed banner state from three hours ago
        track(
            "de-stale", "de-stale-old", consent=prefs(analytics=True), at=now - timedelta(hours=3)
        ),
        # 10.
        track("cn-v2", "cn-v2", **cn),
        track("cn-v3", "cn-v3", **cn),
        # 11. anonymous browsing with no consent, then login
        {
            "type": "track",
            "event": "Viewed",
            "anonymousId": "anon-dev2",
            "messageId": "anon-before",
        },
        {
            "type": "identify",
            "userId": "login-user",
            "anonymousId": "anon-dev2",
            "messageId": "login",
        },
        track("login-user", "after-login"),
        # 12. an unknown label is reported and the strictest rules apply
        track("xx-shopper", "xx-shopper", consent={**prefs(analytics=True), "jurisdiction": "XX"}),
        # 13. Norway: 13-year-olds consent themselves (personopplysningsloven §5)
        track(
            "no-teen", "no-teen", consent=prefs(analytics=True), location={"country": "NO"}, age=13
        ),
    ]
    r = server.post("/v1/batch", {"batch": batch})
    assert r.status_code == 200 and r.json()["accepted"] == len(batch), r.text
    # 9, continued: a signal given after the withdrawal does count.
    later = [track("de-stale", "de-stale-new", consent=prefs(analytics=True), at=datetime.now(UTC))]
    assert server.post("/v1/batch", {"batch": later}).status_code == 200
    sentinels = [
        track(
            "sentinel-eu",
            "s-eu",
            consent=prefs(analytics=True, advertising=True),
            location={"country": "DE"},
        ),
        track("sentinel-us", "s-us", consent={"jurisdiction": "US-CA"}),
        track("sentinel-cn", "s-cn", **cn),
    ]
    assert server.post("/v1/batch", {"batch": sentinels}).status_code == 200
    # What each destination must receive of the sentinels (s-cn: no consent, so the
    # EU warehouse only; s-us: CCPA, so everything; s-eu: not the US analytics
    # recipient, which has no GDPR transfer mechanism).
    expected = {
        "eu-lake": {"s-eu", "s-us"},
        "eu-warehouse": {"s-eu", "s-us", "s-cn"},
        "us-ads": {"s-eu", "s-us"},
        "us-analytics": {"s-us"},
        "cn-lake": {"s-us"},
    }
    got = wait_for(
        lambda: (d := delivered(server)) and all(expected[k] <= d[k] for k in DESTS) and d,
        timeout=90,
    )
    assert got, delivered(server)
    for name in DESTS:
        assert got[name] & {"s-eu", "s-us", "s-cn"} == expected[name], name

    def where(mid: str) -> set[str]:
        return {d for d in DESTS if mid in got[d]}

    # no cross-border consent; cn-lake needs notice v3; the order warehouse is necessary
    assert where("cn-shopper") == {"eu-warehouse"}
    assert where("cn-order") == {"eu-warehouse"}
    assert where("cn-separate") == {"eu-lake", "eu-warehouse"}
    assert where("fr-ccpa") == {"eu-warehouse"}
    assert where("ca-shopper") == set(DESTS)  # CCPA: allowed until opt-out
    assert where("ca-gpc") == set(DESTS) - {"us-ads"}
    assert where("de-shopper") == {"eu-lake", "eu-warehouse"}
    assert "us-ads" not in where("ca-kid")
    assert "eu-lake" not in where("de-stale-old")
    assert "eu-lake" in where("de-stale-new")
    assert where("cn-v2") == {"eu-warehouse"}
    assert where("cn-v3") == {"cn-lake", "eu-warehouse"}
    assert "eu-lake" in where("after-login")
    assert "eu-lake" not in where("xx-shopper")
    assert "eu-lake" in where("no-teen")
    server.stop()


RECHECK = """
[server]
forward = {forward}

[[destinations]]
name = "us-ads"
type = "jsonl"
purposes = ["advertising"]
region = "US"
recipient = "Ads Inc"
path = "{out}/us-ads"
"""


def test_age_and_country_stay_in_the_send_time_recheck(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A Californian of 12 with a parent's advertising consent is routed; before
    the row is sent, the child records the consent again themselves. At send time
    the row is decided again as a 12-year-old in California (a parent must opt in,
    §1798.120(c)), so it is dropped; an adult's row in the same state is sent."""
    out = tmp_path / "out"
    first = server_factory(RECHECK.format(forward="false", out=out)).start()
    for user, consenter in (("kid", "guardian"), ("adult", "self")):
        body = {
            "userId": user,
            "purposes": {"advertising": "granted"},
            "consenter": consenter,
            "jurisdiction": "US-CA",
        }
        assert first.post("/v1/consent", body).status_code == 200
    batch = [
        track(
            "kid", "kid-ad", consent={"jurisdiction": "US-CA"}, location={"country": "US"}, age=12
        ),
        track("adult", "adult-ad", consent={"jurisdiction": "US-CA"}, location={"country": "US"}),
    ]
    assert first.post("/v1/batch", {"batch": batch}).status_code == 200
    # Both were allowed at ingest; now the child's own record replaces the parent's.
    body = {"userId": "kid", "purposes": {"advertising": "granted"}, "jurisdiction": "US-CA"}
    assert first.post("/v1/consent", body).status_code == 200
    assert not read_jsonl(out / "us-ads")  # nothing was sent while forwarding was off
    first.stop()
    second = server_factory(
        RECHECK.format(forward="true", out=out),
        env={"CONSENTRY_MASTER_KEY": first.env["CONSENTRY_MASTER_KEY"]},
    ).start()
    sent = wait_for(lambda: [m["messageId"] for m in read_jsonl(out / "us-ads")], timeout=60)
    assert sent == ["adult-ad"]
    second.stop()
