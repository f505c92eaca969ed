"""Shopify webhooks.

Signature (Shopify, "Deliver webhooks through HTTPS", section "Verify a
webhook", https://shopify.dev/docs/apps/build/webhooks/subscribe/https): the
``X-Shopify-Hmac-Sha256`` header is the base64 HMAC-SHA256 of the raw request
body keyed with the app's client secret (or the store's webhook signing key).
Headers used: ``X-Shopify-Topic``, ``X-Shopify-Webhook-Id`` (the same on every
retry of one event: our dedupe key), ``X-Shopify-Shop-Domain``.

Topics mapped: ``orders/create`` (paid ones) and ``orders/paid`` to Order
Completed; ``orders/updated``/``edited``/``fulfilled``/``partially_fulfilled``
to Order Updated; ``orders/cancelled``; ``refunds/create``;
``customers/create``/``update`` to identify; the customer marketing-consent
topics (``customers_email_marketing_consent/update``,
``customers_marketing_consent/update``) to ledger records for ``marketing``;
``customers/redact`` (mandatory privacy webhook) to an erasure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.sources.webhooks import ecommerce as ec
from collector.sources.webhooks.base import Delivery, Translation, matches_base64

NAME = "shopify"
SHAPE = ec.Shape(
    subtotal=("subtotal_price", "current_subtotal_price"),
    shipping=("total_shipping_price_set",),
    discount=("total_discounts", "current_total_discounts"),
    product_name=("title", "name"),
)
_UPDATED = frozenset(
    {"orders/updated", "orders/edited", "orders/fulfilled", "orders/partially_fulfilled"}
)
_ORDERS = _UPDATED | {"orders/create", "orders/paid", "orders/cancelled"}
PAID = frozenset({"paid", "partially_refunded"})


class Shopify:
    name = NAME

    def verify(self, secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
        return matches_base64(secret, body, headers.get("x-shopify-hmac-sha256"))

    def delivery(self, headers: Mapping[str, str]) -> Delivery:
        return Delivery(
            topic=headers.get("x-shopify-topic", ""),
            delivery_id=headers.get("x-shopify-webhook-id") or None,
            shop=headers.get("x-shopify-shop-domain") or None,
        )

    def translate(self, delivery: Delivery, payload: Any) -> Translation:
        return translate(delivery, payload)


def _order_person(order: Mapping[str, Any]) -> ec.Person:
    customer = ec.obj(order.get("customer"))
    return ec.person(
        NAME,
        customer_id=customer.get("id"),
        order_id=order.get("id"),
        email=order.get("email") or order.get("contact_email") or customer.get("email"),
        phone=order.get("phone") or customer.get("phone"),
        country_code=ec.country(order.get("billing_address"), order.get("shipping_address")),
    )


def order_event(topic: str, order: Mapping[str, Any]) -> str | None:
    """Which spec event an order topic is; None for an unpaid new order (its
    Order Completed comes with ``orders/paid``)."""
    if topic == "orders/cancelled":
        return ec.CANCELLED
    if topic == "orders/paid":
        return ec.COMPLETED
    if topic == "orders/create":
        return ec.COMPLETED if ec.text(order.get("financial_status")) in PAID else None
    if topic in _UPDATED:
        return ec.UPDATED
    return None


def translate(delivery: Delivery, payload: Any) -> Translation:
    """Pure: one delivery's payload to messages and consent evidence."""
    topic = delivery.topic
    if not isinstance(payload, Mapping):
        return Translation(known=False)
    ref = delivery.delivery_id or "no-id"
    if topic in _ORDERS:
        who = _order_person(payload)
        at = ec.timestamp(payload.get("processed_at")) or ec.timestamp(payload.get("created_at"))
        consents = ec.checkout_consent(who, payload.get("buyer_accepts_marketing"), at)
        event = order_event(topic, payload)
        messages = []
        if event is not None:
            props = ec.order_properties(
                payload, shape=SHAPE, coupons=ec.coupon_codes(payload.get("discount_codes"))
            )
            # Completed and Cancelled happen once per order: the id says so, so a
            # destination deduplicates orders/create + orders/paid of one order.
            mid = (
                f"{NAME}:{props.get('order_id')}:{event}"
                if event in (ec.COMPLETED, ec.CANCELLED)
                else f"{NAME}:{ref}"
            )
            when = ec.timestamp(payload.get("updated_at")) if event == ec.UPDATED else at
            messages.append(ec.track(who, event, props, message_id=mid, at=when, platform=NAME))
        return Translation(messages=messages, consents=consents)
    if topic == "refunds/create":
        return _refund(payload, ref)
    if topic in ("customers/create", "customers/update"):
        who = _customer_person(payload)
        at = ec.timestamp(payload.get("updated_at"))
        consents = [
            *ec.state_consent(who, "email", payload.get("email_marketing_consent"), fallback_at=at),
            *ec.state_consent(who, "sms", payload.get("sms_marketing_consent"), fallback_at=at),
        ]
        message = ec.identify(who, message_id=f"{NAME}:{ref}", at=at, platform=NAME)
        return Translation(messages=[message], consents=consents)
    if topic == "customers_email_marketing_consent/update":
        who = ec.person(
            NAME,
            customer_id=payload.get("customer_id"),
            order_id=None,
            email=payload.get("email_address"),
            phone=None,
            country_code=None,
        )
        return Translation(
            consents=ec.state_consent(who, "email", payload.get("email_marketing_consent"))
        )
    if topic == "customers_marketing_consent/update":
        who = ec.person(
            NAME,
            customer_id=payload.get("id") or payload.get("customer_id"),
            order_id=None,
            email=None,
            phone=payload.get("phone"),
            country_code=None,
        )
        return Translation(
            consents=ec.state_consent(who, "sms", payload.get("sms_marketing_consent"))
        )
    if topic == "customers/redact":
        return ec.redact(NAME, payload)
    return Translation(known=False)


