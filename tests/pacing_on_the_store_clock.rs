//! The dispatcher paces its hand-outs on the store's clock, not the wall clock: over a
//! `ManualClock` that stands still, finished logs wait however much real time passes,
//! and go to the committers once the clock moves past the interval.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use writelog::clock::{ManualClock, Timestamp};
use writelog::fs::MemFs;
use writelog::{Options, Store};

#[test]
fn hand_outs_wait_for_the_stores_clock() {
    let clock = Arc::new(ManualClock::new(Timestamp(1)));
    let options = Options {
        commit_interval_ms: 50,
        rotate_bytes_max: 4096,
        ..Options::default()
    };
    let store = Store::open_with(MemFs::new(), Arc::clone(&clock), options).unwrap();
    // The first hand-out is due at once; a flush makes sure it happened.
    store.append(b"k", b"first").unwrap();
    store.flush().unwrap();
    let applied = store.stats().applied_seq;
    // Logs finish by size (the clock does not move, so not by time).
    for i in 0..100u8 {
        store.append(b"k", [i; 100]).unwrap();
    }
    std::thread::sleep(Duration::from_millis(400));
    let stats = store.stats();
    assert!(stats.logs_waiting > 0, "{stats:?}");
    assert_eq!(
        stats.applied_seq, applied,
        "eight intervals of wall time, none of the store's: nothing handed out"
    );
    clock.advance_ms(50);
    let started = Instant::now();
    while store.stats().applied_seq == applied {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the clock moved past the interval, yet nothing was handed out"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    store.close().unwrap();
}

/// `flush()` right after an open that found logs waiting returns without the store's
/// clock moving: the logs found at open go out in the first hand-out, which is due at
/// once, and `flush` asks for a hurry besides. (A power-cut test saw a flush after open
/// wait out the whole commit interval: what it waits for was set only by the next paced
/// listing of `reading/`.)
#[test]
fn a_flush_right_after_open_does_not_wait_for_the_commit_interval() {
    let clock = Arc::new(ManualClock::new(Timestamp(1)));
    let fs = MemFs::new();
    let options = Options {
        commit_interval_ms: 3_600_000,
        rotate_bytes_max: 4096,
        ..Options::default()
    };
    let store = Store::open_with(fs.clone(), Arc::clone(&clock), options.clone()).unwrap();
    store.append(b"k", b"first").unwrap();
    store.flush().unwrap();
    // Logs finish by size and wait: the next hand-out is an hour away on the store's clock.
    for i in 0..40u8 {
        store.append(b"k", [i; 200]).unwrap();
    }
    let waiting = store.stats().logs_waiting;
    assert!(waiting > 0, "logs wait in reading/");
    store.close().unwrap();

    let store = Store::open_with(fs, Arc::clone(&clock), options).unwrap();
    let (done, flushed) = std::sync::mpsc::channel();
    let flusher = std::thread::spawn(move || {
        let result = store.flush();
        let records = store.read(b"k").map(|r| r.len());
        let _ = done.send((result.is_ok(), records.ok()));
        store
    });
    // A guard against a hang, not a timing: the clock never moves, so a flush that waits
    // for the interval never returns.
    let (flush_ok, records) = flushed
        .recv_timeout(Duration::from_secs(60))
        .expect("flush after open waits for the store's clock");
    assert!(flush_ok);
    assert_eq!(records, Some(41));
    flusher.join().unwrap().close().unwrap();
}
