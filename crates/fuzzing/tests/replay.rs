//! Runs every fuzz target over its kept corpus (`fuzz/corpus/<target>`)
//! and its crashers (`fuzz/artifacts/<target>`), so the inputs the fuzzer
//! found interesting, and every one that once failed, are checked by a
//! plain `cargo test` on the stable toolchain.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_every_input_passes() {
    let mut failures = Vec::new();
    for (name, target) in cdrhub_fuzzing::TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: run scripts/fuzz.sh {name} to make one"
        );
        let crashers = inputs(&fuzz_dir().join("artifacts").join(name));
        for input in corpus.iter().chain(&crashers) {
            let data = std::fs::read(input).expect("a corpus file reads");
            let outcome = std::panic::catch_unwind(|| target(&data));
            if outcome.is_err() {
                failures.push(input.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that fail again: {failures:#?}");
}

#[test]
fn every_target_has_a_fuzz_binary() {
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in cdrhub_fuzzing::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
        assert!(
            fuzz_dir()
                .join("fuzz_targets")
                .join(format!("{name}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{name}.rs is missing"
        );
    }
}
