//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;

use writelog::format::{DecodeLimits, Kind, LogDecoder};
use writelog::machine::{parse_log_file_name, READING_DIR, WRITING_LOG};

/// A record as read back from the logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedRecord {
    pub seq: u64,
    pub kind: Kind,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// Every record in the store's logs, finished logs in name order then the active log,
/// panicking on any damage (the tests only read logs of cleanly recovered stores).
pub fn logged_records(dir: &Path) -> Vec<LoggedRecord> {
    let mut paths: Vec<_> = std::fs::read_dir(dir.join(READING_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| parse_log_file_name(n).is_some())
        .collect();
    paths.sort();
    let mut paths: Vec<_> = paths
        .into_iter()
        .map(|n| dir.join(READING_DIR).join(n))
        .collect();
    if dir.join(WRITING_LOG).exists() {
        paths.push(dir.join(WRITING_LOG));
    }
    let mut records = Vec::new();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        for item in LogDecoder::new(&bytes, DecodeLimits::default()) {
            let batch = item.unwrap_or_else(|d| panic!("damage in {}: {d:?}", path.display()));
            for b in batch.blocks {
                records.push(LoggedRecord {
                    seq: b.seq,
                    kind: b.kind,
                    key: b.key.to_vec(),
                    payload: b.payload.to_vec(),
                });
            }
        }
    }
    records
}

/// Every record the store holds, by seq: `(key, payload)`, read through `keys` and `read`.
/// Panics if any seq appears twice or a key's records are out of seq order.
pub fn store_contents<F: writelog::fs::Fs, C: writelog::clock::Clock>(
    store: &writelog::Store<F, C>,
) -> std::collections::BTreeMap<u64, (Vec<u8>, Vec<u8>)> {
    let mut all = std::collections::BTreeMap::new();
    for key in store.keys().unwrap() {
        let records = store.read(&key).unwrap();
        assert!(
            records.windows(2).all(|w| w[0].seq < w[1].seq),
            "a key's records are in seq order"
        );
        for record in records {
            let previous = all.insert(record.seq, (key.clone(), record.payload));
            assert!(previous.is_none(), "seq {} is held twice", record.seq);
        }
    }
    all
}

/// Every file under `dir` with its bytes, sorted by path: a picture of the store on disk.
pub fn disk_picture(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}
