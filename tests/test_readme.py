"""The README's configuration examples are a contract: each must parse."""

from __future__ import annotations

import re
from pathlib import Path

from collector.config import parse


def test_readme_config_examples_parse() -> None:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    examples = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert examples, "the README lost its configuration example"
    configs = [
        parse(example, where=f"README.md toml block {i}") for i, example in enumerate(examples)
    ]
    # The full example (the one with destinations) keeps its four destinations.
    [full] = [c for c in configs if c.destinations]
    assert [d.name for d in full.effective_destinations()] == ["lake", "warehouse", "cdp", "hook"]
