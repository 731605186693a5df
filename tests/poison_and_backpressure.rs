//! A failed fsync poisons the store; a full queue blocks `append` and fails `try_append`.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

mod common;
use common::Release;

use writelog::clock::{ManualClock, Timestamp};
use writelog::fs::MemFs;
use writelog::{Durability, Error, Options, Store};

fn options() -> Options {
    Options {
        rotate_interval_ms: 3_600_000,
        committers: 1,
        ..Options::default()
    }
}

#[test]
fn a_failed_fsync_poisons_the_store_and_nothing_after_it_is_acknowledged() {
    let fs = MemFs::new();
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options()).unwrap();
    store.append(b"k", b"before").unwrap();
    fs.fail_next_sync();
    let failed = store.append(b"k", b"during");
    let Err(Error::Poisoned(why)) = &failed else {
        panic!("{failed:?}")
    };
    assert_eq!(why.during(), "the log's fdatasync", "{why}");
    // The cause is kept whole, down to the file system's own error.
    let cause = why.cause().expect("an I/O failure has a cause");
    assert!(
        matches!(
            cause,
            Error::Io {
                action: "fdatasyncing",
                ..
            }
        ),
        "{cause}"
    );
    let os = std::error::Error::source(cause).expect("the OS error");
    assert!(os.to_string().contains("injected"), "{os}");
    assert!(matches!(
        store.append(b"k", b"after"),
        Err(Error::Poisoned(_))
    ));
    assert!(matches!(
        store.append_with(b"k", b"after", Durability::None),
        Err(Error::Poisoned(_))
    ));
    assert!(matches!(store.close(), Err(Error::Poisoned(_))));
}

#[test]
fn a_full_queue_fails_try_append_and_blocks_append_until_there_is_room() {
    let fs = MemFs::new();
    // `try_append` uses the store's durability: `None` returns once queued.
    let options = Options {
        queue_bytes_max: 1024,
        durability: Durability::None,
        ..options()
    };
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options).unwrap();
    fs.hold_syncs();
    std::thread::scope(|s| {
        let _release = Release(fs.clone());
        // The writer takes this one and sticks in its fdatasync.
        let stuck = s.spawn(|| store.append_with(b"k", b"first", Durability::Sync));
        while fs.syncs_waiting() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        let payload = [0u8; 100];
        // Fill the queue behind it.
        let mut queued = 0;
        let full = loop {
            match store.try_append(b"k", payload) {
                Ok(_) => queued += 1,
                Err(e) => break e,
            }
            assert!(queued < 1_000, "the queue never filled");
        };
        assert!(matches!(full, Error::QueueFull), "{full}");
        let store = &store;
        let blocked = s.spawn(move || store.append_with(b"k", payload, Durability::None));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !blocked.is_finished(),
            "append waits for room rather than failing"
        );
        fs.release_syncs();
        stuck.join().unwrap().unwrap();
        blocked.join().unwrap().unwrap();
    });
    store.close().unwrap();
}

#[test]
fn a_stopped_commit_side_fails_appends_held_by_the_backlog_instead_of_hanging() {
    let fs = MemFs::new();
    let options = Options {
        backlog_logs_max: 1,
        ..options()
    };
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options).unwrap();
    // A finished log that a Strict store refuses, put in while it runs, under a name
    // that sorts before every log the store makes (so it is dispatched first).
    let mut bytes = Vec::new();
    writelog::format::encode_log_header(&mut bytes);
    bytes.extend_from_slice(&[0x5A; 64]);
    fs.put(&writelog::machine::LogId::at(0).path(), &bytes)
        .unwrap();
    // (An append first, so that flush has something to wait for.)
    let before = store.append(b"k", b"v");
    let flushed = store.flush();
    assert!(
        matches!(flushed, Err(Error::CommitFailed(_))),
        "{before:?} {flushed:?}"
    );
    // A detached thread, so that a hang fails the test instead of hanging it.
    let store = std::sync::Arc::new(store);
    let (tx, rx) = std::sync::mpsc::channel();
    let appender = std::sync::Arc::clone(&store);
    std::thread::spawn(move || tx.send(appender.append(b"k", b"v")));
    let answered = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("append answers instead of waiting for a backlog that cannot drain");
    assert!(
        matches!(answered, Err(Error::CommitFailed(_))),
        "{answered:?}"
    );
}
