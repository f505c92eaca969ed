"""Order-system webhooks: signatures, mapping (pure), and end to end through
`consentry serve` with payloads written from each platform's documented shape."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.sources.webhooks import PLATFORMS
from collector.sources.webhooks import ecommerce as ec
from collector.sources.webhooks.base import Delivery
from tests.conftest import ServerFactory, read_jsonl, wait_for

SECRETS = {
    "shopify": "shpss_test_secret",
    "woocommerce": "wc-secret",
    "shoplazza": "lazza-client-secret",
    "shopline": "shopline-app-secret",
}
HEADERS = {
    "shopify": ("X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "X-Shopify-Webhook-Id"),
    "woocommerce": ("X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "X-WC-Webhook-Delivery-ID"),
    "shoplazza": ("X-Shoplazza-Hmac-Sha256", "X-Shoplazza-Topic", "X-Shoplazza-Deduplication-ID"),
    "shopline": ("X-Shopline-Hmac-Sha256", "X-Shopline-Topic", "X-Shopline-Webhook-Id"),
}
EMAIL = "Buyer.Person@Example.org"
PHONE = "+4915112345678"


def sign_b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def sign_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def shopify_order(**over: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "id": 820982911946154508,
        "email": EMAIL,
        "phone": None,
        "created_at": "2026-11-20T10:00:00+01:00",
        "processed_at": "2026-11-20T10:00:05+01:00",
        "updated_at": "2026-11-20T10:01:00+01:00",
        "currency": "EUR",
        "financial_status": "paid",
        "total_price": "121.00",
        "subtotal_price": "100.00",
        "total_tax": "19.00",
        "total_discounts": "5.00",
        "total_shipping_price_set": {"shop_money": {"amount": "2.00", "currency_code": "EUR"}},
        "discount_codes": [{"code": "WELCOME5", "amount": "5.00", "type": "fixed_amount"}],
        "buyer_accepts_marketing": True,
        "billing_address": {"country_code": "DE", "city": "Berlin"},
        "shipping_address": {"country_code": "AT"},
        "customer": {"id": 115310627314723954, "email": EMAIL, "phone": PHONE},
        "line_items": [
            {
                "product_id": 632910392,
                "sku": "IPOD-342-N",
                "title": "IPod Nano",
                "price": "50.00",
                "quantity": 2,
            }
        ],
    }
    order.update(over)
    return order


# -- signatures (pure) ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PLATFORMS))
@given(body=st.binary(max_size=512), flip=st.integers(min_value=0))
def test_signature_accepts_exactly_the_signed_body(name: str, body: bytes, flip: int) -> None:
    platform = PLATFORMS[name]
    secret = SECRETS[name].encode()
    header = HEADERS[name][0].lower()
    good = sign_b64(SECRETS[name], body)
    assert platform.verify(secret, body, {header: good})
    assert not platform.verify(b"other-secret", body, {header: good})
    assert not platform.verify(secret, body, {})
    assert not platform.verify(secret, body, {header: ""})
    if body:
        i = flip % len(body)
        changed = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        assert not platform.verify(secret, changed, {header: good})


@given(body=st.binary(max_size=256))
def test_shopline_accepts_hex_as_well_as_base64(body: bytes) -> None:
    platform = PLATFORMS["shopline"]
    secret = SECRETS["shopline"]
    assert platform.verify(
        secret.encode(), body, {"x-shopline-hmac-sha256": sign_hex(secret, body)}
    )
    assert platform.verify(
        secret.encode(), body, {"x-shopline-hmac-sha256": sign_hex(secret, body).upper()}
    )
    assert not platform.verify(
        secret.encode(), body + b"x", {"x-shopline-hmac-sha256": sign_hex(secret, body)}
    )


# -- mapping (pure) ------------------------------------------------------------


def test_shopify_paid_order_maps_to_order_completed_with_spec_properties() -> None:
    t = PLATFORMS["shopify"].translate(Delivery("orders/paid", "d-1"), shopify_order())
    (message,) = t.messages
    assert message["event"] == "Order Completed" and message["type"] == "track"
    props = message["properties"]
    assert props["order_id"] == "820982911946154508"
    assert (props["total"], props["subtotal"], props["tax"], props["shipping"]) == (
        121.0,
        100.0,
        19.0,
        2.0,
    )
    assert props["revenue"] == 100.0  # total - shipping - tax
    assert (props["discount"], props["coupon"], props["currency"]) == (5.0, "WELCOME5", "EUR")
    assert props["products"] == [
        {
            "product_id": "632910392",
            "sku": "IPOD-342-N",
            "name": "IPod Nano",
            "price": 50.0,
            "quantity": 2,
        }
    ]
    assert message["anonymousId"] == "shopify:customer:115310627314723954"
    assert message["context"]["traits"] == {"email": EMAIL, "phone": PHONE}
    assert message["context"]["location"] == {"country": "DE"}  # billing before shipping
    # once per order: orders/create of the same paid order gets the same id
    again = PLATFORMS["shopify"].translate(Delivery("orders/create", "d-2"), shopify_order())
    assert again.messages[0]["messageId"] == message["messageId"]
    (consent,) = t.consents
    assert consent.granted and consent.method == "checkout_checkbox"


def test_shopify_unpaid_new_order_has_no_completed_event_and_unticked_box_no_consent() -> None:
    order = shopify_order(financial_status="pending", buyer_accepts_marketing=False)
    t = PLATFORMS["shopify"].translate(Delivery("orders/create", "d-3"), order)
    assert t.known and not t.messages and not t.consents


def test_shopify_refund_and_cancel() -> None:
    refund = {
        "id": 929361462,
        "order_id": 450789469,
        "created_at": "2026-11-21T09:00:00Z",
        "refund_line_items": [
            {
                "quantity": 1,
                "line_item": {"product_id": 1, "sku": "S", "title": "T", "price": "9.50"},
            }
        ],
        "transactions": [{"kind": "refund", "amount": "9.50", "currency": "usd"}],
    }
    (m,) = PLATFORMS["shopify"].translate(Delivery("refunds/create", "r"), refund).messages
    assert m["event"] == "Order Refunded"
    assert m["properties"]["total"] == 9.5 and m["properties"]["currency"] == "USD"
    assert m["properties"]["products"][0]["quantity"] == 1
    (c,) = (
        PLATFORMS["shopify"].translate(Delivery("orders/cancelled", "c"), shopify_order()).messages
    )
    assert c["event"] == "Order Cancelled"


def test_shopify_marketing_consent_topics_become_marketing_evidence() -> None:
    email_update = {
        "customer_id": 706405506930370084,
        "email_address": EMAIL,
        "email_marketing_consent": {
            "state": "unsubscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": "2026-11-22T08:00:00-05:00",
        },
    }
    t = PLATFORMS["shopify"].translate(
        Delivery("customers_email_marketing_consent/update", "e"), email_update
    )
    (c,) = t.consents
    assert not c.granted and c.channel == "email" and c.email == EMAIL
    assert c.given_at is not None and c.given_at.isoformat() == "2026-11-22T08:00:00-05:00"
    sms = {
        "id": 1,
        "phone": PHONE,
        "sms_marketing_consent": {"state": "subscribed", "opt_in_level": "confirmed_opt_in"},
    }
    (s,) = (
        PLATFORMS["shopify"]
        .translate(Delivery("customers_marketing_consent/update", "s"), sms)
        .consents
    )
    assert s.granted and s.method == "confirmed_opt_in" and s.phone == PHONE
    pending = {**sms, "sms_marketing_consent": {"state": "pending"}}
    assert (
        not PLATFORMS["shopify"]
        .translate(Delivery("customers_marketing_consent/update", "p"), pending)
        .consents
    )


def test_redact_names_everything_that_identifies_the_customer() -> None:
    payload = {"customer": {"id": 9, "email": EMAIL, "phone": None}, "orders_to_redact": [1]}
    t = PLATFORMS["shopify"].translate(Delivery("customers/redact", "r"), payload)
    assert t.erase is not None and not t.messages
    assert (t.erase.email, t.erase.phone, t.erase.anonymous_id) == (
        EMAIL,
        None,
        "shopify:customer:9",
    )
    assert PLATFORMS["shopline"].translate(Delivery("customers/redact", "r"), payload).erase


def test_customer_without_email_is_identified_by_phone_or_platform_id() -> None:
    t = PLATFORMS["shopify"].translate(
        Delivery("customers/create", "c1"), {"id": 42, "email": None, "phone": PHONE}
    )
    (m,) = t.messages
    assert m["type"] == "identify" and m["traits"] == {"phone": PHONE}
    assert m["anonymousId"] == "shopify:customer:42"
    bare = PLATFORMS["shopline"].translate(Delivery("customers/create", "c2"), {"id": "77"})
    assert (
        bare.messages[0]["traits"] == {}
        and bare.messages[0]["anonymousId"] == "shopline:customer:77"
    )


def test_woocommerce_order_statuses() -> None:
    order = {
        "id": 727,
        "status": "processing",
        "currency": "usd",
        "date_paid_gmt": "2026-11-20T09:00:00",
        "total": "29.35",
        "total_tax": "1.35",
        "shipping_total": "10.00",
        "discount_total": "0.00",
        "customer_id": 0,
        "billing": {"email": EMAIL, "phone": "", "country": "US"},
        "coupon_lines": [{"code": "fall"}],
        "line_items": [
            {
                "product_id": 93,
                "sku": "",
                "name": "Woo Single #1",
                "price": 9,
                "quantity": 2,
                "subtotal": "18.00",
            }
        ],
    }
    woo = PLATFORMS["woocommerce"]
    (m,) = woo.translate(Delivery("order.updated", "w1"), order).messages
    assert m["event"] == "Order Completed"
    assert m["properties"]["subtotal"] == 18.0 and m["properties"]["revenue"] == 18.0
    assert m["properties"]["currency"] == "USD" and m["properties"]["coupon"] == "fall"
    assert m["anonymousId"] == "woocommerce:order:727"  # a guest: customer_id 0
    assert m["timestamp"].startswith("2026-11-20T09:00:00")
    assert (
        woo.translate(Delivery("order.updated", "w2"), {**order, "status": "refunded"}).messages[0][
            "event"
        ]
        == "Order Refunded"
    )
    assert (
        woo.translate(
            Delivery("order.updated", "w3"), {**order, "status": "on-hold", "date_paid_gmt": None}
        ).messages[0]["event"]
        == "Order Updated"
    )
    assert not woo.translate(
        Delivery("order.created", "w4"), {**order, "status": "pending", "date_paid_gmt": None}
    ).messages
    assert not woo.translate(Delivery("coupon.created", "w5"), {"id": 1}).known


def test_shoplazza_and_shopline_orders() -> None:
    lazza = {
        "id": "d1b1f6c5",
        "financial_status": "paid",
        "status": "placed",
        "total_price": "59.90",
        "sub_total": "50.00",
        "total_tax": "4.90",
        "total_shipping": "5.00",
        "total_discount": "0.00",
        "discount_code": "",
        "currency": "CNY",
        "buyer_accepts_marketing": True,
        "customer": {"id": "c-9", "email": EMAIL},
        "shipping_address": {"country_code": "CN"},
        "line_items": [
            {
                "product_id": "p1",
                "sku": "s1",
                "product_title": "Tea",
                "price": "25.00",
                "quantity": 2,
            }
        ],
    }
    t = PLATFORMS["shoplazza"].translate(Delivery("orders/create", "z1"), lazza)
    (m,) = t.messages
    assert m["event"] == "Order Completed" and m["properties"]["products"][0]["name"] == "Tea"
    assert m["context"]["location"] == {"country": "CN"} and len(t.consents) == 1
    line = {**shopify_order(), "total_shipping_price_set": None, "total_shipping_price": "3.00"}
    (s,) = PLATFORMS["shopline"].translate(Delivery("orders/paid", "l1"), line).messages
    assert s["properties"]["shipping"] == 3.0 and s["anonymousId"].startswith("shopline:")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
order_keys = st.sampled_from(
    [
        "id",
        "total_price",
        "line_items",
        "customer",
        "billing_address",
        "financial_status",
        "discount_codes",
        "status",
        "billing",
        "total",
        "refund_line_items",
        "email",
    ]
)


@pytest.mark.parametrize("name", sorted(PLATFORMS))
@given(
    topic=st.sampled_from(
        [
            "orders/create",
            "orders/paid",
            "orders/updated",
            "orders/cancelled",
            "refunds/create",
            "customers/create",
            "order.created",
            "order.updated",
            "customer.updated",
            "x/y",
            "customers_email_marketing_consent/update",
            "customers_marketing_consent/update",
        ]
    ),
    payload=st.dictionaries(order_keys, json_values, max_size=8) | json_values,
)
def test_translate_never_raises_on_any_json(name: str, topic: str, payload: object) -> None:
    t = PLATFORMS[name].translate(Delivery(topic, "id"), payload)
    for message in t.messages:
        assert message["type"] in ("track", "identify") and message["anonymousId"]


@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.none(), st.booleans()))
def test_money_is_a_number_or_none(value: object) -> None:
    out = ec.money(value)
    assert out is None or isinstance(out, float)


# -- end to end ----------------------------------------------------------------

CONFIG = """
[privacy]
country_jurisdictions = {{ DE = "GDPR", US = "CCPA", CN = "PIPL" }}

