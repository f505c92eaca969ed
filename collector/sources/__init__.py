"""Ways in: each turns a request into messages for the pipeline.

- ``browser``: CORS, beacons, GET pixels, the first-party tag and cookie, the
  request's own signals (``Sec-GPC``, the client address);
- ``webhooks``: order systems' signed webhooks (Shopify, WooCommerce,
  Shoplazza, SHOPLINE) mapped to Segment's e-commerce spec;
- ``wechat``: WeChat ids read from traits, ``session_key`` removed;
- ``cookies``: consent from the browser's CMP cookies (parsers in ``sdk_python.cmp``).
"""
