//! Recovery decisions and damage are told as `tracing` events: a subscriber that keeps
//! every event's message sees the crash tail cut and the damage found.

#![allow(clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};

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
    let store = Store::open(dir.path(), Options::default()).unwrap();
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
    let segment = walk(&dir.path().join("keys"))
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("seg-"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&segment, &bytes).unwrap();

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

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
