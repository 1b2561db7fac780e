#!/usr/bin/env bash
# The kill -9 crash loop of the durable broker, run long: tests/crash.rs with many cycles. Each
# cycle starts `switchyard serve --data-dir DIR` on one data directory, runs publishers and
# consumers of a declared queue group against it, and SIGKILLs it after 150 to 700 ms; a last start
# drains the group. The history is then checked: lost, unexpected and delivered-after-ack must be
# 0, every redelivery must have attempt > 1, every publish that returned OK must end acked (or
# named in an Ack that was sent when the kill cut off its answer).
# Usage: bash bench/crash-soak.sh [CYCLES]   (default 200; SWITCHYARD_TEST_SEED=N replays a run's
# choices). A cycle takes about 0.6 s in release mode on 2 cores, so 200 take about 2 to 3 minutes
# after the build (an estimate, not a measurement). Prints the seed first and one
# summary line at the end; the suite runs the same test with 10 cycles.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles=${1:-200}
if ! [[ $cycles =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: bash bench/crash-soak.sh [CYCLES]   (a positive whole number; got '$cycles')" >&2
    exit 2
fi
export SWITCHYARD_CRASH_CYCLES=$cycles
exec cargo test --locked --release --test crash -- \
    --exact acknowledged_work_survives_kill_9_in_a_loop --nocapture
