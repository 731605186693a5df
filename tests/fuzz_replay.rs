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
fn keystore_decode_corpus() {
    replay("keystore_decode", keystore_decode);
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

/// Writes the seed corpora: valid logs and key-store segments, and cut and flipped variants.
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
    write_all(&root.join("keystore_decode"), &keystore_seeds());
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

/// Real segments a committer wrote (with deletes, several runs, groups split past the
/// group target), and cut and flipped variants of them.
fn keystore_seeds() -> Vec<Vec<u8>> {
    use writelog::fs::Fs;
    use writelog::keystore::{KeyStore, OpenMode};
    use writelog::machine::commit::{CommitRecord, CommitWork, Committer};
    let mut seeds = Vec::new();
    for runs in 1..=4u64 {
        let fs = writelog::fs::MemFs::new();
        let (store, _) = KeyStore::open(&fs, OpenMode::new_store(1)).unwrap();
        let mut committer = Committer::new(0, 1, 1 << 20, u64::MAX);
        for run in 0..runs {
            let records = (0..6u64)
                .map(|i| {
                    let seq = run * 10 + i + 1;
                    let delete = i == 4 && run % 2 == 1;
                    CommitRecord {
                        seq,
                        kind: if delete { Kind::Delete } else { Kind::Append },
                        key: format!("key-{}", i % 3).into_bytes(),
                        payload: if delete {
                            Vec::new()
                        } else {
                            vec![b'p'; (seq * 5000 % 70_000) as usize]
                        },
                    }
                })
                .collect();
            let work = CommitWork {
                log: writelog::machine::LogId::at(run),
                records,
            };
            committer.commit(&fs, &store, &[work]).unwrap();
        }
        let bytes = fs.read(Path::new("keys/p000/seg-00000000.dat")).unwrap();
        seeds.extend(variants(&bytes));
        if runs == 4 {
            // What compaction writes: compacted runs of sealed groups, in a new segment.
            committer
                .compact(&fs, &store, 0)
                .unwrap()
                .expect("a compaction ran");
            let mut names = fs.list(Path::new("keys/p000")).unwrap();
            names.retain(|name| name.starts_with("seg-"));
            let merged = names.iter().max().expect("the merged segment");
            seeds.extend(variants(
                &fs.read(&Path::new("keys/p000").join(merged)).unwrap(),
            ));
        }
    }
    // Sealed groups alone, under the key the fuzz body decodes groups with.
    for count in [1u64, 7, 300] {
        let payloads: Vec<Vec<u8>> = (0..count).map(|i| vec![b'g'; (i % 90) as usize]).collect();
        let records: Vec<(u64, &[u8])> = (0..count)
            .map(|i| (i * 2 + 1, &payloads[i as usize][..]))
            .collect();
        let mut group = Vec::new();
        segment::encode_group(
            &mut group,
            b"key",
            None,
            &records,
            segment::GroupForm::Sealed,
        );
        seeds.extend(variants(&group));
    }
    seeds
}

/// `bytes`, half of it, and copies with one bit flipped at a few places.
fn variants(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![bytes.to_vec(), bytes[..bytes.len() / 2].to_vec()];
    for at in [3, 40, 60, bytes.len() / 3, bytes.len() - 1] {
        let mut flipped = bytes.to_vec();
        if let Some(byte) = flipped.get_mut(at) {
            *byte ^= 0x01;
            out.push(flipped);
        }
    }
    out
}
