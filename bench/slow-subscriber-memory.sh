#!/usr/bin/env bash
# Memory per slow subscriber at the default buffer bounds: starts K `switchyard sub` processes, stops
# them (SIGSTOP: they still hold their connection but read nothing, like a stalled consumer), publishes
# N messages of P bytes that every one of them matches, and reports the broker's resident memory before
# and after (VmRSS from /proc), per subscriber. Past the bounds (65,536 messages or 64 MiB per
# subscriber by default) newer messages are dropped for a subscriber and later reported as a Gap, so
# the growth stops there whatever N is. The subscribers share the messages themselves, so the figure
# per subscriber is their own queue (and HTTP/2 buffers), plus the shared messages divided by K.
# Usage: bash bench/slow-subscriber-memory.sh [K] [N] [P] [extra serve flags...]
#        (defaults 4 subscribers, 100,000 messages, 128 bytes; builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
subscribers=${1:-4}
count=${2:-100000}
payload=${3:-128}
shift $(( $# < 3 ? $# : 3 ))
cargo build --release --quiet
bin=target/release/switchyard
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --listen 127.0.0.1:0 --ready-file "$work/ready.json" "$@" >/dev/null 2>&1 &
broker=$!
pids+=("$broker")
for _ in $(seq 100); do [ -s "$work/ready.json" ] && break; sleep 0.1; done
[ -s "$work/ready.json" ] || { echo "the broker did not start" >&2; exit 1; }
addr=$(python3 -c "import json; print(json.load(open('$work/ready.json'))['listen'])")
export SWITCHYARD_SERVER="http://$addr"
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$broker/status"; }
for i in $(seq "$subscribers"); do
  "$bin" sub 'memory.>' >/dev/null 2>"$work/sub-$i.err" &
  pids+=("$!")
done
# Each prints "subscribed" on stderr once its subscription is active.
for i in $(seq "$subscribers"); do
  for _ in $(seq 100); do grep -q subscribed "$work/sub-$i.err" && break; sleep 0.1; done
  grep -q subscribed "$work/sub-$i.err" || { echo "subscriber $i did not subscribe" >&2; exit 1; }
done
for pid in "${pids[@]:1}"; do kill -STOP "$pid"; done
sleep 1
before=$(rss)
python3 -c "
import sys
line = b'x' * $payload + b'\n'
for _ in range($count):
    sys.stdout.buffer.write(line)" | "$bin" pub memory.test >/dev/null
sleep 2
after=$(rss)
echo "subscribers: $subscribers stopped; messages: $count of $payload bytes; serve flags: ${*:-(defaults)}"
echo "broker RSS before: $before kB, after: $after kB, growth: $(( after - before )) kB"
echo "per slow subscriber: $(( (after - before) / subscribers )) kB"
