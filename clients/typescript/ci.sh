#!/usr/bin/env bash
# CI of the TypeScript client: install from the lockfile, generate the code from ../../proto and
# compile, then run the tests against the real broker. Needs node and npm (and the npm registry)
# only; the server binary comes from SWITCHYARD_BIN.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/switchyard-bin.sh"

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
