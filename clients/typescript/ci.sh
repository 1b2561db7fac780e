#!/usr/bin/env bash
# CI of the TypeScript client: install from the lockfile, generate the code from ../../proto and
# compile, then run the tests against the real broker. Needs node and npm (and the npm registry)
# only; the server binary comes from SWITCHYARD_BIN.
set -euo pipefail

: "${SWITCHYARD_BIN:?SWITCHYARD_BIN must name the switchyard server binary (e.g. target/debug/switchyard)}"
# Absolute, relative to the caller's directory, since everything below runs from this one.
case "$SWITCHYARD_BIN" in
  /*) ;;
  *) SWITCHYARD_BIN="$PWD/$SWITCHYARD_BIN" ;;
esac
if [[ ! -x "$SWITCHYARD_BIN" ]]; then
  echo "ci.sh: SWITCHYARD_BIN=$SWITCHYARD_BIN is not an executable file" >&2
  exit 1
fi
export SWITCHYARD_BIN

cd "$(dirname "${BASH_SOURCE[0]}")"
echo "ci.sh: node $(node --version), npm $(npm --version)"

# --ignore-scripts: no dependency needs its install script (buf's binary comes in its platform
# package, and its postinstall only swaps a launcher), so installs behave the same on every npm.
npm ci --ignore-scripts --no-audit --no-fund
npm run format:check
# Regenerates src/gen from the schema with buf + ts-proto, then type-checks and compiles: a schema
# change that breaks the client fails here.
npm run build
npm run build:test
npm test
