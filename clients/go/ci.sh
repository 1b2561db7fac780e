#!/usr/bin/env bash
# CI for the Go client: modules, the generated-code check, formatting, vet, and the tests against the
# real broker binary named by SWITCHYARD_BIN (required). Needs only go, python3 and the package
# registries; installs what else it needs under .bin and .venv (see generate.sh).
set -euo pipefail
# The tests run in this directory, so a path relative to the caller's is made absolute first.
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/switchyard-bin.sh"
cd "$(dirname "$0")"

echo "== go mod download"
go mod download

echo "== generate.sh --check"
./generate.sh --check </dev/null

echo "== gofmt"
unformatted=$(gofmt -l .)
if [[ -n $unformatted ]]; then
  echo "not gofmt-ed:" >&2
  echo "$unformatted" >&2
  exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
go test -count=1 -timeout 5m -v ./... 2>&1 | tee "$log" || status=$?
# One closing line for the lead's CI summary: top-level tests only (subtests are indented).
awk '/^--- PASS/ { passed++ } /^--- FAIL/ { failed++ } END { printf "go client tests: %d passed, %d failed\n", passed, failed }' "$log"
exit "$status"
