//! Replays every checked-in fuzz corpus file and every crash ever found through the fuzz
//! targets' own bodies (`fuzz/bodies.rs`), on the stable toolchain. `write_seed_corpus`
//! (ignored) writes the seed corpora.
#![allow(clippy::disallowed_methods, clippy::disallowed_types, dead_code)]

include!("../fuzz/bodies.rs");

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut files = Vec::new();
    for dir in [
        root.join("corpus").join(target),
        root.join("regressions").join(target),
    ] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files
}

fn replay(target: &str, body: impl Fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&bytes))).is_err() {
            panic!("{target} fails on {}", file.display());
        }
    }
}

#[test]
fn log_decode_corpus() {
    replay("log_decode", log_decode);
}

#[test]
fn keyfile_decode_corpus() {
    replay("keyfile_decode", keyfile_decode);
}

#[test]
fn log_roundtrip_corpus() {
    replay("log_roundtrip", |bytes| {
        let input = arbitrary::Unstructured::new(bytes);
        if let Ok(log) = <FuzzLog as arbitrary::Arbitrary>::arbitrary_take_rest(input) {
            log_roundtrip(log);
        }
    });
}

/// Writes the seed corpora: valid logs and key files, and cut and flipped variants.
#[test]
#[ignore = "run by hand to regenerate fuzz/corpus"]
fn write_seed_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus");
    let mut logs = Vec::new();
    for n in 0..6u64 {
        let mut bytes = Vec::new();
        encode_log_header(&mut bytes);
        for i in 0..n {
            let len = (i % 3 + 1) as u32;
            for j in 0..len {
                let seq = i * 10 + u64::from(j) + 1;
                let payload = vec![b'p'; (i * 7) as usize];
                let kind = if i == 4 { Kind::Delete } else { Kind::Append };
                let payload: &[u8] = if kind == Kind::Delete { &[] } else { &payload };
                let block = Block {
                    seq,
                    kind,
                    batch_first: j == 0,
                    batch_left: len - 1 - j,
                    key: b"key",
                    payload,
                };
                encode_block(&mut bytes, &block);
            }
        }
        logs.push(bytes);
    }
    let mut variants = logs.clone();
    for log in &logs {
        for cut in [log.len() / 2, log.len().saturating_sub(3)] {
            variants.push(log[..cut].to_vec());
        }
        let mut flipped = log.clone();
        if let Some(byte) = flipped.get_mut(log.len() * 2 / 3) {
            *byte ^= 0x10;
        }
        variants.push(flipped);
    }
    write_all(&root.join("log_decode"), &variants);
    let mut keyfiles = Vec::new();
    for n in 0..6u64 {
        let mut bytes = Vec::new();
        writelog::keystore::encode_key_header(&mut bytes, format!("key-{n}").as_bytes());
        for seq in 1..=n {
            let kind = if seq == 3 {
                writelog::keystore::RecordKind::Tombstone
            } else {
                writelog::keystore::RecordKind::Append
            };
            let payload: &[u8] = if seq == 3 { b"" } else { b"payload" };
            writelog::keystore::encode_key_record(&mut bytes, seq, kind, payload);
        }
        keyfiles.push(bytes.clone());
        keyfiles.push(bytes[..bytes.len() - 1].to_vec());
        keyfiles.push(bytes[..bytes.len() / 2].to_vec());
        for at in [3, bytes.len() / 3, bytes.len() * 3 / 4] {
            let mut flipped = bytes.clone();
            if let Some(byte) = flipped.get_mut(at) {
                *byte ^= 0x01;
            }
            keyfiles.push(flipped);
        }
    }
    write_all(&root.join("keyfile_decode"), &keyfiles);
    let roundtrips: Vec<Vec<u8>> = (0..24u8)
        .map(|i| {
            (0..(i as usize * 5))
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
                .collect()
        })
        .collect();
    write_all(&root.join("log_roundtrip"), &roundtrips);
}

fn write_all(dir: &Path, inputs: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap();
    for (i, bytes) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:03}")), bytes).unwrap();
    }
}
