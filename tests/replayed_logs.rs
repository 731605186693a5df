//! An applied log copied back into `reading/`, under its own name and under a later one,
//! changes nothing on reopen: no record twice, and a key deleted after it stays deleted.
#![allow(clippy::disallowed_methods)]

mod common;

use writelog::machine::{LogId, READING_DIR, WRITING_LOG};
use writelog::{Options, Store};

#[test]
fn a_replayed_applied_log_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        rotate_interval_ms: 3_600_000,
        ..Options::default()
    };
    // Write a log and keep a copy of it before it is ever applied.
    let store = Store::open(dir.path(), options.clone()).unwrap();
    for i in 0..50 {
        store
            .append(format!("k{}", i % 5).as_bytes(), format!("v{i}").as_bytes())
            .unwrap();
    }
    store.close().unwrap();
    let copy = std::fs::read(dir.path().join(WRITING_LOG)).unwrap();

    // Reopen: the log is finished and applied; then delete a key in a later log.
    let store = Store::open(dir.path(), options.clone()).unwrap();
    let own_name = store
        .recovery_report()
        .leftover
        .clone()
        .unwrap()
        .finished_as
        .unwrap();
    store.flush().unwrap();
    store.delete(b"k3").unwrap();
    store.append(b"k4", b"after").unwrap();
    store.flush().unwrap();
    let before = common::store_contents(&store);
    assert!(!store.keys().unwrap().contains(&b"k3".to_vec()));
    store.close().unwrap();

    // Put the applied log back, under its own name and under a later one.
    let reading = dir.path().join(READING_DIR);
    let later = LogId::at(own_name.ts() + 1_000_000_000_000);
    std::fs::write(reading.join(own_name.file_name()), &copy).unwrap();
    std::fs::write(reading.join(later.file_name()), &copy).unwrap();

    let store = Store::open(dir.path(), options).unwrap();
    assert_eq!(
        common::store_contents(&store),
        before,
        "before the replay is applied"
    );
    store.flush().unwrap();
    assert_eq!(
        common::store_contents(&store),
        before,
        "after the replay is applied"
    );
    assert!(
        store.read(b"k3").unwrap().is_empty(),
        "the deleted key did not come back"
    );
    let stats = store.stats();
    assert_eq!(
        stats.logs_waiting, 0,
        "the replayed logs are removed: {stats:?}"
    );
    assert_eq!(
        stats.records_applied, 0,
        "nothing was applied twice: {stats:?}"
    );
    store.close().unwrap();
    let left: Vec<_> = std::fs::read_dir(&reading).unwrap().collect();
    assert!(left.is_empty(), "reading/ is empty");
}
