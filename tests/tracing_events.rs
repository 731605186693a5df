//! Recovery decisions and damage are told as `tracing` events: a subscriber that keeps
//! every event's message sees the crash tail cut and the damage found.

#![allow(clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};

mod common;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use writelog::machine::{WRITING_DIR, WRITING_LOG};
use writelog::{Options, RecoveryMode, Store};

/// Keeps `LEVEL message` for every event.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let line = format!("{} {}", event.metadata().level(), message.0);
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn a_crash_tail_cut_and_key_store_damage_are_events() {
    let dir = tempfile::tempdir().unwrap();
    // No rotation by time: the last record stays in `writing/tx.log` until the close,
    // however long the flush takes on a busy machine (the flush rotates by itself).
    let hourly = Options {
        rotate_interval_ms: 3_600_000,
        ..Options::default()
    };
    let store = Store::open(dir.path(), hourly).unwrap();
    for i in 0..50u32 {
        store.append(b"k", i.to_le_bytes()).unwrap();
    }
    store.flush().unwrap();
    store.append(b"k", b"in the log").unwrap();
    store.close().unwrap();
    // A torn tail on the leftover log, and rot in the key store.
    let log = dir.path().join(WRITING_LOG);
    assert!(dir.path().join(WRITING_DIR).is_dir());
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0xAB; 7]);
    std::fs::write(&log, &bytes).unwrap();
    common::rot_largest_segment(dir.path());

    let events = Events::default();
    let options = Options {
        recovery_mode: RecoveryMode::SkipCorrupt,
        ..Options::default()
    };
    // Global: the store's own threads tell events too. (The only test in this binary.)
    tracing::subscriber::set_global_default(events.clone()).unwrap();
    let store = Store::open(dir.path(), options).unwrap();
    let read = store.read(b"k").unwrap();
    assert!(read.len() < 51, "the damaged group is skipped");
    assert!(store.stats().keystore_damage_skipped > 0);
    store.close().unwrap();
    let events = events.0.lock().unwrap();
    let has = |level: &str, words: &str| {
        events
            .iter()
            .any(|e| e.starts_with(level) && e.contains(words))
    };
    assert!(has("INFO", "leftover log is cut"), "{events:#?}");
    assert!(has("INFO", "leftover log is finished"), "{events:#?}");
    assert!(
        has("WARN", "a read met damage in the key store"),
        "{events:#?}"
    );
}
