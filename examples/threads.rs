//! Threads sharing one store: each appends to its own keys, some in batches, then all
//! read what the others wrote.
//!
//! `cargo run --example threads`
// An application: it reads the OS clock and starts threads as it likes (the bans in
// clippy.toml guard the library's machines).
#![allow(clippy::disallowed_methods)]

use writelog::{Durability, Options, Store};

fn main() -> Result<(), writelog::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path(), Options::default())?;
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..8)
            .map(|device| {
                let store = &store;
                s.spawn(move || -> Result<(), writelog::Error> {
                    let key = format!("device:{device}");
                    for reading in 0..100u32 {
                        // `Sync` (the default) returns once the record survives a power cut;
                        // concurrent callers share one fdatasync (group commit).
                        store.append(&key, format!("reading {reading}"))?;
                    }
                    // A batch is all or nothing, whatever happens.
                    let batch: [(&[u8], &[u8]); 2] =
                        [(key.as_bytes(), b"calibrated"), (b"fleet", b"device done")];
                    store.append_batch_with(&batch, Durability::Buffered)?;
                    Ok(())
                })
            })
            .collect();
        writers
            .into_iter()
            .try_for_each(|writer| writer.join().expect("no writer panics"))
    })?;
    // Every thread's writes are readable at once (read-your-writes), before the key store
    // has them.
    for device in 0..8 {
        let key = format!("device:{device}");
        let records = store.read(&key)?;
        assert_eq!(records.len(), 101, "{key}");
        let last = store.last(&key)?.expect("the key has records");
        println!(
            "{key}: {} records, last seq {} holds {:?}",
            records.len(),
            last.seq,
            String::from_utf8_lossy(&last.payload)
        );
    }
    assert_eq!(store.read("fleet")?.len(), 8);
    // `flush` waits for the key store; `close` does too, and stops the threads.
    store.flush()?;
    println!(
        "{} keys; every seq up to {} is in the key store",
        store.keys()?.len(),
        store.stats().applied_seq
    );
    store.close()
}
