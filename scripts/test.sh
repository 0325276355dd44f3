#!/usr/bin/env bash
# Runs every check and test of cdrhub. This is the README's test command and
# exactly what CI runs (.ci/run). It installs or starts whatever the tests
# need, so it works on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian puts daemons (kamailio, nats-server) in sbin.
export PATH="$PATH:/usr/sbin:/sbin"

# Installs Debian packages when a command the tests run is missing. apt may
# be locked for a moment by another process: try again.
need() {
    local why=$1 commands=$2 packages=$3 missing=""
    for c in $commands; do command -v "$c" >/dev/null || missing=1; done
    [ -z "$missing" ] && return 0
    echo "== installing $packages ($why)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    for try in 1 2 3; do
        if $sudo apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $packages >/dev/null; then
            return 0
        fi
        sleep $((try * 5))
    done
    echo "cannot install $packages" >&2
    return 1
}

# The console's browser tests drive Debian's Chromium over WebDriver.
need "browser tests" "chromium chromedriver" "chromium chromium-driver"
# The RADIUS tests send real packets with radclient.
need "RADIUS tests" "radclient" "freeradius-utils"
# The SIP tests run Kamailio as a proxy between sipp user agents
# (tests/kamailio, tests/sipp).
need "SIP tests" "kamailio sipp" "kamailio sip-tester"
# The clock-jump test runs the server under libfaketime.
need "clock-jump test" "faketime" "faketime"

# The ingest bus tests use the machine's NATS JetStream on 127.0.0.1:4222
# (real-peers.md): start it when it does not answer.
need "bus tests" "nats-server" "nats-server"
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    echo "== starting NATS JetStream"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
        -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.2; done
fi

# The PostgreSQL store tests use the machine's PostgreSQL on 127.0.0.1:5432.
if ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && [ -d /etc/postgresql ]; then
    echo "== starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

# A full build takes a few GB; say how much room there is, so a full disk
# is seen for what it is.
echo "== disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free here"

echo "== formatting"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Dependencies (SECURITY.md, "Dependencies"): licences, bans and sources
# with cargo deny (deny.toml); advisories when the RustSec database can be
# fetched from GitHub, which the CI machines cannot reach.
echo "== dependencies"
command -v cargo-deny >/dev/null || cargo install --locked cargo-deny
cargo deny --log-level error check bans licenses sources
if timeout 20 git ls-remote https://github.com/RustSec/advisory-db HEAD >/dev/null 2>&1; then
    cargo deny --log-level error check advisories
else
    echo "   advisories not checked: github.com (the RustSec database) cannot be reached from here"
fi

echo "== tests"
cargo test --workspace --locked

# The server's tests again on the PostgreSQL store (issue 8): the same
# requests must give the same answers as on SQLite. Same binaries, no build.
echo "== server tests on PostgreSQL"
CDRHUB_TEST_STORE=postgres cargo test -p cdrhub-server --locked
