#!/usr/bin/env bash
# Set up (once) and run the whole test suite: lint, format check, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
# Browser tests drive Debian's Chromium through Playwright (its own browser
# download cannot work on these machines); install the package when missing.
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# mypy checks the packages listed in pyproject [tool.mypy], tests included.
.venv/bin/mypy
# pytest exits 5 when it collects nothing; set -e turns that into a failure.
.venv/bin/pytest "$@"
