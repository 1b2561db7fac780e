#!/usr/bin/env bash
# The consumer churn soak: several publishers of unique ids, four consumers of which one is killed
# abruptly every 1 to 3 s (a `switchyard consume` process by SIGKILL, an in-process consumer's
# connection dropped, a Rust client consumer's task aborted) and replaced, then a full drain, checked
# as a total queue: lost and unexpected must be 0, duplicates at most kills x prefetch.
# Usage: bash bench/soak.sh [SECONDS]   (default 180; SWITCHYARD_TEST_SEED=N replays a run's choices)
# Builds the test profile (the one `cargo test` uses) and prints one line of figures at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export SWITCHYARD_SOAK_SECS=${1:-180}
exec cargo test --locked --test faults_churn -- --ignored --exact soak --nocapture
