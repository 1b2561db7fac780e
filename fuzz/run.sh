#!/usr/bin/env bash
# Runs every fuzz target for a while, SECONDS each (default 60), and prints one line per target with
# how many inputs it ran. Needs the nightly toolchain; installs cargo-fuzz if it is missing. A crash
# stops the run with libFuzzer's report and leaves the input under fuzz/artifacts/TARGET/; replay it
# with `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

mkdir -p logs
summary=()
for target in $(cargo +nightly fuzz list); do
  echo "== $target: ${seconds}s"
  mkdir -p "corpus/$target"
  set +e
  cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1 \
    >"logs/$target.log" 2>&1
  status=$?
  set -e
  grep -E '^(Done [0-9]+ runs|SUMMARY|==[0-9]+== ERROR)' "logs/$target.log" || true
  execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "logs/$target.log" | tail -n 1)
  speed=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "logs/$target.log" | tail -n 1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    tail -n 40 "logs/$target.log" >&2
    echo "$target: FAILED (exit $status); see fuzz/logs/$target.log and fuzz/artifacts/$target/" >&2
    exit "$status"
  fi
  summary+=("$target: ${execs:-?} inputs in ${seconds}s (${speed:-?}/s), corpus of $corpus, no crash")
done
printf '%s\n' "${summary[@]}"
