#!/usr/bin/env bash
# CI of the Python client: a virtualenv from PyPI, the package with its test extra, the stubs checked
# against proto/, ruff and mypy, then pytest against the real broker at $SWITCHYARD_BIN (required).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/switchyard-bin.sh"

cd "$(dirname "$0")"
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

echo "== venv (clients/python/.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv || {
    echo "python3 -m venv failed: on Debian/Ubuntu install python3-venv" >&2
    exit 1
  }
fi
.venv/bin/python -m pip install --quiet --editable ".[test]"

echo "== stubs match proto/"
.venv/bin/python scripts/generate.py --check

echo "== ruff, mypy"
.venv/bin/python -m ruff format --check
.venv/bin/python -m ruff check
.venv/bin/python -m mypy

echo "== pytest"
status=0
# -v: every test's name and result on a line of its own, so the log says which passed, before
# pytest's closing summary line.
.venv/bin/python -m pytest -v || status=$?
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure here" >&2
  exit 1
fi
exit "$status"
