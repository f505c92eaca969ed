"""Configuration: defaults run a collector; a typo stops start-up naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.config import Config, HttpDestinationConfig, JsonlDestinationConfig, parse
from collector.errors import ConfigError

FULL = """
[server]
host = "127.0.0.1"
port = 9999

[storage]
data_dir = "/tmp/x"
synchronous = "normal"

[privacy]
default_jurisdiction = "PIPL"
event_consent = "restrict_only"

[[sources]]
name = "storefront"
write_key_env = "SHOP_KEY"

[[destinations]]
name = "lake"
type = "jsonl"
purposes = ["analytics"]
region = "DE"
recipient = "Brand GmbH"
third_party = false
path = "/tmp/x/out"

[[destinations]]
name = "hook"
type = "http"
purposes = ["analytics", "marketing"]
url = "http://127.0.0.1:1/hook"
secret_env = "HOOK_SECRET"
"""


def test_defaults_run_a_collector() -> None:
    config = parse("")
    assert config.server.port == 8787
    assert config.storage.synchronous == "full"
    assert config.privacy.default_jurisdiction == "GDPR"
    [dest] = config.effective_destinations()
    assert isinstance(dest, JsonlDestinationConfig)
    assert dest.purposes == ["analytics"]
    assert dest.path == str(Path("consentry-data") / "out")
    [source] = config.effective_sources()
    assert source.write_key_env == "CONSENTRY_WRITE_KEY"


def test_design_shape_decodes() -> None:
    config = parse(FULL)
    assert isinstance(config, Config)
    lake, hook = config.effective_destinations()
    assert isinstance(lake, JsonlDestinationConfig) and lake.region == "DE"
    assert isinstance(hook, HttpDestinationConfig) and hook.purposes == ["analytics", "marketing"]
    assert config.privacy.event_consent == "restrict_only"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[server]\nprot = 1", "at server: Object contains unknown field `prot`"),
        ("[storage]\nsynchronous = 'off'", "at storage.synchronous"),
        (
            "[[destinations]]\nname='x'\ntype='jsonl'\npth='a'",
            "at destinations[0]: Object contains unknown field `pth`",
        ),
        ("[[destinations]]\nname='x'\ntype='ftp'", "at destinations[0].type"),
        (
            "[[destinations]]\nname='x'\ntype='jsonl'\npurposes=['analytic']",
            "unknown purpose 'analytic'",
        ),
        ("[[destinations]]\nname='x'\ntype='http'", "missing required field `url`"),
        (
            "[[destinations]]\nname='x'\ntype='jsonl'\n[[destinations]]\nname='x'\ntype='jsonl'",
            "used twice",
        ),
        ("[[sources]]\nname='s'", "give write_key or write_key_env"),
        ("[server]\nport = 70000", "at server.port"),
    ],
)
def test_bad_config_names_the_key(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert needle in str(info.value)


def test_serve_refuses_to_start_on_a_bad_file(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[privacy]\ndefault_jurisdictoin = 'GDPR'\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "collector.cli",
            "serve",
            "--config",
            str(cfg),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "default_jurisdictoin" in result.stderr and "privacy" in result.stderr
