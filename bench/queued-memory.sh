#!/usr/bin/env bash
# Memory per queued message: fills one declared group with N messages of 128 bytes that nobody
# consumes, and reports the broker's resident memory before and after (VmRSS from /proc), per message.
# Usage: bash bench/queued-memory.sh [N]   (default 1,000,000; builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000000}
cargo build --release --quiet
bin=target/release/switchyard
work=$(mktemp -d)
"$bin" --listen 127.0.0.1:0 --ready-file "$work/ready.json" --default-max-length "$((count * 2))" >/dev/null 2>&1 &
broker=$!
trap 'kill "$broker" 2>/dev/null || true; rm -rf "$work"' EXIT
# The broker names the port the kernel gave it in its ready file once it serves.
for _ in $(seq 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
[ -s "$work/ready.json" ] || { echo "the broker did not start" >&2; exit 1; }
addr=$(python3 -c "import json; print(json.load(open('$work/ready.json'))['listen'])")
export SWITCHYARD_SERVER="http://$addr"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$broker/status"; }
"$bin" groups declare memory.test --group hold --max-length "$((count * 2))" >/dev/null
before=$(rss)
python3 -c "
import sys
line = 'x' * 128 + '\n'
sys.stdout.write(line * $count)" | "$bin" pub memory.test >/dev/null
sleep 1
after=$(rss)
"$bin" groups list
echo "messages: $count of 128 bytes; broker RSS before: $before kB, after: $after kB"
echo "per queued message: $(( (after - before) * 1024 / count )) bytes"
