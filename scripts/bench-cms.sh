#!/usr/bin/env bash
# CMS CDR ingest benchmark: cdrhub against a receiver that does nothing.
#
# Usage:  scripts/bench-cms.sh [--baseline-only]
#
# Builds cdrhub and the load generator in release mode, starts `cdrhub serve`
# on a free loopback port with a fresh data directory, and posts simulated
# Cisco Meeting Server CDR traffic at it with cdrhub-loadgen (crates/bench):
#
#   (a) single-record POSTs, closed loop, as fast as acknowledged
#   (b) BENCH_BATCH-record POSTs, closed loop, as fast as acknowledged
#   (c) single-record POSTs, open loop at a steady BENCH_RATE records/s (p99 latency)
#
# then runs (a) and (b) again against scripts/bench_baseline_receiver.py, a
# Python http.server that answers 200 and parses and stores nothing, and prints
# one table with records/s, posts/s, p99 latency and the server's peak RSS,
# plus the ratio cdrhub/baseline for (a) and (b).
#
# By default one cdrhub process serves all three scenarios, so its memory is
# watched "throughout" (peak = VmHWM at the end) and (c) runs against a store
# that already holds the records of (a) and (b). BENCH_RESTART=1 starts a
# fresh server and data directory for each scenario instead.
#
# Load generator and server share the machine's cores; cdrhub-loadgen runs on
# one thread and reports its own CPU use beside the server's.
#
# Environment:
#   BENCH_SECONDS=20        length of each scenario in seconds
#   BENCH_CONNECTIONS=32    keep-alive connections (each a simulated Call Bridge) in (b), (c)
#   BENCH_SINGLE_CONNECTIONS=64  keep-alive connections in (a): one record per POST
#                           needs more senders in flight to fill a group commit
#   BENCH_BATCH=50          records per POST in (b)
#   BENCH_RATE=5000         records/s in (c)
#   BENCH_OUT_OF_ORDER=0.05 probability that a record arrives one place late
#   BENCH_PAUSE=2           seconds of rest between scenarios
#   BENCH_RESTART=0         1: fresh cdrhub and data directory per scenario
#   BENCH_BASELINE_ONLY=0   1: skip cdrhub, run the baseline only (= --baseline-only)
#   BENCH_ENFORCE_TARGETS=0 1: also exit non-zero when a target below is missed
#   BENCH_KEEP=0            1: keep the work directory (data, logs, JSON results)
#   BENCH_OUT=FILE          append every run's JSON line, labelled, to FILE
#   CDRHUB_BIN=PATH         run this cdrhub binary instead of the one just built
#
# Targets (checked and printed): (a) >= 15000 records/s, (b) >= 60000
# records/s, (c) p99 <= 25 ms, cdrhub peak RSS <= 200 MB.
#
# Exit status: 0 when every POST of every run was answered 200; 1 otherwise
# (or when a target was missed and BENCH_ENFORCE_TARGETS=1).

set -euo pipefail

BENCH_SECONDS=${BENCH_SECONDS:-20}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-32}
BENCH_SINGLE_CONNECTIONS=${BENCH_SINGLE_CONNECTIONS:-64}
BENCH_BATCH=${BENCH_BATCH:-50}
BENCH_RATE=${BENCH_RATE:-5000}
BENCH_OUT_OF_ORDER=${BENCH_OUT_OF_ORDER:-0.05}
BENCH_PAUSE=${BENCH_PAUSE:-2}
BENCH_RESTART=${BENCH_RESTART:-0}
BENCH_BASELINE_ONLY=${BENCH_BASELINE_ONLY:-0}
BENCH_ENFORCE_TARGETS=${BENCH_ENFORCE_TARGETS:-0}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_OUT=${BENCH_OUT:-}

for arg in "$@"; do
    case "$arg" in
        --baseline-only) BENCH_BASELINE_ONLY=1 ;;
        -h | --help)
            sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0"
            exit 0
            ;;
        *)
            echo "bench-cms.sh: unknown argument $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '\n== %s\n' "$*"; }
die() {
    printf 'bench-cms.sh: %s\n' "$*" >&2
    exit 1
}

command -v python3 >/dev/null || die "python3 is needed (baseline receiver, report)"
command -v curl >/dev/null || die "curl is needed (health checks)"

# --- build -------------------------------------------------------------------
log "building (release)"
if [[ $BENCH_BASELINE_ONLY == 1 ]]; then
    cargo build --release -p cdrhub-bench
else
    cargo build --release -p cdrhub -p cdrhub-bench
fi
# Wherever cargo put them (./target unless the user configured otherwise).
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
LOADGEN="$TARGET_DIR/release/cdrhub-loadgen"
CDRHUB=${CDRHUB_BIN:-"$TARGET_DIR/release/cdrhub"}

