"""SHOPLINE webhooks.

Signature (SHOPLINE developer docs, "Webhooks" overview, request headers,
https://developer.shopline.com/docs/apps/api-instructions-for-use/webhooks/overview,
and "Generate and verify signatures",
https://developer.shopline.com/docs/apps/api-instructions-for-use/generate-and-verify-signatures):
``X-Shopline-Hmac-Sha256`` is the HMAC-SHA256 of the raw request body keyed
with the app secret. The encoding is not stated consistently: the webhook
pages' example header is base64 (``XWmrwMey...4bM=``) while the signing guide's
procedure produces a hex digest. Both encodings are accepted; each is decoded
to the 32 digest bytes and compared in constant time, so neither weakens the
check. Headers used: ``X-Shopline-Topic``, ``X-Shopline-Webhook-Id``
("remains unchanged when the message is resent": our dedupe key),
``X-Shopline-Shop-Domain``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.sources.webhooks import ecommerce as ec
from collector.sources.webhooks.base import Delivery, Translation, matches_base64, matches_hex

NAME = "shopline"
SHAPE = ec.Shape(
    subtotal=("subtotal_price", "current_subtotal_price"),
    shipping=("total_shipping_price", "total_shipping_price_set"),
    discount=("total_discounts", "current_total_discounts"),
    product_name=("title", "name"),
)
_ORDERS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/edited",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "orders/refunded",
    }
)


class Shopline:
    name = NAME

    def verify(self, secret: bytes, body: bytes, headers: Mapping[str, str]) -> bool:
        header = headers.get("x-shopline-hmac-sha256")
        if header is not None and len(header.strip()) == 64:
            return matches_hex(secret, body, header)
        return matches_base64(secret, body, header)

    def delivery(self, headers: Mapping[str, str]) -> Delivery:
        return Delivery(
            topic=headers.get("x-shopline-topic", ""),
            delivery_id=headers.get("x-shopline-webhook-id") or None,
            shop=headers.get("x-shopline-shop-domain") or None,
        )

    def translate(self, delivery: Delivery, payload: Any) -> Translation:
        return translate(delivery, payload)


def order_event(topic: str, order: Mapping[str, Any]) -> str | None:
    financial = order.get("financial_status")
    if topic == "orders/cancelled" or order.get("cancelled_at"):
        return ec.CANCELLED
    if topic == "orders/refunded" or financial == "refunded":
        return ec.REFUNDED
    if topic == "orders/paid" or (topic == "orders/create" and financial == "paid"):
        return ec.COMPLETED
    return None if topic == "orders/create" else ec.UPDATED


def translate(delivery: Delivery, payload: Any) -> Translation:
    """Pure: one delivery's payload to messages and consent evidence."""
    if not isinstance(payload, Mapping):
        return Translation(known=False)
    ref = delivery.delivery_id or "no-id"
    if delivery.topic in _ORDERS:
        customer = ec.obj(payload.get("customer"))
        who = ec.person(
            NAME,
            customer_id=customer.get("id"),
            order_id=payload.get("id"),
            email=payload.get("email") or customer.get("email"),
            phone=payload.get("phone") or customer.get("phone"),
            country_code=ec.country(
                payload.get("billing_address"), payload.get("shipping_address")
            ),
        )
        at = ec.timestamp(payload.get("processed_at")) or ec.timestamp(payload.get("created_at"))
        accepted = payload.get("buyer_accepts_marketing", payload.get("buyer_accept_marketing"))
        consents = ec.checkout_consent(who, accepted, at)
        event = order_event(delivery.topic, payload)
        if event is None:
            return Translation(consents=consents)
        props = ec.order_properties(
            payload, shape=SHAPE, coupons=ec.coupon_codes(payload.get("discount_codes"))
        )
        mid = (
            f"{NAME}:{props.get('order_id')}:{event}"
            if event in (ec.COMPLETED, ec.CANCELLED, ec.REFUNDED)
            else f"{NAME}:{ref}"
        )
        when = at if event == ec.COMPLETED else ec.timestamp(payload.get("updated_at")) or at
        return Translation(
            messages=[ec.track(who, event, props, message_id=mid, at=when, platform=NAME)],
            consents=consents,
        )
    if delivery.topic in ("customers/create", "customers/update"):
        who = ec.person(
            NAME,
            customer_id=payload.get("id"),
            order_id=None,
            email=payload.get("email"),
            phone=payload.get("phone"),
            country_code=ec.country(payload.get("default_address")),
        )
        at = ec.timestamp(payload.get("updated_at"))
        consents = [
            *ec.state_consent(who, "email", payload.get("email_marketing_consent"), fallback_at=at),
            *ec.state_consent(who, "sms", payload.get("sms_marketing_consent"), fallback_at=at),
        ]
        return Translation(
            messages=[ec.identify(who, message_id=f"{NAME}:{ref}", at=at, platform=NAME)],
            consents=consents,
        )
    if delivery.topic == "customers/redact":
        return ec.redact(NAME, payload)
    return Translation(known=False)
