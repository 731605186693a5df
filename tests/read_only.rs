//! `Store::open_read_only`: reads everything the store holds, in its key store and in
//! its logs, and changes nothing on disk; it shares the store with other readers only.
#![allow(clippy::disallowed_methods)]

mod common;
use common::disk_picture;

use writelog::{Durability, Error, Options, Seq, Store};

#[test]
fn a_read_only_open_reads_the_key_store_and_the_logs_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    for i in 0..20u32 {
        store
            .append(format!("k{}", i % 4), i.to_le_bytes())
            .unwrap();
    }
    store.flush().unwrap(); // In the key store.
    store.delete("k3").unwrap();
    for i in 20..30u32 {
        // Still in the log when the store closes.
        store
            .append_with(format!("k{}", i % 4), i.to_le_bytes(), Durability::Buffered)
            .unwrap();
    }
    let expected: Vec<_> = (0..4)
        .map(|k| store.read(format!("k{k}")).unwrap())
        .collect();
    let keys = store.keys().unwrap();
    store.close().unwrap();
    let before = disk_picture(dir.path());

    let reader = Store::open_read_only(dir.path(), Options::default()).unwrap();
    let second = Store::open_read_only(dir.path(), Options::default()).unwrap();
    for (k, want) in expected.iter().enumerate() {
        let key = format!("k{k}");
        assert_eq!(&reader.read(&key).unwrap(), want, "{key}");
        assert_eq!(&second.read(&key).unwrap(), want, "{key}");
        assert_eq!(reader.last(&key).unwrap().as_ref(), want.last());
        let after = want.first().map_or(Seq(0), |r| r.seq);
        assert_eq!(
            reader.records(&key, after, 2).unwrap(),
            want.iter().skip(1).take(2).cloned().collect::<Vec<_>>()
        );
    }
    assert_eq!(reader.keys().unwrap(), keys);
    assert!(matches!(reader.read(""), Err(Error::EmptyKey)));
    // A writable open waits for the readers to go.
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
    drop((reader, second));
    assert_eq!(disk_picture(dir.path()), before, "nothing changed on disk");

    // And a reader waits for the writer to go.
    let store = Store::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        Store::open_read_only(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
    store.close().unwrap();
}

#[test]
fn a_read_only_open_of_a_directory_without_a_store_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none");
    let refused = Store::open_read_only(&missing, Options::default())
        .err()
        .unwrap();
    assert!(
        matches!(&refused, Error::NoStore(path) if path.ends_with("none")),
        "{refused:?}"
    );
    assert!(!missing.exists());
    let refused = Store::open_read_only(dir.path(), Options::default())
        .err()
        .unwrap();
    assert!(matches!(refused, Error::NoStore(_)), "{refused:?}");
    assert!(disk_picture(dir.path()).is_empty());
}
