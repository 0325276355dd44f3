#!/usr/bin/env bash
# Runs every check and test of cdrhub. This is the README's test command and
# exactly what CI runs (.ci/run). It installs or starts whatever the tests
# need, so it works on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

# The console's browser tests drive Debian's Chromium over WebDriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "== installing chromium and chromium-driver (browser tests)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# The RADIUS tests send real packets with radclient (freeradius-utils).
if ! command -v radclient >/dev/null; then
    echo "== installing freeradius-utils (radclient, RADIUS tests)"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq freeradius-utils >/dev/null
fi

echo "== formatting"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
cargo test --workspace --locked
