"""What every command shares: ``--config``/``--data-dir``, loading the
configuration, and printing a failure."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from collector import config as config_mod
from collector.errors import UsageError


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file (every section optional)")
    p.add_argument("--data-dir", help="data directory (overrides [storage] data_dir)")


def load(args: argparse.Namespace) -> config_mod.Config:
    return config_mod.load(args.config, data_dir=args.data_dir)


def cli_time(argument: str, value: str) -> datetime:
    """An ISO 8601 command-line time (a value without a zone is UTC); a
    UsageError naming the argument otherwise."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(
            f"{argument} {value!r} is not an ISO 8601 time (e.g. 2026-05-01 or"
            " 2026-05-01T12:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def fail(message: str, code: int = 2) -> int:
    print(f"consentry: {message}", file=sys.stderr)
    return code
