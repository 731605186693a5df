//! A store is open at most once in a process: a second open is refused until the first
//! closes. (Its own test binary: a process spawned by another test in the same binary
//! would briefly share the lock between its fork and exec.)

use writelog::{Error, Options, Store};

#[test]
fn a_second_open_in_this_process_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        Store::open(dir.path(), Options::default()),
        Err(Error::Locked(_))
    ));
    first.close().unwrap();
    Store::open(dir.path(), Options::default())
        .unwrap()
        .close()
        .unwrap();
}
