//! 16 threads × 5,000 operations over 1,000 keys, deletes and truncates mixed in, then
//! `flush`: every key equals a reference model built from the acknowledged seqs, before
//! and after a reopen.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;

use writelog::{Options, Seq, Store};

/// An acknowledged operation.
enum Op {
    Append(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// A truncate and the seq it was asked to keep from.
    Truncate(Vec<u8>, u64),
}

#[test]
fn sixteen_threads_with_deletes_match_a_reference_model() {
    const THREADS: u64 = 16;
    const PER_THREAD: u64 = 5_000;
    const KEYS: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    // Small segments and an eager compaction policy: partitions are compacted while
    // the threads append and read.
    let options = Options {
        rotate_interval_ms: 10,
        committers: 3,
        segment_bytes_max: 16 << 10,
        compaction_min_bytes: 32 << 10,
        compaction_space_percent: 150,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options.clone()).unwrap();
    let acked: Vec<(u64, Op)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..PER_THREAD {
                        let key = format!("key-{}", (t * 7_919 + i * 31) % KEYS).into_bytes();
                        if i % 50 == 49 {
                            let seq = store.delete(&key).unwrap();
                            acked.push((seq.0, Op::Delete(key)));
                        } else if i % 10 == 4 {
                            // Keep from a recent seq of this thread's (often another
                            // key's, sometimes past the key's newest record).
                            let before = acked.iter().rev().nth(3).map_or(0, |(s, _)| *s);
                            let seq = store.truncate(&key, Seq(before)).unwrap();
                            acked.push((seq.0, Op::Truncate(key, before)));
                        } else {
                            let payload = format!("t{t}-{i}").into_bytes();
                            let seq = store.append(&key, &payload).unwrap();
                            acked.push((seq.0, Op::Append(key, payload)));
                        }
                    }
                    acked
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });

    // The reference: acknowledged operations applied in seq order.
    let mut ordered: BTreeMap<u64, &Op> = BTreeMap::new();
    for (seq, op) in &acked {
        assert!(ordered.insert(*seq, op).is_none(), "seq {seq} given twice");
    }
    let mut model: BTreeMap<Vec<u8>, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for (seq, op) in ordered {
        match op {
            Op::Append(key, payload) => model
                .entry(key.clone())
                .or_default()
                .push((seq, payload.clone())),
            Op::Delete(key) => {
                model.remove(key);
            }
            Op::Truncate(key, before) => {
                let floor = (*before).min(seq);
                if let Some(records) = model.get_mut(key) {
                    records.retain(|(s, _)| *s >= floor);
                }
            }
        }
    }
    model.retain(|_, records| !records.is_empty());

    let check = |store: &Store, when: &str| {
        let keys = store.keys().unwrap();
        assert_eq!(
            keys,
            model.keys().cloned().collect::<Vec<_>>(),
            "{when}: keys"
        );
        for (key, expected) in &model {
            let got: Vec<(u64, Vec<u8>)> = store
                .read(key)
                .unwrap()
                .into_iter()
                .map(|r| (r.seq.0, r.payload))
                .collect();
            assert_eq!(
                &got,
                expected,
                "{when}: key {}",
                String::from_utf8_lossy(key)
            );
        }
    };
    check(&store, "before flush");
    store.flush().unwrap();
    let stats = store.stats();
    assert_eq!(stats.logs_waiting, 0, "{stats:?}");
    assert_eq!(stats.records_waiting, 0, "{stats:?}");
    check(&store, "after flush");
    eprintln!("compactions: {}", stats.compactions);
    store.close().unwrap();
    let reopened = Store::open(dir.path(), options).unwrap();
    check(&reopened, "after reopen");
    reopened.close().unwrap();
}
