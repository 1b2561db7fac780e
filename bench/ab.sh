#!/usr/bin/env bash
# bench/ab.sh: two builds of switchyard head to head, for the cost of a change (say, of the metrics'
# counters on the hot paths). For each scenario it runs `BIN bench SCENARIO --json` (each run starts
# its own broker, with its defaults) with the two binaries alternately, RUNS times each, the order
# swapped every round, and prints each run and the ratio of the means (B / A). The raw JSON lines go
# to the results file. Build the two first, e.g. the current tree and a worktree of the commit before:
#
#   cargo build --release
#   git worktree add /tmp/before COMMIT && (cd /tmp/before && cargo build --release)
#   bash bench/ab.sh /tmp/before/target/release/switchyard target/release/switchyard
#
# Needs jq. Run it on a quiet machine: nothing else building or benchmarking.
set -euo pipefail

usage() {
  cat <<'USAGE'
usage: bench/ab.sh A_BIN B_BIN [options]
  --runs N            runs per scenario and binary (default 3)
  --duration D        measured time per run (default 5s)
  --warmup D          load before measuring (default 1s)
  --scenarios "S..."  subset of: fanout queue exclusive reqreply (default "fanout queue")
  --results FILE      where the JSON lines go (default bench/results/DATE-ab.jsonl)
USAGE
}

[[ $# -ge 2 ]] || { usage >&2; exit 2; }
a_bin=$1 b_bin=$2
shift 2
runs=3 duration=5s warmup=1s scenarios="fanout queue"
results="bench/results/$(date -u +%Y%m%dT%H%MZ)-ab.jsonl"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --scenarios) scenarios=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench/ab.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for bin in "$a_bin" "$b_bin"; do
  [[ -x "$bin" ]] || { echo "bench/ab.sh: $bin is not an executable" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "bench/ab.sh: needs jq" >&2; exit 2; }
mkdir -p "$(dirname "$results")"
printf '{"record":"header","when":"%s","a":"%s","b":"%s","runs":%s,"duration":"%s","warmup":"%s","nproc":%s}\n' \
  "$(date -u +%FT%TZ)" "$a_bin" "$b_bin" "$runs" "$duration" "$warmup" "$(nproc)" >"$results"

# The rate a scenario is judged by, as `switchyard bench` reports it: deliveries per second for
# fan-out, acked messages for the queues, replies for request/reply.
rate() { jq -r '.throughput_per_s' <<<"$1"; }

for scenario in $scenarios; do
  declare -A sum=([a]=0 [b]=0)
  for ((round = 0; round < runs; round++)); do
    order="a b"
    ((round % 2 == 1)) && order="b a"
    for side in $order; do
      bin=$a_bin
      [[ $side == b ]] && bin=$b_bin
      line=$("$bin" bench "$scenario" --json --duration "$duration" --warmup "$warmup")
      jq -c --arg side "$side" '. + {side: $side}' <<<"$line" >>"$results"
      value=$(rate "$line")
      printf '%-9s %s %12.0f /s\n' "$scenario" "$side" "$value"
      sum[$side]=$(jq -n "${sum[$side]} + $value")
    done
  done
  printf '%-9s B/A = %.3f (mean of %d runs each)\n' "$scenario" "$(jq -n "${sum[b]} / ${sum[a]}")" "$runs"
  unset sum
done
echo "raw: $results"
