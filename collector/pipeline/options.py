"""What the preparing steps are configured with (built from the Config by the runtime)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collector.config import DestinationConfig
from collector.pipeline import scrub as pii_scrub
from collector.sources.wechat import WechatKeys


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Destinations (in order), the consent category map, personal-information
    rules (field -> category), the country -> jurisdiction map, the person's
    extra personal fields, the PII scan policy and the WeChat keys."""

    destinations: Sequence[DestinationConfig]
    category_map: Mapping[str, tuple[str, ...]]
    pi_rules: Mapping[str, str]
    country_jurisdictions: Mapping[str, str]
    pii_fields: Sequence[str] = ()
    # Personal data anywhere in properties/traits/context (None: scan off).
    scrub: pii_scrub.ScrubPolicy | None = pii_scrub.DEFAULT_POLICY
    # WeChat openid/unionid in traits: linked identifiers (None: not read).
    wechat: WechatKeys | None = None
