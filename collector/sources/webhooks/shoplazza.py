"""Shoplazza webhooks.

Signature (Shoplazza developer docs, "Webhook", section "Verify a webhook",
https://www.shoplazza.dev/reference/webhook-copy): ``X-Shoplazza-Hmac-Sha256``
is the base64 HMAC-SHA256 of the raw request body keyed with the app's client
secret. Headers used (https://www.shoplazza.dev/reference/webhook-properties):
``X-Shoplazza-Topic``, ``X-Shoplazza-Deduplication-ID`` (unique per event:
our dedupe key), ``X-Shoplazza-Shop-Domain``. Shoplazza retries for up to two
days.

Order fields (https://www.shoplazza.dev/reference/order-5): ``total_price``,
``sub_total``, ``total_tax``, ``total_shipping``, ``total_discount``,
``discount_code``, ``financial_status``, ``status``,
``buyer_accepts_marketing``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from collector.sources.webhooks import ecommerce as ec
from collector.sources.webhooks.base import Delivery, Translation, matches_base64

NAME = "shoplazza"
SHAPE = ec.Shape(
    subtotal=("sub_total",),
    shipping=("total_shipping",),
    discount=("total_discount",),
    product_name=("product_title", "title", "name"),
)
_ORDERS = frozenset(
    {
        "orders/create",
        "orders/update",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/refunded",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)


class Shoplazza:
    name = NAME

    def verify(self, secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
        return matches_base64(secret, body, headers.get("x-shoplazza-hmac-sha256"))

    def delivery(self, headers: Mapping[str, str]) -> Delivery:
        return Delivery(
            topic=headers.get("x-shoplazza-topic", ""),
            delivery_id=headers.get("x-shoplazza-deduplication-id") or None,
            shop=headers.get("x-shoplazza-shop-domain") or None,
        )

    def translate(self, delivery: Delivery, payload: Any) -> Translation:
        return translate(delivery, payload)


def order_event(topic: str, order: Mapping[str, Any]) -> str | None:
    financial = order.get("financial_status")
    if topic == "orders/cancelled" or order.get("status") == "cancelled":
        return ec.CANCELLED
    if topic == "orders/refunded" or financial in ("refunded", "partially_refunded"):
        return ec.REFUNDED
    if topic == "orders/paid" or (topic == "orders/create" and financial == "paid"):
        return ec.COMPLETED
    return None if topic == "orders/create" else ec.UPDATED


def translate(delivery: Delivery, payload: Any) -> Translation:
    """Pure: one delivery's payload to messages and consent evidence."""
    if not isinstance(payload, Mapping):
        return Translation(known=False)
    body = ec.obj(payload.get("order")) or payload
    ref = delivery.delivery_id or "no-id"
    if delivery.topic in _ORDERS:
        customer = ec.obj(body.get("customer"))
        who = ec.person(
            NAME,
            customer_id=body.get("customer_id") or customer.get("id"),
            order_id=body.get("id"),
            email=body.get("email") or customer.get("email"),
            phone=body.get("phone") or customer.get("phone"),
            country_code=ec.country(body.get("billing_address"), body.get("shipping_address")),
        )
        at = ec.timestamp(body.get("placed_at")) or ec.timestamp(body.get("created_at"))
        consents = ec.checkout_consent(who, body.get("buyer_accepts_marketing"), at)
        event = order_event(delivery.topic, body)
        if event is None:
            return Translation(consents=consents)
        code = body.get("discount_code")
        props = ec.order_properties(
            body, shape=SHAPE, coupons=[code] if isinstance(code, str) and code else []
        )
        mid = (
            f"{NAME}:{props.get('order_id')}:{event}"
            if event in (ec.COMPLETED, ec.CANCELLED, ec.REFUNDED)
            else f"{NAME}:{ref}"
        )
        when = at if event == ec.COMPLETED else ec.timestamp(body.get("updated_at")) or at
        return Translation(
            messages=[ec.track(who, event, props, message_id=mid, at=when, platform=NAME)],
            consents=consents,
        )
    if delivery.topic in ("customers/create", "customers/update", "customers/updated"):
        customer = ec.obj(body.get("customer")) or body
        who = ec.person(
            NAME,
            customer_id=customer.get("id"),
            order_id=None,
            email=customer.get("email"),
            phone=customer.get("phone"),
            country_code=ec.country(customer.get("default_address"), customer.get("address")),
        )
        at = ec.timestamp(customer.get("updated_at"))
        consents = [
            dataclasses.replace(c, method="customer_opt_in")
            for c in ec.checkout_consent(who, customer.get("accepts_marketing"), at)
        ]
        return Translation(
            messages=[ec.identify(who, message_id=f"{NAME}:{ref}", at=at, platform=NAME)],
            consents=consents,
        )
    return Translation(known=False)
