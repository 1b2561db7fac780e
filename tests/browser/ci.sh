#!/usr/bin/env bash
# CI of the dashboard: Debian's Chromium (installed through apt when /usr/bin/chromium is missing),
# playwright-core from the lockfile, then the test in headless Chromium against the real broker at
# $SWITCHYARD_BIN (default: the repository's target/debug/switchyard). Prints node's TAP report,
# whose `# pass N` and `# fail N` lines .ci/run counts.
set -euo pipefail

# Without SWITCHYARD_BIN, the repository's debug build.
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/switchyard-bin.sh" \
  "$(dirname "${BASH_SOURCE[0]}")/../../target/debug/switchyard"

cd "$(dirname "${BASH_SOURCE[0]}")"

chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x "$chromium" ]]; then
  # As root, apt-get itself; otherwise sudo, but only if it needs no password (-n): a CI job
  # cannot answer a prompt, and should say why it stopped rather than hang.
  if [[ "$(id -u)" -eq 0 ]]; then
    apt=(apt-get)
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
  else
    echo "ci.sh: no Chromium at $chromium, and no root or passwordless sudo to install it:" >&2
    echo "       apt-get install chromium chromium-driver, or set CHROMIUM to a Chromium binary" >&2
    exit 1
  fi
  echo "ci.sh: installing Debian's chromium"
  "${apt[@]}" update -qq
  # Without its recommends (a printer dialog, a notification daemon), but with the fonts it would
  # otherwise lack.
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends \
    chromium chromium-driver fonts-liberation >/dev/null
fi
echo "ci.sh: node $(node --version), $("$chromium" --version 2>/dev/null)"

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
# TAP whether or not stdout is a terminal, so the summary lines are always there to count.
node --test --test-reporter=tap
