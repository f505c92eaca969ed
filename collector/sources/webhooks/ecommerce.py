"""Order-system payloads to Segment's e-commerce spec v2 (pure).

Source: Segment, "Spec: V2 Ecommerce Events", Order Completed / Order Updated /
Order Refunded / Order Cancelled; properties ``order_id``, ``total``,
``subtotal``, ``revenue`` (excluding shipping and tax), ``shipping``, ``tax``,
``discount``, ``coupon``, ``currency`` and ``products[]`` (``product_id``,
``sku``, ``name``, ``price``, ``quantity``, ``category``).

Every function here is a function of its inputs: no clock, no I/O. The raw
email and phone stay in the returned messages only until the pipeline's
pseudonymize step, which runs before anything is stored.

Identity: an order system's customer id is not the brand's ``userId`` (the
OneID graph allows one ``user_id`` per person), so it becomes the anonymous id
``<platform>:customer:<id>``; a guest checkout is ``<platform>:order:<id>``.
Email and phone are linked identifiers through ``context.traits``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from collector.sources.webhooks.base import Erasure, MarketingConsent, Translation

COMPLETED = "Order Completed"
UPDATED = "Order Updated"
REFUNDED = "Order Refunded"
CANCELLED = "Order Cancelled"
LIBRARY = {"name": "consentry-webhooks", "version": "1"}


@dataclass(frozen=True, slots=True)
class Shape:
    """Where a Shopify-like platform keeps each value (first key present wins)."""

    subtotal: tuple[str, ...] = ("subtotal_price", "current_subtotal_price")
    shipping: tuple[str, ...] = ("total_shipping", "total_shipping_price")
    discount: tuple[str, ...] = ("total_discounts", "current_total_discounts")
    product_name: tuple[str, ...] = ("title", "name", "product_title")
    category: tuple[str, ...] = ("product_type", "category")
    accepts_marketing: tuple[str, ...] = ("buyer_accepts_marketing",)


def money(value: object) -> float | None:
    """A price as platforms send it (``"9.99"``, 9.99, or a Shopify money set
    ``{"shop_money": {"amount": "9.99"}}``) as a number; None when absent or junk."""
    if isinstance(value, Mapping):
        shop = value.get("shop_money")
        value = shop.get("amount") if isinstance(shop, Mapping) else None
    if isinstance(value, bool) or value is None:
        return None
    amount: float | None = None
    if isinstance(value, int | float):
        amount = float(value)
    elif isinstance(value, str):
        try:
            amount = float(Decimal(value.strip()))
        except (InvalidOperation, OverflowError):
            return None
    return amount if amount is not None and math.isfinite(amount) else None


def obj(value: object) -> Mapping[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, Mapping) else {}


def objects(value: object) -> list[Mapping[str, Any]]:
    """The objects of a JSON array; anything else (a number, a string, an
    object where a list belongs) is no list at all: platforms send junk too."""
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, Mapping)]


def first(data: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = data.get(key)
        if value is not None and value != "":
            return value
    return None


def text(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | str):
        out = str(value).strip()
        return out or None
    return None


def country(*addresses: object) -> str | None:
    """ISO 3166-1 alpha-2 from the first address that has one (billing first)."""
    for address in addresses:
        if isinstance(address, Mapping):
            code = first(address, ("country_code", "country"))
            if isinstance(code, str) and len(code.strip()) == 2 and code.strip().isalpha():
                return code.strip().upper()
    return None


def timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def coupon_codes(codes: object) -> list[str]:
    """``[{"code": "SPRING"}, ...]`` to ``["SPRING", ...]``."""
    if not isinstance(codes, list):
        return []
    return [c["code"] for c in codes if isinstance(c, Mapping) and isinstance(c.get("code"), str)]


def product(item: Mapping[str, Any], shape: Shape) -> dict[str, Any]:
    out: dict[str, Any] = {}
    product_id = text(item.get("product_id"))
    if product_id is not None:
        out["product_id"] = product_id
    sku = text(item.get("sku"))
    if sku is not None:
        out["sku"] = sku
    name = first(item, shape.product_name)
    if isinstance(name, str):
        out["name"] = name
    price = money(item.get("price"))
    if price is not None:
        out["price"] = price
    quantity = item.get("quantity")
    if isinstance(quantity, int) and not isinstance(quantity, bool):
        out["quantity"] = quantity
    category = first(item, shape.category)
    if isinstance(category, str):
        out["category"] = category
    return out


def _round(value: float) -> float:
    return round(value, 2)


def order_properties(
    order: Mapping[str, Any],
    *,
    shape: Shape,
    total_key: str = "total_price",
    tax_key: str = "total_tax",
    currency_key: str = "currency",
    coupons: Sequence[str] = (),
    line_items: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The spec's order properties; absent values are left out, not invented."""
    props: dict[str, Any] = {}
    order_id = text(order.get("id"))
    if order_id is not None:
        props["order_id"] = order_id
    total = money(order.get(total_key))
    subtotal = money(first(order, shape.subtotal))
    tax = money(order.get(tax_key))
    shipping = money(first(order, shape.shipping))
    if shipping is None:
        lines = order.get("shipping_lines")
        if isinstance(lines, list) and lines:
            prices = [money(line.get("price")) for line in lines if isinstance(line, Mapping)]
            shipping = _round(sum(p for p in prices if p is not None))
    discount = money(first(order, shape.discount))
    for key, value in (
        ("total", total),
        ("subtotal", subtotal),
        ("tax", tax),
        ("shipping", shipping),
        ("discount", discount),
    ):
        if value is not None:
            props[key] = value
    if total is not None:
        props["revenue"] = _round(total - (shipping or 0.0) - (tax or 0.0))
    if coupons:
        props["coupon"] = ",".join(coupons)
    currency = order.get(currency_key)
    if isinstance(currency, str) and currency:
        props["currency"] = currency.upper()
    items = line_items if line_items is not None else order.get("line_items")
    if isinstance(items, list):
        props["products"] = [product(i, shape) for i in items if isinstance(i, Mapping)]
    return props


