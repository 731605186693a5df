//! The writer writes zeros ahead in the active log; close (like rotation) cuts them, so
//! a cleanly closed store leaves nothing that looks like a torn tail.
#![allow(clippy::disallowed_methods)]

use writelog::format::{DecodeLimits, LogDecoder};
use writelog::{Options, Store};

#[test]
fn close_leaves_the_active_log_exactly_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        rotate_interval_ms: 3_600_000,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options).unwrap();
    for i in 0..50 {
        store.append(b"key", format!("{i}").as_bytes()).unwrap();
    }
    let log = dir.path().join(writelog::machine::WRITING_LOG);
    let before_close = std::fs::read(&log).unwrap();
    assert!(
        LogDecoder::new(&before_close, DecodeLimits::default()).any(|item| item.is_err()),
        "while open, the log runs into the zeros written ahead"
    );
    store.close().unwrap();
    let after_close = std::fs::read(&log).unwrap();
    let items: Vec<_> = LogDecoder::new(&after_close, DecodeLimits::default()).collect();
    assert!(
        items.iter().all(Result::is_ok),
        "close cuts the zeros: nothing for the next open to take for a torn tail"
    );
    let blocks: usize = items.iter().flatten().map(|batch| batch.blocks.len()).sum();
    assert_eq!(blocks, 50);
    let reopened = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(reopened.read(b"key").unwrap().len(), 50);
    reopened.close().unwrap();
}
