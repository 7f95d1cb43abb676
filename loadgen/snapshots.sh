#!/usr/bin/env bash
# The snapshot measurements of docs/performance.md: on a store made by
# `adjudicator bench generate --events 200000` (about 14,700 undecided cases), a server pinned to
# core 0 and the load generator to core 1:
#   1. one `queue` snapshot, the default window and a window of 1,000 cases;
#   2. 1,000 sessions subscribing to `queue` at once (default window, then 1,000 cases), with
#      `GET /api/v1/stats` timed meanwhile.
#
#   loadgen/snapshots.sh                 # build (release), generate the store once, measure
#
# Knobs (environment): PORT (18181), EVENTS (200000), SESSIONS (1000), STORE (where the generated
# store is kept between runs: /tmp/adjudicator-snapshots-<EVENTS>), NO_BUILD=1, BIN (directory
# of the binaries, target/release).
set -euo pipefail

cd "$(dirname "$0")/.."
PORT=${PORT:-18181}
EVENTS=${EVENTS:-200000}
SESSIONS=${SESSIONS:-1000}
STORE=${STORE:-/tmp/adjudicator-snapshots-$EVENTS}
BIN=${BIN:-target/release}
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -p adjudicator -p adjudicator-loadgen
fi
SERVER=$BIN/adjudicator
LOADGEN=$BIN/adjudicator-loadgen
URL="http://127.0.0.1:$PORT"
PASSWORD=loadgen-password-1
USERS=lg-reviewer:$PASSWORD,lg-senior:$PASSWORD

if [ ! -d "$STORE" ]; then
    "$SERVER" bench generate --data-dir "$STORE" --events "$EVENTS"
    "$SERVER" user add --data-dir "$STORE" --username lg-reviewer --role reviewer <<<"$PASSWORD"
    "$SERVER" user add --data-dir "$STORE" --username lg-senior --role senior_reviewer <<<"$PASSWORD"
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
DATA=$(mktemp -d)
cp -r "$STORE/." "$DATA/"
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$DATA"
}
trap stop_server EXIT

taskset -c 0 "$SERVER" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
    --max-connections-per-user 100000 --connect-attempts-per-ip 1000000 \
    --log warn >"$DATA/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
    curl -fsS "$URL/readyz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "$URL/readyz" >/dev/null || { cat "$DATA/server.log" >&2; exit 1; }
echo "server pid $SERVER_PID on $URL, store of $EVENTS events; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

run() { taskset -c 1 "$LOADGEN" snapshots --url "$URL" --users "$USERS" "$@"; }
run --sessions 1 --http-clients 0
run --sessions 1 --http-clients 0 --limit 1000
run --sessions "$SESSIONS"
run --sessions "$SESSIONS" --limit 1000
echo "server resident memory at the end: $(grep VmRSS "/proc/$SERVER_PID/status")"
