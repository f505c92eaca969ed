"""`consentry config`: validate a configuration and print it with its defaults."""

from __future__ import annotations

import argparse

import msgspec

from collector.cli.common import add_common, load


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("config", help="validate a configuration and print it with defaults")
    add_common(c)
    c.set_defaults(fn=cmd_check_config)


def cmd_check_config(args: argparse.Namespace) -> int:
    from collector.runtime import validate

    cfg = load(args)
    validate(cfg)  # exactly what serve checks before it starts
    print(msgspec.json.format(msgspec.json.encode(cfg)).decode())
    return 0
