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
# What `npm pack` ships (the build above stands in for its prepack): the compiled code and its types.
npm pack --dry-run --json --ignore-scripts | node -e '
  const files = JSON.parse(require("fs").readFileSync(0, "utf8"))[0].files.map((f) => f.path);
  for (const wanted of ["dist/index.js", "dist/index.d.ts", "package.json"]) {
    if (!files.includes(wanted)) {
      console.error(`npm pack: the package lacks ${wanted}: ${files.join(", ")}`);
      process.exit(1);
    }
  }
  console.log(`npm pack: ${files.length} files, dist/index.js and its types among them`);
'
npm test
