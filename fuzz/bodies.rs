// The bodies of the fuzz targets: one plain file, included by each cargo-fuzz target
// (`fuzz/fuzz_targets/*.rs`) and by the stable replay test (`tests/fuzz_replay.rs`), so
// every checked-in corpus file and every crash ever found (`fuzz/regressions/<target>/`)
// is replayed by `cargo test` without a nightly toolchain.
//
// Each body checks what must hold for any input, and panics (a finding) if it does not.

use writelog::format::{encode_block, encode_log_header, Block, DecodeLimits, Kind, LogDecoder};
use writelog::keystore::{manifest, segment, KeyStore, OpenMode};
use writelog::machine::dispatch::route_log;
use writelog::RecoveryMode;

/// Arbitrary bytes as a log: the decoder never panics, every step advances, and what it
/// yields is well formed; routing it in every recovery mode never panics either.
pub fn log_decode(data: &[u8]) {
    let mut items = 0usize;
    let mut last_end = 0u64;
    let mut decoder = LogDecoder::new(data, DecodeLimits::default());
    for item in decoder.by_ref() {
        items += 1;
        assert!(items <= data.len() + 2, "the walk must end");
        match item {
            Ok(batch) => {
                assert!(!batch.blocks.is_empty(), "a batch holds a block");
                assert!(batch.offset >= last_end && batch.end <= data.len() as u64, "batches advance inside the input");
                last_end = batch.end;
                assert!(batch.blocks[0].batch_first, "a batch starts with its first block");
                assert_eq!(batch.blocks.last().map(|b| b.batch_left), Some(0), "a batch ends with its last block");
                for pair in batch.blocks.windows(2) {
                    assert_eq!(pair[0].seq + 1, pair[1].seq, "a batch's seqs are consecutive");
                }
            }
            Err(damage) => {
                assert!(damage.offset <= damage.bad_at && damage.bad_at <= data.len() as u64, "damage lies inside the input");
                if let Some(next) = damage.resumes_at {
                    assert!(next > damage.bad_at || next == damage.bad_at && damage.reason == writelog::format::BadReason::BrokenBatch);
                    last_end = next;
                }
            }
        }
    }
    assert!(decoder.valid_prefix_len() <= data.len() as u64);
    for mode in [RecoveryMode::Strict, RecoveryMode::PointInTime, RecoveryMode::SkipCorrupt] {
        if let Ok(routed) = route_log(std::path::Path::new("tx-fuzz.log"), data, mode, 0) {
            assert!(routed.records.windows(2).all(|w| w[0].seq < w[1].seq), "routed seqs increase");
        }
    }
}

/// One record of a round-trip input.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct FuzzRecord {
    /// Delete instead of append.
    pub delete: bool,
    /// The key (an empty one is made one byte long).
    pub key: Vec<u8>,
    /// The payload (dropped for a delete).
    pub payload: Vec<u8>,
}

/// A round-trip input: batches with a gap before each.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct FuzzLog {
    /// The first seq, less one.
    pub start: u32,
    /// Batches, each with the seq gap before it.
    pub batches: Vec<(u8, Vec<FuzzRecord>)>,
}

/// A record as written and as decoded: seq, kind, key, payload.
type Owned = (u64, Kind, Vec<u8>, Vec<u8>);

/// Arbitrary records, encoded, decode back equal and undamaged.
pub fn log_roundtrip(log: FuzzLog) {
    let mut bytes = Vec::new();
    encode_log_header(&mut bytes);
    let mut written: Vec<Vec<Owned>> = Vec::new();
    let mut seq = u64::from(log.start);
    for (gap, records) in log.batches {
        if records.is_empty() {
            continue;
        }
        seq += u64::from(gap);
        let len = records.len() as u32;
        let mut batch = Vec::new();
        for (i, record) in records.into_iter().enumerate() {
            seq += 1;
            let mut key = record.key;
            key.truncate(writelog::format::FORMAT_KEY_LEN_MAX);
            if key.is_empty() {
                key.push(0);
            }
            let (kind, payload) = if record.delete { (Kind::Delete, Vec::new()) } else { (Kind::Append, record.payload) };
            let block = Block { seq, kind, batch_first: i == 0, batch_left: len - 1 - i as u32, key: &key, payload: &payload };
            encode_block(&mut bytes, &block);
            batch.push((seq, kind, key, payload));
        }
        written.push(batch);
    }
    let decoded: Vec<Vec<Owned>> = LogDecoder::new(&bytes, DecodeLimits::default())
        .map(|item| {
            let batch = item.unwrap_or_else(|damage| panic!("damage in a clean log: {damage:?}"));
            batch.blocks.iter().map(|b| (b.seq, b.kind, b.key.to_vec(), b.payload.to_vec())).collect()
        })
        .collect();
    assert_eq!(decoded, written);
}

