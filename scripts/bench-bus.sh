#!/usr/bin/env bash
# The scale-out benchmark (issue 8, point 4): the same CMS load against
#   1. one cdrhub on SQLite (single node),
#   2. one cdrhub on PostgreSQL (single node, --store),
#   3. two collectors and two workers on the machine's NATS JetStream,
#      sharing one PostgreSQL database (four cdrhub processes).
# Prints records/s and the p99 of the sender's acknowledgement for each,
# and for the bus how long the workers took to store what the collectors
# had acknowledged.
#
# Usage:  scripts/bench-bus.sh
# Environment: BENCH_SECONDS=15, BENCH_CONNECTIONS=32 (split between the
#              two collectors), BENCH_BATCH=50, BENCH_RATE=5000 (records/s
#              of the open-loop run, split likewise),
#              BENCH_PG=postgres://postgres@127.0.0.1:5432 (a server where
#              the benchmark may create and drop its databases)
#
# The load generators, the server processes, NATS and PostgreSQL share the
# machine's cores.
set -euo pipefail
BENCH_SECONDS=${BENCH_SECONDS:-15}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-32}
BENCH_BATCH=${BENCH_BATCH:-50}
BENCH_RATE=${BENCH_RATE:-5000}
BENCH_PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
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
DATABASES=()
drop_databases() {
    for d in "${DATABASES[@]}"; do
        psql "$BENCH_PG/postgres" -qtAc "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
    done
}
trap 'cleanup; drop_databases' EXIT
# new_database NAME: a fresh database; its URL is left in DB_URL.
new_database() {
    local name="cdrhub_bench_$1_$$"
    psql "$BENCH_PG/postgres" -qtAc "CREATE DATABASE $name" >/dev/null
    DATABASES+=("$name")
    DB_URL="$BENCH_PG/$name"
}

if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
fi

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

pg_journal_count() {
    psql "$1" -qtAc "select count(*) from journal"
}

run() {
    local label=$1 port=$2
    shift 2
    # The load generator exits non-zero when it could not send at the rate
    # asked (records left unsent): its figures still stand, and say so.
    "$LOADGEN" --url "http://127.0.0.1:$port/ingest/cms" --duration "${BENCH_SECONDS}s" \
        --connections "$BENCH_CONNECTIONS" --json "$@" >"$WORK/load.json" 2>/dev/null || true
    python3 - "$label" "$WORK/load.json" <<'PY' || echo "$label: the load generator failed"
import json, sys
r = json.load(open(sys.argv[2]))
unsent = f", {r['unsent']:,} not sent (the server was behind)" if r.get('unsent') else ""
print(f"{sys.argv[1]}: {r['records_per_s']:,.0f} records/s, p99 {r['p99_ms']:.1f} ms, "
      f"{r['records']:,} records acknowledged, {r['non_200'] + r['errors']} refused or failed{unsent}")
PY
}

# run_pair LABEL PORT1 PORT2 ARGS...: half the load to each collector at
# once; records/s added, the worse p99 of the two.
run_pair() {
    local label=$1 p1=$2 p2=$3
    shift 3
    local half=$((BENCH_CONNECTIONS / 2))
    local args=("$@")
    for i in "${!args[@]}"; do
        if [ "${args[$i]}" = "--rate" ]; then args[$((i + 1))]=$((args[$((i + 1))] / 2)); fi
    done
    "$LOADGEN" --url "http://127.0.0.1:$p1/ingest/cms" --duration "${BENCH_SECONDS}s" \
        --connections "$half" --json "${args[@]}" >"$WORK/load1.json" 2>/dev/null &
    local l1=$!
    "$LOADGEN" --url "http://127.0.0.1:$p2/ingest/cms" --duration "${BENCH_SECONDS}s" \
        --connections "$half" --json "${args[@]}" >"$WORK/load2.json" 2>/dev/null &
    local l2=$!
    wait "$l1" || true
    wait "$l2" || true
    python3 - "$label" "$WORK/load1.json" "$WORK/load2.json" <<'PY' || echo "$label: the load generator failed"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[2:4])
open(sys.argv[2].rsplit("/", 1)[0] + "/acked", "a").write(f"{a['records'] + b['records']}\n")
print(f"{sys.argv[1]}: {a['records_per_s'] + b['records_per_s']:,.0f} records/s, "
      f"p99 {max(a['p99_ms'], b['p99_ms']):.1f} ms, {a['records'] + b['records']:,} records acknowledged, "
      f"{a['non_200'] + a['errors'] + b['non_200'] + b['errors']} refused or failed")
PY
}

echo "== single node (SQLite)"
start single ""
single=$PORT
run "single SQLite, batch $BENCH_BATCH" "$single" --mode batch --batch-size "$BENCH_BATCH"
run "single SQLite, $BENCH_RATE/s one record a POST" "$single" --rate "$BENCH_RATE"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

echo "== single node (PostgreSQL)"
new_database single
cat >"$WORK/pg-single.toml" <<TOML
[store]
url = "$DB_URL"
TOML
start pg-single "$WORK/pg-single.toml"
pg_single=$PORT
run "single PostgreSQL, batch $BENCH_BATCH" "$pg_single" --mode batch --batch-size "$BENCH_BATCH"
run "single PostgreSQL, $BENCH_RATE/s one record a POST" "$pg_single" --rate "$BENCH_RATE"
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true

new_database bus
for role in collector worker; do
    cat >"$WORK/$role.toml" <<TOML
[store]
url = "$DB_URL"

[bus]
nats = "nats://127.0.0.1:4222"
stream = "$stream"
subject_prefix = "cdrhub-bench.$$"
roles = ["$role"]
TOML
done
echo "== two collectors + two workers on NATS JetStream and PostgreSQL"
start worker-1 "$WORK/worker.toml"
start worker-2 "$WORK/worker.toml"
start collector-1 "$WORK/collector.toml"
c1=$PORT
start collector-2 "$WORK/collector.toml"
c2=$PORT
# The workers divide the partitions between them within a few seconds.
sleep 3
run_pair "bus, batch $BENCH_BATCH" "$c1" "$c2" --mode batch --batch-size "$BENCH_BATCH"
run_pair "bus, $BENCH_RATE/s one record a POST" "$c1" "$c2" --rate "$BENCH_RATE"
sent_ns=$(date +%s%N)
# The workers catch up: wait until the journal holds every record the
# collectors acknowledged (or has not grown for 30 s: then say so).
acked=$(awk '{s += $1} END {print s}' "$WORK/acked")
last=-1
still=0
while :; do
    n=$(pg_journal_count "$DB_URL")
    [ "$n" -ge "$acked" ] && break
    if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; fi
    [ "$still" -ge 60 ] && { echo "the journal stopped growing at $n of $acked records"; break; }
    last=$n
    sleep 0.5
done
done_ns=$(date +%s%N)
echo "the workers stored $n of the $acked records acknowledged; the last $(( (done_ns - sent_ns) / 1000000 )) ms after the load ended"