# --- processes and cleanup -----------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cdrhub-bench.XXXXXX")
STARTED_PIDS=()
SERVER_PID=""
SERVER_URL=""

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $BENCH_KEEP == 1 ]]; then
        echo "bench-cms.sh: results, logs and data kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL PID LOGFILE: until URL answers 2xx, for at most 30 s.
wait_http() {
    local url=$1 pid=$2 logfile=$3 i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "the server exited before answering $url (log above)"
        fi
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 30 "$logfile" >&2 || true
    die "no answer from $url after 30 s"
}

# stop PID: SIGTERM, then SIGKILL after 15 s.
stop() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Peak resident memory of a live process since it started, in MB (VmHWM).
peak_rss_mb() {
    awk '/^VmHWM:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true
}

SERVER_COUNT=0
start_cdrhub() {
    SERVER_COUNT=$((SERVER_COUNT + 1))
    local port data
    port=$(free_port)
    data="$WORK/cdrhub-data-$SERVER_COUNT"
    mkdir -p "$data"
    "$CDRHUB" serve --data-dir "$data" --listen "127.0.0.1:$port" >>"$WORK/cdrhub.log" 2>&1 &
    SERVER_PID=$!
    STARTED_PIDS+=("$SERVER_PID")
    wait_http "http://127.0.0.1:$port/healthz" "$SERVER_PID" "$WORK/cdrhub.log"
    SERVER_URL="http://127.0.0.1:$port/ingest/cms"
    echo "cdrhub pid $SERVER_PID listening on 127.0.0.1:$port, data in $data"
}

stop_cdrhub() {
    local hwm
    hwm=$(peak_rss_mb "$SERVER_PID")
    [[ -n $hwm ]] && echo "$hwm" >>"$WORK/cdrhub-peak-rss"
    stop "$SERVER_PID"
}

start_baseline() {
    local port
    port=$(free_port)
    python3 "$ROOT/scripts/bench_baseline_receiver.py" --port "$port" >>"$WORK/baseline.log" 2>&1 &
    SERVER_PID=$!
    STARTED_PIDS+=("$SERVER_PID")
    wait_http "http://127.0.0.1:$port/" "$SERVER_PID" "$WORK/baseline.log"
    SERVER_URL="http://127.0.0.1:$port/ingest/cms"
    echo "baseline receiver pid $SERVER_PID listening on 127.0.0.1:$port"
}

# scenario NAME (a|b|c) against SERVER_URL / SERVER_PID; writes $WORK/NAME.json.
run_scenario() {
    local name=$1 scenario=$2 rc=0
    local connections=$BENCH_CONNECTIONS
    [[ $scenario == a ]] && connections=$BENCH_SINGLE_CONNECTIONS
    local args=(--url "$SERVER_URL" --pid "$SERVER_PID" --connections "$connections"
        --duration "${BENCH_SECONDS}s" --out-of-order "$BENCH_OUT_OF_ORDER" --json)
    case "$scenario" in
        a) args+=(--mode single) ;;
        b) args+=(--mode batch --batch-size "$BENCH_BATCH") ;;
        c) args+=(--mode single --rate "$BENCH_RATE") ;;
    esac
    log "$name"
    "$LOADGEN" "${args[@]}" >"$WORK/$name.json" 2>"$WORK/$name.log" || rc=$?
    sed 's/^/  /' "$WORK/$name.log"
    # 3 = finished, but not every POST was acknowledged: the report says so.
    if [[ $rc != 0 && $rc != 3 ]]; then
        die "cdrhub-loadgen failed (exit $rc) in $name"
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during $name"
    sleep "$BENCH_PAUSE"
}

# --- runs ----------------------------------------------------------------------
echo "work directory: $WORK"

if [[ $BENCH_BASELINE_ONLY != 1 ]]; then
    [[ -x $CDRHUB ]] || die "$CDRHUB was not built"
    start_cdrhub
    for scenario in a b c; do
        if [[ $BENCH_RESTART == 1 && $scenario != a ]]; then
            stop_cdrhub
            start_cdrhub
        fi
        run_scenario "cdrhub-$scenario" "$scenario"
    done
    stop_cdrhub
fi

start_baseline
run_scenario "baseline-a" a
run_scenario "baseline-b" b
stop "$SERVER_PID"

# --- report --------------------------------------------------------------------
log "results"
MACHINE_CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
export BENCH_SECONDS BENCH_CONNECTIONS BENCH_SINGLE_CONNECTIONS BENCH_BATCH BENCH_RATE BENCH_OUT BENCH_ENFORCE_TARGETS WORK
MACHINE_NPROC=$(nproc)
MACHINE_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
MACHINE_KERNEL=$(uname -r)
MACHINE_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
export MACHINE_NPROC MACHINE_CPU MACHINE_DATE MACHINE_KERNEL MACHINE_COMMIT
python3 - <<'PY'
import json, os

work = os.environ["WORK"]
batch = os.environ["BENCH_BATCH"]
rate = os.environ["BENCH_RATE"]

def load(name):
    path = os.path.join(work, name + ".json")
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return None
    with open(path) as f:
        return json.loads(f.read().strip().splitlines()[-1])

