//! A `Store`'s errors name the store's directory and the file in it: an embedding
//! program with many stores can tell which one failed.

#![allow(clippy::disallowed_methods)]

mod common;

use writelog::{Error, Options, Store};

#[test]
fn a_held_lock_and_a_corrupt_segment_are_named_under_the_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    let absolute = std::path::absolute(dir.path()).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let locked = Store::open(dir.path(), Options::default()).err().unwrap();
    assert!(
        matches!(&locked, Error::Locked(path) if *path == absolute.join("LOCK")),
        "{locked:?}"
    );
    assert!(
        locked.to_string().contains(&*absolute.to_string_lossy()),
        "{locked}"
    );
    for i in 0..50u32 {
        store.append(b"k", i.to_le_bytes()).unwrap();
    }
    store.flush().unwrap();
    store.close().unwrap();
    // Rot in the one segment that holds `k`.
    let segment = common::rot_largest_segment(dir.path());
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let corrupt = store.read(b"k").unwrap_err();
    let relative = segment.strip_prefix(dir.path()).unwrap();
    assert!(
        matches!(&corrupt, Error::Corrupt { path, .. } if *path == absolute.join(relative)),
        "{corrupt:?}"
    );
}
