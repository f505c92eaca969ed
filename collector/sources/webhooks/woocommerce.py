"""WooCommerce webhooks.

Signature (WooCommerce REST API docs, "Webhooks", and ``WC_Webhook::
generate_signature``): ``X-WC-Webhook-Signature`` is the base64 HMAC-SHA256 of
the raw request body keyed with the webhook's secret. Headers used:
``X-WC-Webhook-Topic`` (``order.created``, ``customer.updated``, ...),
``X-WC-Webhook-Delivery-ID`` (our dedupe key), ``X-WC-Webhook-Source``.

When a webhook is saved WooCommerce pings the URL with the form body
``webhook_id=<n>`` and no signature; that ping is acknowledged and nothing is
stored (``is_ping``).

Orders: status ``processing``/``completed`` with a payment date is Order
Completed, ``cancelled`` Order Cancelled, ``refunded`` Order Refunded, other
updates Order Updated. WooCommerce core records no marketing consent, so none
is read from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from collector.sources.webhooks import ecommerce as ec
from collector.sources.webhooks.base import Delivery, Translation, matches_base64

NAME = "woocommerce"
SHAPE = ec.Shape(
    subtotal=(),
    shipping=("shipping_total",),
    discount=("discount_total",),
    product_name=("name",),
)
_PING = re.compile(rb"^webhook_id=\d{1,20}$")


def is_ping(body: bytes) -> bool:
    return _PING.match(body.strip()) is not None


class WooCommerce:
    name = NAME

    def verify(self, secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
        return matches_base64(secret, body, headers.get("x-wc-webhook-signature"))

    def delivery(self, headers: Mapping[str, str]) -> Delivery:
        return Delivery(
            topic=headers.get("x-wc-webhook-topic", ""),
            delivery_id=headers.get("x-wc-webhook-delivery-id") or None,
            shop=headers.get("x-wc-webhook-source") or None,
        )

    def translate(self, delivery: Delivery, payload: Any) -> Translation:
        return translate(delivery, payload)


def order_event(topic: str, order: Mapping[str, Any]) -> str | None:
    status = order.get("status")
    if status == "cancelled":
        return ec.CANCELLED
    if status == "refunded":
        return ec.REFUNDED
    if status in ("processing", "completed") and order.get("date_paid_gmt", order.get("date_paid")):
        return ec.COMPLETED
    return ec.UPDATED if topic == "order.updated" else None


def translate(delivery: Delivery, payload: Any) -> Translation:
    """Pure: one delivery's payload to messages."""
    if not isinstance(payload, Mapping):
        return Translation(known=False)
    ref = delivery.delivery_id or "no-id"
    if delivery.topic in ("order.created", "order.updated"):
        billing = ec.obj(payload.get("billing"))
        who = ec.person(
            NAME,
            customer_id=payload.get("customer_id"),
            order_id=payload.get("id"),
            email=billing.get("email"),
            phone=billing.get("phone"),
            country_code=ec.country(billing, payload.get("shipping")),
        )
        event = order_event(delivery.topic, payload)
        if event is None:
            return Translation()
        items = ec.objects(payload.get("line_items"))
        coupons = [
            c["code"]
            for c in ec.objects(payload.get("coupon_lines"))
            if isinstance(c.get("code"), str)
        ]
        props = ec.order_properties(payload, shape=SHAPE, total_key="total", coupons=coupons)
        subtotals = [ec.money(i.get("subtotal")) for i in items]
        if subtotals and all(s is not None for s in subtotals):
            props["subtotal"] = float(round(sum(s for s in subtotals if s is not None), 2))
        paid = ec.timestamp(_utc(payload.get("date_paid_gmt")))
        changed = ec.timestamp(_utc(payload.get("date_modified_gmt")))
        mid = (
            f"{NAME}:{props.get('order_id')}:{event}"
            if event in (ec.COMPLETED, ec.CANCELLED, ec.REFUNDED)
            else f"{NAME}:{ref}"
        )
        at = paid if event == ec.COMPLETED else changed
        return Translation(
            messages=[ec.track(who, event, props, message_id=mid, at=at, platform=NAME)]
        )
    if delivery.topic in ("customer.created", "customer.updated"):
        billing = ec.obj(payload.get("billing"))
        who = ec.person(
            NAME,
            customer_id=payload.get("id"),
            order_id=None,
            email=payload.get("email") or billing.get("email"),
            phone=billing.get("phone"),
            country_code=ec.country(billing, payload.get("shipping")),
        )
        at = ec.timestamp(_utc(payload.get("date_modified_gmt")))
        return Translation(
            messages=[ec.identify(who, message_id=f"{NAME}:{ref}", at=at, platform=NAME)]
        )
    return Translation(known=False)


def _utc(value: object) -> object:
    """WooCommerce's ``*_gmt`` fields are UTC without an offset."""
    if isinstance(value, str) and value and not value.endswith(("Z", "+00:00")):
        return value + "+00:00"
    return value
