"""What every command shares: ``--config``/``--data-dir``, loading the
configuration, and printing a failure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from collector import config as config_mod


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML configuration file (every section optional)")
    p.add_argument("--data-dir", help="data directory (overrides [storage] data_dir)")


def load(args: argparse.Namespace) -> config_mod.Config:
    return config_mod.load(args.config, data_dir=args.data_dir)


def fail(message: str, code: int = 2) -> int:
    print(f"consentry: {message}", file=sys.stderr)
    return code
