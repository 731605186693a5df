//! Replays the `sim_ops` fuzz corpus and every crash ever found for it (`fuzz/corpus/sim_ops`,
//! `fuzz/regressions/sim_ops`) through the target's own body, on the stable toolchain.
//! `write_seed_corpus` (ignored) writes the seed corpus.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

include!("../../fuzz/bodies_sim.rs");

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fuzz")
}

#[test]
fn sim_ops_corpus() {
    let mut files = Vec::new();
    for dir in [
        fuzz_dir().join("corpus/sim_ops"),
        fuzz_dir().join("regressions/sim_ops"),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    assert!(!files.is_empty(), "no sim_ops corpus");
    let files_count = files.len();
    let (mut decoded, mut ops) = (0, 0);
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let input = arbitrary::Unstructured::new(&bytes);
        if let Ok(script) = <FuzzScript as arbitrary::Arbitrary>::arbitrary_take_rest(input) {
            ops += script.ops.len();
            let run = std::panic::catch_unwind(|| sim_ops(script));
            assert!(run.is_ok(), "sim_ops fails on {}", file.display());
            decoded += 1;
        }
    }
    // The corpus must still decode into scripts that do something.
    assert!(
        decoded * 2 >= files_count,
        "{decoded} of {files_count} inputs decode"
    );
    assert!(ops >= files_count, "only {ops} operations in the corpus");
}

/// Seed inputs: byte strings that `arbitrary` turns into varied scripts.
#[test]
#[ignore = "run by hand to regenerate fuzz/corpus/sim_ops"]
fn write_seed_corpus() {
    let dir = fuzz_dir().join("corpus/sim_ops");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..32u32 {
        let len = 16 + i as usize * 24;
        let bytes: Vec<u8> = (0..len)
            .map(|j| {
                (j as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(i * 97)
                    .to_le_bytes()[2]
            })
            .collect();
        std::fs::write(dir.join(format!("seed-{i:03}")), bytes).unwrap();
    }
}
