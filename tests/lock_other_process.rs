//! A second process opening an open store is refused with `Error::Locked`.
#![allow(clippy::disallowed_methods)]

use std::process::Command;

use writelog::{Error, Options, Store};

const CHILD_DIR_VAR: &str = "WRITELOG_TEST_LOCK_DIR";

#[test]
#[ignore = "run only as the child of a_second_process_is_refused"]
fn child_opener() {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };
    match Store::open(&dir, Options::default()) {
        Err(Error::Locked(_)) => std::process::exit(42),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => std::process::exit(0),
    }
}

#[test]
fn a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_opener", "--ignored", "--test-threads=1"])
        .env(CHILD_DIR_VAR, dir.path())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(42),
        "the other process must get Error::Locked"
    );
    store.close().unwrap();
}
