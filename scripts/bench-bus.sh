#!/usr/bin/env bash
# The ingest bus benchmark (issue 8, point 4): the same CMS load against one
# cdrhub (SQLite, single node) and against a collector + worker pair on the
# machine's NATS JetStream (each a cdrhub process with its own data
# directory; the worker stores in SQLite). Prints records/s and the p99 of
# the sender's acknowledgement for each, then how long the worker took to
# store what the collector had acknowledged.
#
# Usage:  scripts/bench-bus.sh
# Environment: BENCH_SECONDS=15, BENCH_CONNECTIONS=32, BENCH_BATCH=50,
#              BENCH_RATE=5000 (records/s of the open-loop run)
#
# The load generator, the server processes and NATS share the machine's
# cores. The PostgreSQL rows of the issue's table come with the
# PostgreSQL store.
set -euo pipefail
BENCH_SECONDS=${BENCH_SECONDS:-15}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-32}
BENCH_BATCH=${BENCH_BATCH:-50}
BENCH_RATE=${BENCH_RATE:-5000}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export PATH="$PATH:/usr/sbin:/sbin"
cargo build --release -q -p cdrhub -p cdrhub-bench
BIN=target/release/cdrhub
LOADGEN=target/release/cdrhub-loadgen
WORK=$(mktemp -d)
PIDS=()
stream="CDRHUB_BENCH_$$"
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    python3 - "$stream" <<'PY' 2>/dev/null || true
import socket, sys, json
# Deletes the benchmark's JetStream stream ($JS.API.STREAM.DELETE).
s = socket.create_connection(("127.0.0.1", 4222)); s.recv(4096)
s.sendall(b'CONNECT {"verbose":false}\r\nSUB _INBOX.del 1\r\nPUB $JS.API.STREAM.DELETE.' + sys.argv[1].encode() + b' _INBOX.del 0\r\n\r\nPING\r\n')
s.settimeout(2); s.recv(4096)
PY
    rm -rf "$WORK"
}
trap cleanup EXIT

if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    sleep 1
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME CONFIG: starts cdrhub serve; its port is left in PORT (not
# printed: a command substitution would run it in a subshell, and the
# cleanup would not know its pid).
start() {
    local name=$1 config=$2
    PORT=$(free_port)
    "$BIN" --data-dir "$WORK/$name" ${config:+--config "$config"} serve --listen "127.0.0.1:$PORT" \
        >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
        sleep 0.1
    done
}

journal_count() {
    python3 - "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}/cdrhub.db?mode=ro", uri=True)
print(c.execute("select count(*) from journal").fetchone()[0])
PY
}

run() {
    local label=$1 port=$2
    shift 2
    "$LOADGEN" --url "http://127.0.0.1:$port/ingest/cms" --duration "${BENCH_SECONDS}s" \
        --connections "$BENCH_CONNECTIONS" --json "$@" 2>/dev/null |
        python3 -c "import json,sys; r=json.loads(sys.stdin.read()); print(f'$label: {r[\"records_per_s\"]:,.0f} records/s, p99 {r[\"p99_ms\"]:.1f} ms, {r[\"records\"]:,} records acknowledged, {r[\"non_200\"] + r[\"errors\"]} refused or failed')" ||
        echo "$label: the load generator failed"
}

echo "== single node (SQLite)"
start single ""
single=$PORT
run "single, batch $BENCH_BATCH" "$single" --mode batch --batch-size "$BENCH_BATCH"
run "single, $BENCH_RATE/s one record a POST" "$single" --rate "$BENCH_RATE"

for role in collector worker; do
    cat >"$WORK/$role.toml" <<TOML
[bus]
nats = "nats://127.0.0.1:4222"
stream = "$stream"
subject_prefix = "cdrhub-bench.$$"
roles = ["$role"]
TOML
done
echo "== collector + worker on NATS JetStream (worker on SQLite)"
start worker "$WORK/worker.toml"
start collector "$WORK/collector.toml"
collector=$PORT
start_ns=$(date +%s%N)
run "bus, batch $BENCH_BATCH" "$collector" --mode batch --batch-size "$BENCH_BATCH"
run "bus, $BENCH_RATE/s one record a POST" "$collector" --rate "$BENCH_RATE"
sent_ns=$(date +%s%N)
# The worker catches up: wait until its journal stops growing.
last=-1
while :; do
    n=$(journal_count "$WORK/worker")
    [ "$n" = "$last" ] && break
    last=$n
    sleep 2
done
done_ns=$(date +%s%N)
echo "worker stored $last records; it finished $(( (done_ns - sent_ns) / 1000000 - 2000 )) ms after the load ended (to within 2 s)"