@dataclass(frozen=True, slots=True)
class Person:
    """Who an order or customer payload is about (raw values, in memory only)."""

    anonymous_id: str
    email: str | None = None
    phone: str | None = None
    country: str | None = None

    def traits(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.email:
            out["email"] = self.email
        if self.phone:
            out["phone"] = self.phone
        return out

    def context(self) -> dict[str, Any]:
        ctx: dict[str, Any] = {"library": dict(LIBRARY)}
        traits = self.traits()
        if traits:
            ctx["traits"] = traits
        if self.country:
            ctx["location"] = {"country": self.country}
        return ctx


def person(
    platform: str,
    *,
    customer_id: object,
    order_id: object,
    email: object,
    phone: object,
    country_code: str | None,
) -> Person:
    cid = text(customer_id)
    if cid is not None and cid != "0":
        anon = f"{platform}:customer:{cid}"
    else:
        anon = f"{platform}:order:{text(order_id) or 'unknown'}"
    return Person(
        anonymous_id=anon,
        email=email.strip() if isinstance(email, str) and email.strip() else None,
        phone=phone.strip() if isinstance(phone, str) and phone.strip() else None,
        country=country_code,
    )


def track(
    who: Person,
    event: str,
    properties: Mapping[str, Any],
    *,
    message_id: str,
    at: datetime | None,
    platform: str,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "anonymousId": who.anonymous_id,
        "messageId": message_id,
        "properties": dict(properties),
        "context": {**who.context(), "integration": {"name": platform}},
    }
    if at is not None:
        message["timestamp"] = at.isoformat()
    return message


def identify(who: Person, *, message_id: str, at: datetime | None, platform: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "identify",
        "anonymousId": who.anonymous_id,
        "messageId": message_id,
        "traits": who.traits(),
        "context": {**who.context(), "integration": {"name": platform}},
    }
    message["context"].pop("traits", None)
    if at is not None:
        message["timestamp"] = at.isoformat()
    return message


def checkout_consent(who: Person, accepted: object, at: datetime | None) -> list[MarketingConsent]:
    """A ticked marketing checkbox at checkout is a grant; an unticked one is no
    evidence either way (the person may have subscribed elsewhere)."""
    if accepted is not True:
        return []
    return [
        MarketingConsent(
            granted=True,
            method="checkout_checkbox",
            given_at=at,
            channel="email" if who.email else "sms",
            email=who.email,
            phone=who.phone,
            anonymous_id=who.anonymous_id,
            jurisdiction_country=who.country,
        )
    ]


def state_consent(
    who: Person, channel: str, consent: object, *, fallback_at: datetime | None = None
) -> list[MarketingConsent]:
    """Shopify-style ``{state, opt_in_level, consent_updated_at}``: ``subscribed``
    is a grant, ``unsubscribed`` a withdrawal; other states are no evidence."""
    if not isinstance(consent, Mapping):
        return []
    state = consent.get("state")
    if state not in ("subscribed", "unsubscribed"):
        return []
    level = consent.get("opt_in_level")
    return [
        MarketingConsent(
            granted=state == "subscribed",
            method=level if isinstance(level, str) and level else f"{channel}_{state}",
            given_at=timestamp(consent.get("consent_updated_at")) or fallback_at,
            channel=channel,
            email=who.email,
            phone=who.phone,
            anonymous_id=who.anonymous_id,
            jurisdiction_country=who.country,
        )
    ]


def redact(platform: str, payload: Mapping[str, Any]) -> Translation:
    """``customers/redact`` (Shopify's mandatory privacy webhook, also SHOPLINE's):
    ``{"customer": {"id", "email", "phone"}, "orders_to_redact": [...]}`` becomes
    an erasure of everyone those identifiers reach (GDPR Art. 17)."""
    customer = obj(payload.get("customer"))
    who = person(
        platform,
        customer_id=customer.get("id"),
        order_id=None,
        email=customer.get("email"),
        phone=customer.get("phone"),
        country_code=None,
    )
    known_id = text(customer.get("id")) not in (None, "0")
    return Translation(
        erase=Erasure(
            email=who.email,
            phone=who.phone,
            anonymous_id=who.anonymous_id if known_id else None,
        )
    )
