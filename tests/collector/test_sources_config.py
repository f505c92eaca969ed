"""[[sources]] types, secrets and [browser]: a mistake is an error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.config import SourceConfig, parse
from collector.errors import ConfigError
from collector.sources.webhooks.endpoint import load_secret


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[[sources]]\nname = "s"\ntype = "shopify"\n', "sources[0]: a shopify source needs"),
        ('[[sources]]\nname = "s"\ntype = "magento"\nsecret_env = "X"\n', "sources[0].type"),
        ('[[sources]]\nname = "s"\nwrite_key = "k"\nsecret_env = "X"\n', "sources[0]: secret_env"),
        (
            '[[sources]]\nname = "s"\ntype = "woocommerce"\nsecret_env = "X"\nallowed_origins = ["https://a.example"]\n',
            "remove write_key",
        ),
        (
            '[[sources]]\nname = "s"\nwrite_key = "k"\nallowed_origins = ["shop.example"]\n',
            "allowed_origins",
        ),
        ('[server]\ntrusted_proxies = ["10.0.0.300"]\n', "server.trusted_proxies[0]"),
        ('[browser]\ncookie_purpose = "tracking"\n', "browser.cookie_purpose"),
        ('[browser]\nrate_limit_per_ip = "lots"\n', "browser.rate_limit_per_ip"),
        ("[browser]\ncookies = true\n", "browser"),
        (
            '[[sources]]\nname = "s"\nwrite_key = "a"\n[[sources]]\nname = "s"\nwrite_key = "b"\n',
            "used twice",
        ),
    ],
)
def test_source_config_errors_name_the_key(text: str, where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
        parse(text)


def test_valid_sources_parse() -> None:
    config = parse(
        '[server]\ntrusted_proxies = ["10.0.0.0/8", "::1"]\n'
        '[[sources]]\nname = "web"\nwrite_key = "k"\nallowed_origins = ["https://shop.example"]\n'
        '[[sources]]\nname = "store"\ntype = "shoplazza"\nsecret_env = "S"\n'
    )
    assert [s.type for s in config.sources] == ["http_api", "shoplazza"]


def test_secret_file_must_be_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret"
    path.write_text("s3cret\n")
    path.chmod(0o644)
    source = SourceConfig(name="store", type="shopify", secret_file=str(path))
    with pytest.raises(ConfigError, match="readable by others"):
        load_secret(source)
    path.chmod(0o600)
    assert load_secret(source) == b"s3cret"
    monkeypatch.setenv("STORE_SECRET", "from-env")
    env = SourceConfig(name="store", type="shopify", secret_env="STORE_SECRET")
    assert load_secret(env) == b"from-env"
    monkeypatch.delenv("STORE_SECRET")
    with pytest.raises(ConfigError, match="STORE_SECRET is not set"):
        load_secret(env)
