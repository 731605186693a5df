//! Close and drop stop cleanly: nothing acknowledged is lost and no thread is left.
#![allow(clippy::disallowed_methods)]

mod common;

use writelog::{Durability, Options, Store};

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn drop_without_close_keeps_every_acknowledged_record_and_leaks_no_thread() {
    let dir = tempfile::tempdir().unwrap();
    let threads_before = thread_count();
    for round in 0..5 {
        let store = Store::open(dir.path(), Options::default()).unwrap();
        for i in 0..100 {
            let durability = [Durability::Sync, Durability::Buffered, Durability::None][i % 3];
            store
                .append_with(b"key", format!("{round}-{i}").as_bytes(), durability)
                .unwrap();
        }
        drop(store);
    }
    // A joined thread can still be listed in /proc for a moment after `join` returns (the
    // kernel wakes the joiner before it reaps the task): wait for the listing to settle,
    // a bounded while, rather than race it.
    let settled = std::time::Instant::now();
    while thread_count() != threads_before && settled.elapsed() < std::time::Duration::from_secs(5)
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(
        thread_count(),
        threads_before,
        "a thread outlived its store"
    );
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let records = store.read(b"key").unwrap();
    assert_eq!(
        records.len(),
        500,
        "every acknowledged record, even `None`, survives a clean drop"
    );
    store.flush().unwrap();
    assert_eq!(
        store.read(b"key").unwrap(),
        records,
        "the same once applied"
    );
    store.close().unwrap();
}