/// Arbitrary bytes through every key-store decoder: as a MANIFEST, a run header and its
/// index, a group, and whole, as partition 0's only segment (numbered as its header says,
/// so that a compaction's segment reads too) of a store whose MANIFEST says every byte is
/// durable, opened read-only under each recovery mode, scrubbed, and
/// every indexed key read and tailed. Nothing panics, and what decodes is well formed.
pub fn keystore_decode(data: &[u8]) {
    if let Ok(decoded) = manifest::decode(data) {
        assert!(decoded.partitions >= 1 && decoded.segments.iter().all(|s| s.partition < decoded.partitions));
        assert_eq!(manifest::encode(&decoded), data, "a MANIFEST decodes only from its own encoding");
    }
    if let Ok(run) = segment::decode_run_header(data, data.len() as u64) {
        assert!(run.run_len <= data.len() as u64 && run.first_seq <= run.last_seq);
        let index = data.get(segment::RUN_HEADER_LEN..segment::RUN_HEADER_LEN + run.index_len as usize);
        if let Some(Ok(entries)) = index.map(|index| segment::decode_run_index(index, &run)) {
            assert_eq!(entries.len(), run.entries as usize);
            assert!(entries.windows(2).all(|w| w[0].key <= w[1].key), "entries sorted by key");
            assert!(entries.iter().all(|e| e.first_seq <= e.last_seq && e.last_seq <= e.op_last && e.op_last <= run.last_seq));
        }
    }
    if let Ok(group) = segment::decode_group(b"key", data) {
        assert!(group.records.windows(2).all(|w| w[0].0 < w[1].0), "a group's records in seq order");
        assert!(group.damage.is_none_or(|(at, _)| at < data.len() + 1));
    }
    let fs = writelog::fs::MemFs::new();
    let number = data.get(16..20).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let listed = manifest::Manifest {
        partitions: 1,
        watermark: 0,
        segments: vec![manifest::SegmentEntry { partition: 0, segment: number, durable_len: data.len() as u64 }],
        checkpoints: Vec::new(),
    };
    writelog::fs::Fs::create_dir_all(&fs, std::path::Path::new("keys/p000")).expect("MemFs makes directories");
    let put = |path: &str, bytes: &[u8]| fs.put(std::path::Path::new(path), bytes).expect("MemFs takes any file");
    put(manifest::MANIFEST_FILE, &manifest::encode(&listed));
    put(&format!("keys/p000/seg-{number:08}.dat"), data);
    for recovery in [RecoveryMode::Strict, RecoveryMode::PointInTime, RecoveryMode::SkipCorrupt] {
        let mode = OpenMode { partitions: 1, recovery, writable: false };
        let Ok((store, _)) = KeyStore::open(&fs, mode) else {
            assert_eq!(recovery, RecoveryMode::Strict, "only Strict refuses damage on open");
            continue;
        };
        for key in store.keys(&fs).unwrap_or_default() {
            if let Ok(read) = store.read(&fs, &key, 0, usize::MAX) {
                assert!(read.records.iter().zip(read.records.iter().skip(1)).all(|(a, b)| a.seq < b.seq), "a read is in seq order");
                assert!(read.records.last().is_none_or(|r| r.seq.0 <= read.last_seq));
                let tail = store.tail(&fs, &key, 2).expect("a tail meets no more damage than a read");
                assert!(tail.records.len() <= 2);
            }
        }
    }
    let report = writelog::keystore::scrub::scrub(&fs).expect("scrub reads a MemFs");
    assert!(report.bytes <= data.len() as u64);
}
