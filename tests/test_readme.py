"""The README's configuration example is a contract: it must parse."""

from __future__ import annotations

import re
from pathlib import Path

from collector.config import parse


def test_readme_config_example_parses() -> None:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    [example] = re.findall(r"```toml\n(.*?)```", text, re.S)
    config = parse(example, where="README.md")
    assert [d.name for d in config.effective_destinations()] == ["lake", "warehouse", "cdp", "hook"]
