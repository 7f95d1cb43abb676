#!/usr/bin/env bash
# Runs the push-path table of issue 11 against a release build of the server and prints it
# (measure | figure | target | load average). Each row gets a fresh server on a fresh data
# directory and its own port; the server is pinned to one core (SERVER_CPU, default 0) and the
# load generator to another (LOADGEN_CPU, default 1). Everything talks to 127.0.0.1 only, and
# every scenario is bounded in time and count.
#
#   loadgen/run.sh                          # build (release) and run every row
#   loadgen/run.sh --quick                  # smaller counts and shorter runs: a smoke run
#   loadgen/run.sh --server path/to/adjudicator --label "branch x"   # any build
#   loadgen/run.sh cpu latency              # only these rows
#
# Rows: calibrate cpu max latency http idle storm startup churn.
# Options: --quick, --server PATH (not built), --label TEXT (the figures' column), --no-build.
# Environment: SERVER_CPU, LOADGEN_CPU, PORT (first port, default 18100), LOG_FILTER (the
# server's --log, default info), STORE_CACHE (generated stores are kept here, default
# target/loadgen-stores), KEEP_LOGS=1 (keep each row's output and server log),
# LOOPBACK_BACKLOG=N (sets net.core.netdev_max_backlog to N for the run and restores it after,
# where the machine allows it; see docs/performance.md).
#
# The last column of the table also gives the packets the kernel dropped from its per-CPU
# receive backlog during each row (/proc/net/softnet_stat): on loopback a burst of thousands of
# sends can overflow it (1,000 packets by default), and each drop costs a retransmission, 200 ms
# or more, which shows as a p99 outlier that is the machine's, not the server's.
set -euo pipefail
export RUST_BACKTRACE=0

cd "$(dirname "$0")/.."
QUICK=
SERVER=
LABEL="this build"
BUILD=1
ROWS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --server) SERVER=$(realpath "$2"); shift ;;
    --label) LABEL=$2; shift ;;
    --no-build) BUILD= ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | grep '^#'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) ROWS+=("$1") ;;
    esac
    shift
