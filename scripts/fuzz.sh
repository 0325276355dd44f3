#!/usr/bin/env bash
# Fuzzing every decoder with cargo fuzz (issue 9). The targets live in
# fuzz/ (outside the workspace); what each does is in crates/fuzzing, whose
# test replays fuzz/corpus and fuzz/artifacts in a plain `cargo test`.
#
#   scripts/fuzz.sh list                 the targets
#   scripts/fuzz.sh seed                 write the starting corpora from tests/data
#   scripts/fuzz.sh run TARGET [SECONDS] fuzz one target (default 600 s), then
#                                        minimize its corpus
#   scripts/fuzz.sh all [SECONDS]        every target in turn
#
# cargo fuzz passes nightly-only flags (the address sanitizer); this machine
# has one stable toolchain, so they are allowed with RUSTC_BOOTSTRAP=1.
# A crash is kept in fuzz/artifacts/TARGET; fix it, keep the file, and the
# replay test checks it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."

targets() { sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^cdrhub-fuzz$'; }

need_cargo_fuzz() {
    command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
}

run_one() {
    local target=$1 seconds=${2:-600}
    need_cargo_fuzz
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    echo "== $target: ${seconds}s"
    # -rss_limit_mb: a decoder that needs more than this for one input is a
    # finding too. The jobs' logs go to fuzz/logs (not kept in git).
    mkdir -p fuzz/logs
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -print_final_stats=1 2>&1 | tee "fuzz/logs/$target.log" | grep -E '^(#[0-9]+ *(DONE|INITED)|==|stat::|SUMMARY|.*panicked)' || true
    # Keep the smallest corpus that covers as much.
    RUSTC_BOOTSTRAP=1 cargo fuzz cmin --fuzz-dir fuzz "$target" >/dev/null 2>&1 || true
    echo "   corpus: $(ls "fuzz/corpus/$target" | wc -l) inputs; crashers: $(ls "fuzz/artifacts/$target" | wc -l)"
}

case ${1:-} in
list) targets ;;
seed) cargo run --quiet -p cdrhub-fuzzing --example seeds && echo "seeded fuzz/corpus" ;;
run) run_one "${2:?scripts/fuzz.sh run TARGET [SECONDS]}" "${3:-600}" ;;
all) for t in $(targets); do run_one "$t" "${2:-600}"; done ;;
*) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
