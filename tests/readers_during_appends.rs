//! Readers running during concurrent appends (and while the committers apply logs) never
//! miss an acknowledged record and never see one twice.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use writelog::{Options, Store};

#[test]
fn readers_see_every_acknowledged_record_once() {
    const WRITERS: usize = 4;
    const KEYS_PER_WRITER: usize = 10;
    const APPENDS_PER_WRITER: usize = 1_500;
    let dir = tempfile::tempdir().unwrap();
    // Compaction too, eager: reads meet partitions swapped under them.
    let options = Options {
        rotate_interval_ms: 3,
        committers: 2,
        segment_bytes_max: 8 << 10,
        compaction_min_bytes: 16 << 10,
        compaction_space_percent: 130,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options).unwrap();
    let acked: Mutex<BTreeMap<String, Vec<u64>>> = Mutex::new(BTreeMap::new());
    let writing = AtomicBool::new(true);
    let reads = AtomicU64::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, acked) = (&store, &acked);
                s.spawn(move || {
                    for i in 0..APPENDS_PER_WRITER {
                        let key = format!("w{w}-k{}", i % KEYS_PER_WRITER);
                        let seq = store
                            .append(key.as_bytes(), format!("{i}").as_bytes())
                            .unwrap();
                        acked.lock().unwrap().entry(key).or_default().push(seq.0);
                    }
                })
            })
            .collect();
        for r in 0..2 {
            let (store, acked, writing, reads) = (&store, &acked, &writing, &reads);
            s.spawn(move || {
                let mut n = r;
                while writing.load(Ordering::SeqCst) {
                    n += 1;
                    let key = format!("w{}-k{}", n % WRITERS, (n / WRITERS) % KEYS_PER_WRITER);
                    let expected = acked.lock().unwrap().get(&key).cloned().unwrap_or_default();
                    let seen: Vec<u64> = store
                        .read(key.as_bytes())
                        .unwrap()
                        .iter()
                        .map(|r| r.seq.0)
                        .collect();
                    assert!(
                        seen.windows(2).all(|w| w[0] < w[1]),
                        "{key}: a record twice or out of order: {seen:?}"
                    );
                    for seq in &expected {
                        assert!(
                            seen.binary_search(seq).is_ok(),
                            "{key}: acknowledged seq {seq} missing"
                        );
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for writer in writers {
            writer.join().unwrap();
        }
        writing.store(false, Ordering::SeqCst);
    });
    assert!(
        store.stats().records_applied > 0,
        "the committers ran during the reads"
    );
    assert!(
        reads.load(Ordering::Relaxed) > 100,
        "only {} reads",
        reads.load(Ordering::Relaxed)
    );
    store.close().unwrap();
}