done
[ ${#ROWS[@]} -eq 0 ] && ROWS=(calibrate cpu max latency http idle storm startup churn)

SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
PORT=${PORT:-18100}
LOG_FILTER=${LOG_FILTER:-info}
STORE_CACHE=${STORE_CACHE:-target/loadgen-stores}

if [ -n "$QUICK" ]; then
    SUBS=300 CPU_RATE=10 SECONDS_=3 LAT_SUBS=200 DEC_RATE=20 HTTP_SUBS=300
    IDLE=1000 STORM=200 STORM_EVENTS=20000 START_EVENTS=50000 CHURN=300 ROUNDS=3
    SEARCH=(--start-rate 5 --max-rate 20 --seconds 2 --bisections 1 --min-samples 10) CAL=(--connections 200 --seconds 1)
else
    SUBS=2000 CPU_RATE=10 SECONDS_=10 LAT_SUBS=1000 DEC_RATE=20 HTTP_SUBS=2000
    IDLE=10000 STORM=1000 STORM_EVENTS=200000 START_EVENTS=1000000 CHURN=3000 ROUNDS=8
    SEARCH=(--start-rate 2.5 --max-rate 160 --seconds 4 --bisections 3) CAL=(--connections 2000 --seconds 3)
fi

if [ -n "$BUILD" ]; then
    if [ -n "$SERVER" ]; then
        cargo build --release -p adjudicator-loadgen
    else
        cargo build --release -p adjudicator -p adjudicator-loadgen
    fi
fi
SERVER=${SERVER:-$PWD/target/release/adjudicator}
LOADGEN=$PWD/target/release/adjudicator-loadgen
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 1; }

# The server and the load generator each hold one descriptor per session: ask for 65536, or
# take the hard limit where that is lower (a container may not allow more).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

WORK=$(mktemp -d)
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
cleanup() {
    stop_server
    if [ -n "${KEEP_LOGS:-}" ]; then echo "logs kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

load1() { cut -d' ' -f1 /proc/loadavg; }

# Packets dropped from the kernel's per-CPU receive backlogs since boot.
loopback_drops() {
    local total=0 processed dropped rest
    while read -r processed dropped rest; do
        total=$((total + 16#$dropped))
    done </proc/net/softnet_stat
    echo "$total"
}

if [ -n "${LOOPBACK_BACKLOG:-}" ]; then
    OLD_BACKLOG=$(sysctl -n net.core.netdev_max_backlog)
    if sysctl -qw net.core.netdev_max_backlog="$LOOPBACK_BACKLOG" 2>/dev/null; then
        trap 'sysctl -qw net.core.netdev_max_backlog="$OLD_BACKLOG"; cleanup' EXIT
        echo "net.core.netdev_max_backlog: $OLD_BACKLOG → $LOOPBACK_BACKLOG for this run"
    else
        echo "cannot set net.core.netdev_max_backlog (kept at $OLD_BACKLOG)" >&2
    fi
fi

# start_server DATA_DIR PORT [extra flags]: pinned, demo users, limits for one load generator.
start_server() {
    local data=$1 port=$2
    shift 2
    taskset -c "$SERVER_CPU" "$SERVER" serve --demo --listen "127.0.0.1:$port" --data-dir "$data" \
        --max-connections-per-user 100000 --connect-attempts-per-ip 1000000 \
        --log "$LOG_FILTER" "$@" >"$data.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 1200); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "the server on port $port did not become ready; its log:" >&2
    tail -20 "$data.log" >&2
    exit 1
}

# store EVENTS: a data directory holding a generated store of that many events (generated once
# into STORE_CACHE, copied fresh for each use, without any saved read models). Marked as a demo
# store, so that `serve --demo` adds the demo users the load generator logs in as.
store() {
    local events=$1 cached="$STORE_CACHE/demo-events-$1" dir
    if [ ! -f "$cached/events.sqlite3" ]; then
        echo "generating a store of $events events into $cached (once)…" >&2
        rm -rf "$cached.tmp"
        mkdir -p "$STORE_CACHE"
        "$SERVER" bench generate --demo --data-dir "$cached.tmp" --events "$events" >&2
        mv "$cached.tmp" "$cached"
    fi
    dir=$(mktemp -d -p "$WORK" "store-$events.XXXX")
    cp -a "$cached/." "$dir/"
    rm -f "$dir/projections.snapshot"
    echo "$dir"
}

declare -A FIGURE LOAD
# measure ROW KEY CMD...: runs a loadgen command pinned, shows its output, keeps RESULT KEY.
measure() {
    local row=$1 key=$2 out="$WORK/$1.out" before drops
    shift 2
    before=$(load1)
    drops=$(loopback_drops)
    echo "=== $row: $*" | sed "s|$LOADGEN|adjudicator-loadgen|"
    if ! taskset -c "$LOADGEN_CPU" "$LOADGEN" "$@" | tee "$out"; then
        FIGURE[$row]="${FIGURE[$row]:+${FIGURE[$row]}; }FAILED (see output above)"
    else
        local got
        got=$(sed -n "s/^RESULT $key //p" "$out" | tail -1)
        FIGURE[$row]="${FIGURE[$row]:+${FIGURE[$row]}; }${got:-no result}"
    fi
    LOAD[$row]="${LOAD[$row]:+${LOAD[$row]}; }$before → $(load1), $(($(loopback_drops) - drops)) dropped"
}

# with_server ROW KEY DATA_DIR LOADGEN_ARGS...: a fresh server for one row.
N=0
with_server() {
    local row=$1 key=$2 data=$3 port=$((PORT + N))
    shift 3
    N=$((N + 1))
    start_server "$data" "$port"
    measure "$row" "$key" "$@" --url "http://127.0.0.1:$port" --pid "$SERVER_PID"
    stop_server
}

fresh() { mktemp -d -p "$WORK" "data.XXXX"; }

for row in "${ROWS[@]}"; do
    case "$row" in
    calibrate)
        measure calibrate calibrate calibrate "${CAL[@]}" --sender-cpu "$SERVER_CPU" ;;
    cpu)
        with_server cpu cpu "$(fresh)" fanout --subscribers "$SUBS" --rate "$CPU_RATE" --seconds "$SECONDS_" ;;
    max)
        with_server max max "$(fresh)" search --subscribers "$SUBS" "${SEARCH[@]}" ;;
    latency)
        with_server latency last "$(fresh)" fanout --submit decisions --subscribers "$LAT_SUBS" \
            --rate "$DEC_RATE" --seconds "$SECONDS_" ;;
    http)
        with_server http http "$(fresh)" fanout --submit decisions --subscribers "$HTTP_SUBS" \
            --rate "$DEC_RATE" --seconds "$SECONDS_" ;;
    idle)
        with_server idle idle "$(fresh)" idle --sessions "$IDLE" ;;
    storm)
        with_server storm storm "$(store "$STORM_EVENTS")" storm --sessions "$STORM" ;;
    startup)
        data=$(store "$START_EVENTS")
        port=$((PORT + N))
        N=$((N + 1))
        # The first start replays the store and saves the read models when it stops.
        start_server "$data" "$port"
        stop_server
        for _ in 1 2; do
            measure startup startup startup --url "http://127.0.0.1:$port" -- \
                taskset -c "$SERVER_CPU" "$SERVER" serve --listen "127.0.0.1:$port" --data-dir "$data" \
                --log "$LOG_FILTER"
        done ;;
    churn)
        with_server churn churn "$(fresh)" churn --sessions "$CHURN" --rounds "$ROUNDS" ;;
    *)
        echo "unknown row $row (calibrate cpu max latency http idle storm startup churn)" >&2
        exit 2 ;;
    esac
