"""Order-system webhooks: one module per platform, ``POST /v1/webhooks/<source>``.

Each platform module verifies its own signature over the raw bytes, names the
delivery id it retries with, and maps payloads (pure) to Segment e-commerce
messages and marketing-consent evidence; ``endpoint`` does the rest once.
"""

from __future__ import annotations

from collector.sources.webhooks.base import Platform
from collector.sources.webhooks.shopify import Shopify
from collector.sources.webhooks.shoplazza import Shoplazza
from collector.sources.webhooks.shopline import Shopline
from collector.sources.webhooks.woocommerce import WooCommerce

PLATFORMS: dict[str, Platform] = {
    "shopify": Shopify(),
    "woocommerce": WooCommerce(),
    "shoplazza": Shoplazza(),
    "shopline": Shopline(),
}

__all__ = ["PLATFORMS", "Platform"]