scenarios = {
    "a": "(a) single-record POSTs, max rate",
    "b": f"(b) {batch}-record POSTs, max rate",
    "c": f"(c) single-record POSTs at {rate} rec/s",
}
runs = {}
for s in "abc":
    for target in ("cdrhub", "baseline"):
        r = load(f"{target}-{s}")
        if r is not None:
            runs[(target, s)] = r

print(f"machine: {os.environ['MACHINE_NPROC']} CPUs, {os.environ['MACHINE_CPU']}, "
      f"Linux {os.environ['MACHINE_KERNEL']}")
print(f"date:    {os.environ['MACHINE_DATE']}, commit {os.environ['MACHINE_COMMIT']}")
print(f"load:    {os.environ['BENCH_SINGLE_CONNECTIONS']} connections in (a), {os.environ['BENCH_CONNECTIONS']} in (b) and (c), "
      f"{os.environ['BENCH_SECONDS']} s per scenario")
print()
header = f"{'scenario':<38} {'receiver':<9} {'records/s':>10} {'posts/s':>9} {'p99 ms':>8} {'max RSS MB':>10} {'CPU %':>6} {'gen CPU %':>9} {'failed':>7}"
print(header)
print("-" * len(header))
for s in "abc":
    for target in ("cdrhub", "baseline"):
        r = runs.get((target, s))
        if r is None:
            continue
        failed = r["non_200"] + r["errors"] + r.get("unsent", 0)
        rss = "-" if r["max_rss_mb"] is None else f"{r['max_rss_mb']:.1f}"
        cpu = "-" if r.get("server_cpu_pct") is None else f"{r['server_cpu_pct']:.0f}"
        gen = "-" if r.get("loadgen_cpu_pct") is None else f"{r['loadgen_cpu_pct']:.0f}"
        print(f"{scenarios[s]:<38} {target:<9} {r['records_per_s']:>10.0f} {r['posts_per_s']:>9.0f} "
              f"{r['p99_ms']:>8.2f} {rss:>10} {cpu:>6} {gen:>9} {failed:>7}")
print()

for s in "ab":
    c, b = runs.get(("cdrhub", s)), runs.get(("baseline", s))
    if c and b and b["records_per_s"] > 0:
        print(f"ratio cdrhub/baseline {scenarios[s]}: {c['records_per_s'] / b['records_per_s']:.2f}")

# Peak RSS: the kernel's high-water mark at each server's end, and the
# load generator's 250 ms samples (the two may differ by a little).
peaks = [r["max_rss_mb"] for (t, _), r in runs.items() if t == "cdrhub" and r["max_rss_mb"] is not None]
peak_path = os.path.join(work, "cdrhub-peak-rss")
if os.path.exists(peak_path):
    peaks += [float(v) for v in open(peak_path).read().split()]
peak = max(peaks) if peaks else None
if peak is not None:
    print(f"cdrhub peak resident memory over the whole run: {peak:.1f} MB")

missed = []
if any(t == "cdrhub" for t, _ in runs):
    print()
    checks = [
        ("(a) >= 15000 records/s", runs.get(("cdrhub", "a")), lambda r: r["records_per_s"] >= 15000),
        ("(b) >= 60000 records/s", runs.get(("cdrhub", "b")), lambda r: r["records_per_s"] >= 60000),
        ("(c) p99 <= 25 ms", runs.get(("cdrhub", "c")), lambda r: r["p99_ms"] <= 25),
    ]
    for label, r, ok in checks:
        verdict = "missing" if r is None else ("PASS" if ok(r) else "FAIL")
        if verdict != "PASS":
            missed.append(label)
        print(f"target {label:<28} {verdict}")
    verdict = "missing" if peak is None else ("PASS" if peak <= 200 else "FAIL")
    if verdict != "PASS":
        missed.append("RSS <= 200 MB")
    print(f"target {'RSS <= 200 MB throughout':<28} {verdict}")

failed_runs = [f"{t}-{s}" for (t, s), r in runs.items() if r["non_200"] + r["errors"] + r.get("unsent", 0) > 0]
if failed_runs:
    print()
    print("NOT ALL POSTS ACKNOWLEDGED in: " + ", ".join(failed_runs) + " (see the summaries above)")

out = os.environ.get("BENCH_OUT")
if out:
    with open(out, "a") as f:
        for (t, s), r in runs.items():
            line = dict(r, receiver=t, scenario=s, machine_nproc=int(os.environ["MACHINE_NPROC"]),
                        machine_cpu=os.environ["MACHINE_CPU"], date=os.environ["MACHINE_DATE"],
                        commit=os.environ["MACHINE_COMMIT"])
            f.write(json.dumps(line) + "\n")

status = 1 if failed_runs else 0
if missed and os.environ.get("BENCH_ENFORCE_TARGETS") == "1":
    status = 1
raise SystemExit(status)
PY