done

k() { echo "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
declare -A MEASURE=(
    [calibrate]="load generator: frames/s it receives on one core (calibrate)"
    [cpu]="server CPU per delivered update, $(k "$SUBS") subscribers ($CPU_RATE cases/s)"
    [max]="delivered updates/s at $(k "$SUBS") subscribers with last-subscriber p99 < 100 ms"
    [latency]="last-subscriber p99, $(k "$LAT_SUBS") subscribers × $DEC_RATE decisions/s"
    [http]="a decision's HTTP p99 while fanning out $(k $((HTTP_SUBS * DEC_RATE))) updates/s"
    [idle]="memory per subscribed idle session at $(k "$IDLE") sessions"
    [storm]="$(k "$STORM") sessions subscribing to queue at once, store of $(k "$STORM_EVENTS") events"
    [startup]="start-up to ready with a snapshot at $(k "$START_EVENTS") events (two starts)"
    [churn]="resident memory after $ROUNDS rounds of $(k "$CHURN") subscribed sessions opening and closing"
)
declare -A TARGET=(
    [calibrate]="≥ 500,000"
    [cpu]="≤ 3 µs"
    [max]="≥ 150,000"
    [latency]="< 15 ms"
    [http]="< 10 ms"
    [idle]="< 10 KiB"
    [storm]="all delivered < 2 s; HTTP p99 < 50 ms"
    [startup]="< 1 s"
    [churn]="within 10 % of round 1's"
)
echo
echo "Server $SERVER (cpu $SERVER_CPU), load generator cpu $LOADGEN_CPU, $(nproc) cpus${QUICK:+, QUICK run (smaller counts)}"
echo "| measure | $LABEL | target | load average (1 min, start → end), loopback packets dropped |"
echo "| --- | --- | --- | --- |"
for row in "${ROWS[@]}"; do
    echo "| ${MEASURE[$row]} | ${FIGURE[$row]:-not run} | ${TARGET[$row]} | ${LOAD[$row]:-} |"
done