def _customer_person(customer: Mapping[str, Any]) -> ec.Person:
    address = customer.get("default_address")
    return ec.person(
        NAME,
        customer_id=customer.get("id"),
        order_id=None,
        email=customer.get("email"),
        phone=customer.get("phone"),
        country_code=ec.country(address),
    )


def _refund(refund: Mapping[str, Any], ref: str) -> Translation:
    order_id = ec.text(refund.get("order_id"))
    items = []
    for line in ec.objects(refund.get("refund_line_items")):
        if isinstance(line.get("line_item"), Mapping):
            item = dict(line["line_item"])
            if isinstance(line.get("quantity"), int):
                item["quantity"] = line["quantity"]
            items.append(ec.product(item, SHAPE))
    amounts = [
        ec.money(t.get("amount"))
        for t in ec.objects(refund.get("transactions"))
        if isinstance(t, Mapping) and t.get("kind") in (None, "refund")
    ]
    props: dict[str, Any] = {"order_id": order_id, "products": items}
    if amounts:
        props["total"] = float(round(sum(a for a in amounts if a is not None), 2))
    currencies = [
        t.get("currency") for t in ec.objects(refund.get("transactions")) if isinstance(t, Mapping)
    ]
    if currencies and isinstance(currencies[0], str):
        props["currency"] = currencies[0].upper()
    who = ec.person(
        NAME,
        customer_id=None,
        order_id=order_id,
        email=None,
        phone=None,
        country_code=None,
    )
    at = ec.timestamp(refund.get("processed_at")) or ec.timestamp(refund.get("created_at"))
    mid = f"{NAME}:{order_id}:refund:{ec.text(refund.get('id')) or ref}"
    return Translation(
        messages=[ec.track(who, ec.REFUNDED, props, message_id=mid, at=at, platform=NAME)]
    )
