"""Dependencies run only in the direction DESIGN.md gives."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "sdk_python": {"sdk_python", "identity.pseudonym", "identity.normalize", "identity.errors"},
    "identity": {"identity"},
    "consent": {"consent"},
    "collector": {"collector", "consent", "identity", "sdk_python"},
}
THIRD_PARTY = {
    "sdk_python": {"msgspec", "httpx"},
    "identity": {"cryptography", "phonenumbers", "msgspec"},
    "consent": {"msgspec", "cryptography"},
}
OURS = set(ALLOWED)


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_direction(package: str) -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    for path in (ROOT / package).rglob("*.py"):
        for name in imports(path):
            top = name.split(".")[0]
            if top in OURS:
                assert any(name == a or name.startswith(a + ".") for a in ALLOWED[package]), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )
            elif package in THIRD_PARTY and top not in stdlib and top != "__future__":
                assert top in THIRD_PARTY[package], f"{path.relative_to(ROOT)} imports {name}"


# Only these may speak SQL: the storage adapters (Consentry's own database),
# destinations writing to a user's warehouse, and the SDK's own spool.
SQL_DRIVERS = {"sqlite3", "psycopg", "psycopg2", "psycopg_pool"}
SQL_ALLOWED = ("collector/storage/", "collector/destinations/", "collector/delivery/destinations/")
SQL_ALLOWED_FILES = {"sdk_python/spool.py"}


def test_sql_only_in_storage_adapters() -> None:
    offenders = []
    for package in sorted(ALLOWED):
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith(SQL_ALLOWED) or rel in SQL_ALLOWED_FILES:
                continue
            drivers = {n.split(".")[0] for n in imports(path)} & SQL_DRIVERS
            if drivers:
                offenders.append(f"{rel} imports {', '.join(sorted(drivers))}")
    assert not offenders, "SQL outside collector/storage/: " + "; ".join(offenders)


# Inside collector, DESIGN's direction: sources and http over the pipeline over
# the storage ports; storage below everything; delivery and audit beside the
# pipeline, never through it. (module prefix, what it must not import)
# Outside storage/, only the backend selection (runtime, storage.open, the
# CLI's migrate-storage) names an adapter; everything else speaks the ports.
ADAPTERS = ("collector.storage.sqlite", "collector.storage.postgres")
LAYERS = {
    "collector/storage/": (
        "collector.pipeline",
        "collector.sources",
        "collector.http",
        "collector.cli",
        "collector.delivery",
        "collector.audit",
        "collector.runtime",
    ),
    "collector/pipeline/": (
        "collector.http",
        "collector.cli",
        "collector.delivery",
        "collector.audit",
        "collector.runtime",
        "collector.sources",
        *ADAPTERS,  # the ports only
    ),
    "collector/delivery/": (
        "collector.http",
        "collector.cli",
        "collector.sources",
        "collector.pipeline",
        *ADAPTERS,
    ),
    "collector/audit/": (
        "collector.http",
        "collector.cli",
        "collector.sources",
        "collector.pipeline",
        *ADAPTERS,
    ),
    "collector/sources/": ("collector.cli", "collector.http.app", *ADAPTERS),
    "collector/http/": ("collector.cli", *ADAPTERS),
    "collector/console/": ADAPTERS,
    "collector/dsr/": ADAPTERS,
}
# Known arrows against the direction, each to be moved (a new one fails):
LAYER_PENDING = {
    # pure helpers that live under sources/ but are pipeline steps' business
    ("collector/pipeline/prepare.py", "collector.sources.cookies"),
    ("collector/pipeline/pseudonymize.py", "collector.sources.wechat"),
    ("collector/pipeline/options.py", "collector.sources.wechat"),
}


def test_collector_layers_follow_the_flow() -> None:
    offenders = []
    for prefix, forbidden in LAYERS.items():
        for path in (ROOT / prefix).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            for name in imports(path):
                bad = [f for f in forbidden if name == f or name.startswith(f + ".")]
                if bad and (rel, name) not in LAYER_PENDING:
                    offenders.append(f"{rel} imports {name}")
    assert not offenders, "; ".join(offenders)


def test_every_cli_command_and_option_has_help() -> None:
    import argparse

    from collector.cli import parser

    def walk(p: argparse.ArgumentParser, trail: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                for name, child in action.choices.items():
                    assert name in helped, f"{trail} {name} lacks help"
                    walk(child, f"{trail} {name}")
            elif action.dest != "help":
                assert action.help, f"{trail} {action.dest} lacks help"

    walk(parser(), "consentry")
