#!/usr/bin/env bash
# Runs every check and test of cdrhub. This is the README's test command and
# exactly what CI runs (.ci/run). It installs or starts whatever the tests
# need, so it works on a fresh clone.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== formatting"
cargo fmt --all -- --check

echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
cargo test --workspace --locked
