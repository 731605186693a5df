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
