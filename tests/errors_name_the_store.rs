//! A `Store`'s errors name the store's directory and the file in it: an embedding
//! program with many stores can tell which one failed.

#![allow(clippy::disallowed_methods)]

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
    let keys = dir.path().join("keys");
    let segment = std::fs::read_dir(&keys)
        .unwrap()
        .flat_map(|p| std::fs::read_dir(p.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&segment, &bytes).unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let corrupt = store.read(b"k").unwrap_err();
    let relative = segment.strip_prefix(dir.path()).unwrap();
    assert!(
        matches!(&corrupt, Error::Corrupt { path, .. } if *path == absolute.join(relative)),
        "{corrupt:?}"
    );
}
