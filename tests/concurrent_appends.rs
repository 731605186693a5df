//! 16 threads × 5,000 synced appends, close, reopen: every acknowledged record is in the
//! logs exactly once, seqs strictly increase, and each thread's order is kept.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;

use writelog::{Options, Store};

#[test]
fn sixteen_threads_of_synced_appends_survive_close_and_reopen() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        rotate_interval_ms: 20,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options.clone()).unwrap();
    let acked: Vec<Vec<(u64, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            let key = format!("key-{}", (t * 31 + i) % 97);
                            let payload = format!("t{t}-{i}").into_bytes();
                            let seq = store.append(key.as_bytes(), &payload).unwrap();
                            (seq.0, payload)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stats = store.stats();
    assert_eq!(stats.appends, (THREADS * PER_THREAD) as u64);
    assert!(
        stats.mean_batch_size > 1.0,
        "group commit groups: {stats:?}"
    );
    store.close().unwrap();
    // Reopen, apply everything, and read it all back through the store.
    let reopened = Store::open(dir.path(), options).unwrap();
    reopened.flush().unwrap();
    let contents = common::store_contents(&reopened);
    assert_eq!(reopened.stats().logs_waiting, 0, "flush retires every log");
    reopened.close().unwrap();

    assert_eq!(
        contents.len(),
        THREADS * PER_THREAD,
        "every acknowledged record, once"
    );
    let by_seq: BTreeMap<u64, &[u8]> = contents
        .iter()
        .map(|(seq, (_, payload))| (*seq, &payload[..]))
        .collect();
    for (t, thread_acks) in acked.iter().enumerate() {
        assert!(
            thread_acks.windows(2).all(|w| w[0].0 < w[1].0),
            "thread {t}'s order is kept"
        );
        for (seq, payload) in thread_acks {
            assert_eq!(
                by_seq.get(seq),
                Some(&&payload[..]),
                "seq {seq} holds what thread {t} wrote"
            );
        }
    }
}
