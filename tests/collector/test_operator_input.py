"""Operator input (issue 13 case 12): every CLI error is one line naming the
argument or key, with a non-zero exit; `config` checks what `serve` checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from identity.keyring import new_master_key

POSTGRES_DEST = """
[[destinations]]
name = "warehouse"
type = "postgres"
purposes = ["analytics"]
dsn_env = "MESSY_UNSET_WAREHOUSE_DSN"
table = "events"
"""


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "collector.cli", *args]
    environ = {
        **os.environ,
        "CONSENTRY_WRITE_KEY": "k",
        "CONSENTRY_MASTER_KEY": new_master_key(),
        **(env or {}),
    }
    environ.pop("MESSY_UNSET_WAREHOUSE_DSN", None)
    return subprocess.run(
        cmd, capture_output=True, text=True, env=environ, timeout=60, cwd=tmp_path
    )


def _one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with a database (as `serve` leaves it)."""
    path = tmp_path / "data"
    done = _run(tmp_path, "keys", "init", "--data-dir", str(path))
    assert done.returncode == 0, done.stderr
    done = _run(tmp_path, "db", "migrate", "--data-dir", str(path))
    assert done.returncode == 0, done.stderr
    return path


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["audit", "export", "--from", "yesterday"], ["--from", "ISO 8601"]),
        (["audit", "export", "--to", "soon"], ["--to"]),
        (["outbox", "replay", "lake", "--since", "garbage"], ["--since"]),
        (["outbox", "replay", "nope"], ["nope", "lake"]),
        (["outbox", "purge", "nope", "--dead"], ["nope"]),
        (["config", "--config", "missing.toml"], ["--config", "missing.toml"]),
        (["outbox", "replay"], ["destination"]),
        (["audit", "export", "--format", "xml"], ["--format", "csv"]),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path, data_dir: Path, args: list[str], needles: list[str]
) -> None:
    _one_line_error(_run(tmp_path, *args, "--data-dir", str(data_dir)), *needles)


def test_config_checks_what_serve_checks(tmp_path: Path) -> None:
    (tmp_path / "gpdr.toml").write_text('[privacy]\ndefault_jurisdiction = "GPDR"\n')
    done = _run(tmp_path, "config", "--config", "gpdr.toml", "--data-dir", "d")
    _one_line_error(done, "GPDR")
    served = _run(tmp_path, "serve", "--config", "gpdr.toml", "--data-dir", "d", "--port", "0")
    _one_line_error(served, "GPDR")
    (tmp_path / "pg.toml").write_text(POSTGRES_DEST)
    for command in (["config"], ["serve", "--port", "0"]):
        done = _run(tmp_path, *command, "--config", "pg.toml", "--data-dir", "d2")
        _one_line_error(done, "MESSY_UNSET_WAREHOUSE_DSN", "dsn_env")
        assert "listening" not in done.stdout


def test_master_key_is_made_only_inside_the_data_dir_or_when_asked(tmp_path: Path) -> None:
    outside = tmp_path / "etc" / "master.key"
    (tmp_path / "keys.toml").write_text(f'[keys]\nmaster_key_file = "{outside}"\n')
    env = {"CONSENTRY_MASTER_KEY": ""}
    done = _run(
        tmp_path, "serve", "--config", "keys.toml", "--data-dir", "d", "--port", "0", env=env
    )
    _one_line_error(done, str(outside), "keys init")
    assert not outside.exists()
    done = _run(tmp_path, "keys", "init", "--config", "keys.toml", "--data-dir", "d", env=env)
    assert done.returncode == 0, done.stderr
    assert outside.exists() and outside.stat().st_mode & 0o777 == 0o600
    # Inside the data directory (the default place) it is made on first start.
    done = _run(tmp_path, "keys", "status", "--data-dir", "d3", env=env)
    _one_line_error(done)  # status never creates
    assert not (tmp_path / "d3" / "master.key").exists()
