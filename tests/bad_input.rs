//! Every bad input gets its typed error and changes nothing on disk.

mod common;

use writelog::{Error, Options, Store};

#[test]
fn each_bad_input_gets_its_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        rotate_interval_ms: 3_600_000,
        max_key_len: 16,
        max_record_len: 100,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options).unwrap();
    store.append(b"good", b"one record").unwrap();
    let before = common::disk_picture(dir.path());

    assert!(matches!(store.append(b"", b"x"), Err(Error::EmptyKey)));
    assert!(matches!(
        store.append([7u8; 17], b"x"),
        Err(Error::KeyTooLong { len: 17, max: 16 })
    ));
    assert!(matches!(
        store.append(b"k", [0u8; 101]),
        Err(Error::RecordTooLarge { len: 101, max: 100 })
    ));
    assert!(matches!(store.try_append(b"", b"x"), Err(Error::EmptyKey)));
    assert!(matches!(store.delete(b""), Err(Error::EmptyKey)));
    let empty: [(&[u8], &[u8]); 0] = [];
    assert!(matches!(store.append_batch(&empty), Err(Error::EmptyBatch)));
    // One bad record refuses the whole batch: none of it is written.
    let mixed: [(&[u8], &[u8]); 2] = [(b"fine", b"x"), (b"", b"y")];
    assert!(matches!(store.append_batch(&mixed), Err(Error::EmptyKey)));
    let options = Options {
        max_key_len: 0,
        ..Options::default()
    };
    let other = tempfile::tempdir().unwrap();
    let never = other.path().join("never-created");
    assert!(matches!(
        Store::open(&never, options),
        Err(Error::InvalidOptions(_))
    ));
    assert!(!never.exists(), "bad options create nothing on disk");

    assert_eq!(
        common::disk_picture(dir.path()),
        before,
        "bad input changed the disk"
    );
    assert_eq!(store.stats().appends, 1);
    store.close().unwrap();
}

#[test]
fn keys_and_payloads_at_the_limits_are_taken() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        max_key_len: 16,
        max_record_len: 100,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options).unwrap();
    store.append([0xFFu8; 16], [1u8; 100]).unwrap();
    store.append(b"\0", b"").unwrap();
    store.close().unwrap();
}
