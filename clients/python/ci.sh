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

echo "== the wheel: the package and its licence metadata"
wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
.venv/bin/python -m pip wheel --quiet --no-deps --wheel-dir "$wheels" .
.venv/bin/python - "$wheels" <<'PY'
import pathlib, sys, zipfile

(wheel,) = pathlib.Path(sys.argv[1]).glob("switchyard_client-*.whl")
names = zipfile.ZipFile(wheel).namelist()
metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
text = zipfile.ZipFile(wheel).read(metadata).decode()
assert "License-Expression: Apache-2.0" in text, "no licence in the wheel's metadata"
assert "switchyard/_client.py" in names and "switchyard/v1/broker_pb2.py" in names, names
print(f"{wheel.name}: {len(names)} files, License-Expression: Apache-2.0")
PY

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
