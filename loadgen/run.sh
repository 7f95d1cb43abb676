#!/usr/bin/env bash
# Starts a release server in demo mode on a fresh data directory with limits that let one
# machine open this many sessions, runs the three WebSocket measurements against it, prints
# their tables and stops the server.
#
#   loadgen/run.sh                    # build (release) and run all three
#   loadgen/run.sh connect fanout     # only these
#
# Knobs (environment): PORT (default 18080), RATE (200), CONNECT_SECONDS (10), SUBSCRIBERS (1000),
# DECISIONS (50), SESSIONS (10000), LOG_FILTER (the server's --log, info), NO_BUILD=1 to use
# the binaries as they are.
set -euo pipefail

cd "$(dirname "$0")/.."
PORT=${PORT:-18080}
RATE=${RATE:-200}
CONNECT_SECONDS=${CONNECT_SECONDS:-10}
SUBSCRIBERS=${SUBSCRIBERS:-1000}
DECISIONS=${DECISIONS:-50}
SESSIONS=${SESSIONS:-10000}
LOG_FILTER=${LOG_FILTER:-info}
WHICH=("$@")
[ ${#WHICH[@]} -eq 0 ] && WHICH=(connect fanout idle)

if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p adjudicator -p adjudicator-loadgen
fi
SERVER=target/release/adjudicator
LOADGEN=target/release/adjudicator-loadgen
URL="http://127.0.0.1:$PORT"

# The server holds one descriptor per session: ask for 65536, or take the hard limit where
# that is lower (an unprivileged or containerised shell cannot raise it).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "open-file limit for the server: $(ulimit -n)"

DATA=$(mktemp -d)
LOG="$DATA/server.log"
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap stop_server EXIT

start_server() {
    "$SERVER" serve --demo --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
        --max-connections-per-user 100000 --connect-attempts-per-ip 1000000 \
        --log "$LOG_FILTER" >"$LOG" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if curl -fsS "$URL/readyz" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "the server did not become ready; its log:" >&2
    cat "$LOG" >&2
    exit 1
}

start_server
echo "server pid $SERVER_PID on $URL (data in $DATA); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

for what in "${WHICH[@]}"; do
    case "$what" in
    connect) "$LOADGEN" connect --url "$URL" --rate "$RATE" --seconds "$CONNECT_SECONDS" ;;
    fanout) "$LOADGEN" fanout --url "$URL" --subscribers "$SUBSCRIBERS" --decisions "$DECISIONS" ;;
    idle) "$LOADGEN" idle --url "$URL" --sessions "$SESSIONS" --pid "$SERVER_PID" ;;
    *)
        echo "unknown measurement $what (connect, fanout, idle)" >&2
        exit 2
        ;;
    esac
done
