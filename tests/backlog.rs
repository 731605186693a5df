//! Past the bound on finished logs waiting, appends block and `try_append` fails; nothing
//! is dropped, and everything lands once the committers catch up.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::Duration;

use writelog::clock::{ManualClock, Timestamp};
use writelog::fs::MemFs;
use writelog::{Durability, Error, Options, Store};

#[test]
fn a_full_backlog_holds_appends_back_until_the_committers_catch_up() {
    let fs = MemFs::new();
    let options = Options {
        durability: Durability::None,
        rotate_bytes_max: 4096,
        rotate_interval_ms: 3_600_000,
        backlog_logs_max: 2,
        committers: 1,
        ..Options::default()
    };
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options).unwrap();
    // The committer sticks in its first key-file sync; logs pile up behind it.
    fs.hold_syncs_under(Path::new("keys"));
    let payload = [7u8; 1000];
    let mut acked = 0u64;
    let refused = loop {
        match store.try_append(b"k", payload) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 10_000, "the backlog bound never held");
        std::thread::sleep(Duration::from_micros(200));
    };
    assert!(matches!(refused, Error::Backlogged { .. }), "{refused}");
    std::thread::scope(|s| {
        let blocked = s.spawn(|| store.append(b"k", payload));
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !blocked.is_finished(),
            "append waits for the backlog to shrink"
        );
        fs.release_syncs();
        blocked.join().unwrap().unwrap();
    });
    acked += 1;
    store.flush().unwrap();
    assert_eq!(
        store.read(b"k").unwrap().len() as u64,
        acked,
        "nothing was dropped"
    );
    assert_eq!(store.stats().logs_waiting, 0);
    store.close().unwrap();
}

#[test]
fn the_memory_bound_holds_appends_back_too_and_loses_nothing() {
    let fs = MemFs::new();
    let payload = [7u8; 1000];
    let per_record = writelog::index::op_bytes(1, payload.len()) as u64;
    let options = Options {
        durability: Durability::None,
        rotate_interval_ms: 3_600_000,
        backlog_bytes_max: 20 * per_record as usize,
        committers: 1,
        ..Options::default()
    };
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options).unwrap();
    // Nothing rotates (the interval is an hour, 8 MiB is far): the records wait in the
    // active log, and only the memory bound can hold appends back.
    let mut acked = 0u64;
    let refused = loop {
        match store.try_append(b"k", payload) {
            Ok(_) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 10_000, "the memory bound never held");
    };
    match refused {
        Error::Backlogged {
            logs_waiting,
            pending_bytes,
        } => {
            assert_eq!(logs_waiting, 0, "the log bound did not hold it");
            assert!(pending_bytes >= 20 * per_record, "{pending_bytes}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(acked, 20, "exactly the records that fit the bound");
    // A blocking append waits, and gets through on its own: the full bound has the
    // writer rotate (the interval is an hour) and the dispatcher hand the log out at once.
    store.append(b"k", payload).unwrap();
    acked += 1;
    store.flush().unwrap();
    assert_eq!(store.read(b"k").unwrap().len() as u64, acked);
    assert_eq!(store.stats().logs_waiting, 0);
    store.close().unwrap();
}