[browser]
rate_limit_per_ip = ""

[[sources]]
name = "web"
write_key_env = "CONSENTRY_WRITE_KEY"

[[sources]]
name = "shop"
type = "shopify"
secret_env = "SHOPIFY_SECRET"

[[sources]]
name = "woo"
type = "woocommerce"
secret_file = "{woo_secret}"

[[sources]]
name = "lazza"
type = "shoplazza"
secret_env = "LAZZA_SECRET"

[[sources]]
name = "line"
type = "shopline"
secret_env = "SHOPLINE_SECRET"

[[destinations]]
name = "crm"
type = "jsonl"
purposes = ["marketing"]
path = "{data}/crm"
"""


def post(
    url: str,
    platform: str,
    topic: str,
    payload: object,
    *,
    delivery: str | None = None,
    signature: str | None = None,
    secret: str | None = None,
) -> httpx.Response:
    body = json.dumps(payload).encode()
    sig_header, topic_header, id_header = HEADERS[platform]
    headers = {"Content-Type": "application/json", topic_header: topic}
    if delivery is not None:
        headers[id_header] = delivery
    if signature is None:
        signature = sign_b64(secret or SECRETS[platform], body)
    if signature:
        headers[sig_header] = signature
    return httpx.post(url, content=body, headers=headers, timeout=30)


def test_webhooks_end_to_end(server_factory: ServerFactory, tmp_path: Path) -> None:
    woo_secret = tmp_path / "woo.secret"
    woo_secret.write_text(SECRETS["woocommerce"] + "\n")
    woo_secret.chmod(0o600)
    data = tmp_path / "data"
    server = server_factory(
        CONFIG.format(woo_secret=woo_secret, data=data),
        env={
            "SHOPIFY_SECRET": SECRETS["shopify"],
            "LAZZA_SECRET": SECRETS["shoplazza"],
            "SHOPLINE_SECRET": SECRETS["shopline"],
        },
    ).start()
    hook = server.url + "/v1/webhooks/"
    delivery = str(uuid.uuid4())

    # A paid order with the marketing box ticked: stored once, consent recorded.
    r = post(hook + "shop", "shopify", "orders/paid", shopify_order(), delivery=delivery)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1 and r.json()["consent_records"] == 1
    crm = data / "crm"
    out = wait_for(lambda: read_jsonl(crm))
    assert out and out[0]["event"] == "Order Completed"
    assert out[0]["properties"]["total"] == 121.0
    assert str(out[0]["context"]["traits"]["email"]).startswith("ps1.")

    # Replayed delivery id: acknowledged, stored once.
    r = post(hook + "shop", "shopify", "orders/paid", shopify_order(), delivery=delivery)
    assert r.status_code == 200 and r.json()["duplicate"] is True

    # Wrong and missing signatures: 401 naming the header, nothing stored.
    wrong = post(
        hook + "shop", "shopify", "orders/paid", shopify_order(id=1), delivery="x1", secret="nope"
    )
    assert wrong.status_code == 401 and wrong.json()["path"] == "$.headers.X-Shopify-Hmac-Sha256"
    missing = post(
        hook + "shop", "shopify", "orders/paid", shopify_order(id=2), delivery="x2", signature=""
    )
    assert missing.status_code == 401
    # ... and the rejected delivery id was not claimed: the signed retry is stored.
    retry = post(hook + "shop", "shopify", "orders/paid", shopify_order(id=1), delivery="x1")
    assert retry.status_code == 200 and retry.json()["accepted"] == 1

    # Unknown topic: acknowledged and counted, not an error loop.
    r = post(hook + "shop", "shopify", "app/uninstalled", {"id": 1}, delivery="u1")
    assert r.status_code == 200 and "ignored" in r.json()
    # A customer with no email.
    r = post(hook + "shop", "shopify", "customers/create", {"id": 5, "phone": PHONE}, delivery="c1")
    assert r.status_code == 200 and r.json()["accepted"] == 1
    r = post(hook + "shop", "shopify", "customers/create", {"id": 6}, delivery="c2")
    assert r.status_code == 200 and r.json()["accepted"] == 1
    # Invalid JSON under a valid signature names the path.
    body = b"{not json"
    bad = httpx.post(
        hook + "shop",
        content=body,
        headers={
            "X-Shopify-Hmac-Sha256": sign_b64(SECRETS["shopify"], body),
            "X-Shopify-Topic": "orders/paid",
            "X-Shopify-Webhook-Id": "j",
        },
        timeout=30,
    )
    assert bad.status_code == 400 and bad.json()["path"] == "$"
    assert httpx.post(hook + "nosuch", content=b"{}", timeout=30).status_code == 404

    # The other platforms.
    woo_order = {
        "id": 9,
        "status": "completed",
        "date_paid_gmt": "2026-11-20T09:00:00",
        "total": "5.00",
        "currency": "USD",
        "billing": {"email": "w@example.com", "country": "US"},
        "line_items": [],
    }
    assert (
        post(hook + "woo", "woocommerce", "order.updated", woo_order, delivery="w1").json()[
            "accepted"
        ]
        == 1
    )
    ping = httpx.post(
        hook + "woo",
        content=b"webhook_id=17",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert ping.status_code == 200 and ping.json()["ping"] is True
    lazza = {
        "id": "z",
        "financial_status": "paid",
        "total_price": "1.00",
        "currency": "CNY",
        "customer": {"email": "z@example.com"},
        # (a CN address is PIPL's: marketing to a recipient of unknown region
        # needs more than the checkout box there)
        "shipping_address": {"country_code": "FR"},
        "buyer_accepts_marketing": True,
    }
    assert (
        post(hook + "lazza", "shoplazza", "orders/paid", lazza, delivery="z1").json()["accepted"]
        == 1
    )
    line_body = json.dumps(shopify_order(id=3)).encode()
    r = httpx.post(
        hook + "line",
        content=line_body,
        headers={
            "X-Shopline-Hmac-Sha256": sign_hex(SECRETS["shopline"], line_body),
            "X-Shopline-Topic": "orders/paid",
            "X-Shopline-Webhook-Id": "l1",
        },
        timeout=30,
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1

    # Every platform's order reached the destination (marketing: consented at
    # checkout, or allowed until an opt-out under the US pack for WooCommerce).
    platforms = {"shopify", "woocommerce", "shoplazza", "shopline"}

    def reached() -> set[str]:
        rows = read_jsonl(crm)
        return {
            str(m["context"]["integration"]["name"])
            for m in rows
            if m.get("event") == "Order Completed"
        }

    assert wait_for(lambda: platforms <= reached()), reached()
    # Shopify's mandatory customers/redact erases the customer; a second request
    # finds nobody left.
    redact = {
        "shop_id": 954889,
        "customer": {"id": 115310627314723954, "email": EMAIL, "phone": PHONE},
        "orders_to_redact": [820982911946154508],
    }
    r = post(hook + "shop", "shopify", "customers/redact", redact, delivery="redact-1")
    assert r.status_code == 200 and r.json()["erased"] is True, r.text
    r = post(hook + "shop", "shopify", "customers/redact", redact, delivery="redact-2")
    assert r.status_code == 200 and r.json()["erased"] is False

    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    assert (
        'consentry_webhook_deliveries_total{outcome="unknown_topic",source="shop"} 1.0' in metrics
    )
    assert (
        'consentry_webhook_deliveries_total{outcome="bad_signature",source="shop"} 2.0' in metrics
    )
    assert 'consentry_webhook_deliveries_total{outcome="duplicate",source="shop"} 1.0' in metrics

    # Dedupe survives a restart.
    server.stop()
    server.start()
    r = post(hook + "shop", "shopify", "orders/paid", shopify_order(), delivery=delivery)
    assert r.status_code == 200 and r.json()["duplicate"] is True
    server.stop()
    completed = [m for m in read_jsonl(crm) if m.get("event") == "Order Completed"]
    assert len({m["messageId"] for m in completed}) == len(completed)
    # Raw identifiers never reach the disk.
    disk = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    for raw in (EMAIL, EMAIL.lower(), PHONE, "w@example.com", "z@example.com"):
        assert raw.encode() not in disk, raw


def test_concurrent_retries_of_one_delivery_are_stored_once(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Platforms retry while a first attempt is still in flight; with several
    worker processes the copies land on different workers at once."""
    from concurrent.futures import ThreadPoolExecutor

    woo_secret = tmp_path / "woo.secret"
    woo_secret.write_text(SECRETS["woocommerce"])
    woo_secret.chmod(0o600)
    data = tmp_path / "data"
    server = server_factory(
        CONFIG.format(woo_secret=woo_secret, data=data) + "\n[server]\nworkers = 2\n",
        env={"SHOPIFY_SECRET": SECRETS["shopify"], "LAZZA_SECRET": "x", "SHOPLINE_SECRET": "y"},
    ).start()
    url = server.url + "/v1/webhooks/shop"
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda _: post(url, "shopify", "orders/paid", shopify_order(), delivery="same"),
                range(16),
            )
        )
    assert all(a.status_code == 200 for a in answers)
    stored = [a.json() for a in answers if not a.json().get("duplicate")]
    assert len(stored) == 1 and stored[0]["accepted"] == 1
    out = wait_for(lambda: read_jsonl(data / "crm"))
    assert out is not None and len(out) == 1


@pytest.mark.parametrize("junk", [5, "abc", {"a": 1}, True, 1.5])
@pytest.mark.parametrize(
    ("name", "topic", "key"),
    [
        ("woocommerce", "order.created", "line_items"),
        ("woocommerce", "order.created", "coupon_lines"),
        ("shopify", "refunds/create", "refund_line_items"),
        ("shopify", "refunds/create", "transactions"),
    ],
)
def test_a_list_field_holding_something_else_is_no_list(
    name: str, topic: str, key: str, junk: object
) -> None:
    # `payload.get(key) or []` iterated a number (TypeError: found by hypothesis).
    payload = {"id": 7, "order_id": 7, "status": "processing", "customer_id": 3, key: junk}
    PLATFORMS[name].translate(Delivery(topic, "id"), payload)
