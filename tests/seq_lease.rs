//! The seq lease through `Store`: seqs continue right after a clean close, a lease smaller
//! than a batch grows to cover it, and the options refuse a lease of nothing. (Seqs of
//! records a kill lost are never given again: `kill_during_appends.rs`; every restart of
//! the simulator checks it.)

use writelog::fs::MemFs;
use writelog::machine::{SEQ_FLOOR_FILE, SEQ_FLOOR_MAGIC};
use writelog::{Durability, Error, Options, Seq, Store};

fn floor(fs: &MemFs) -> Option<u64> {
    writelog::seq_file::read(fs, std::path::Path::new(SEQ_FLOOR_FILE), SEQ_FLOOR_MAGIC).unwrap()
}

#[test]
fn seqs_continue_after_a_clean_close_and_the_lease_is_durable_while_open() {
    let fs = MemFs::new();
    let options = Options {
        seq_lease: 1000,
        ..Options::default()
    };
    let store =
        Store::open_with(fs.clone(), writelog::clock::SystemClock, options.clone()).unwrap();
    assert_eq!(floor(&fs), Some(1000), "leased before any seq goes out");
    for expected in 1..=3 {
        assert_eq!(store.append(b"k", b"v").unwrap().0, expected);
    }
    store.close().unwrap();
    assert_eq!(floor(&fs), Some(3), "the rest of the lease went back");
    let store = Store::open_with(fs.clone(), writelog::clock::SystemClock, options).unwrap();
    assert_eq!(store.append(b"k", b"v").unwrap().0, 4);
    assert_eq!(floor(&fs), Some(1003));
    store.close().unwrap();
}

#[test]
fn a_lease_shorter_than_a_batch_grows_to_cover_it() {
    let fs = MemFs::new();
    let options = Options {
        seq_lease: 2,
        ..Options::default()
    };
    let store = Store::open_with(fs.clone(), writelog::clock::SystemClock, options).unwrap();
    let batch: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"); 5];
    let mut next = 1;
    for _ in 0..20 {
        let seqs: Vec<u64> = store
            .append_batch_with(&batch, Durability::None)
            .unwrap()
            .iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(seqs, (next..next + 5).collect::<Vec<_>>());
        next += 5;
        assert!(
            floor(&fs).unwrap() >= next - 1,
            "every seq handed out is leased"
        );
    }
    store.flush().unwrap();
    assert_eq!(store.read(b"a").unwrap().len(), 100);
    store.close().unwrap();
}

#[test]
fn a_lease_of_nothing_is_refused() {
    let options = Options {
        seq_lease: 0,
        ..Options::default()
    };
    let opened = Store::open_with(MemFs::new(), writelog::clock::SystemClock, options);
    assert!(matches!(opened, Err(Error::InvalidOptions(_))));
}

/// A lease that cannot be made durable poisons the writer: no seq goes out past what is
/// durably reserved.
#[test]
fn a_failed_lease_extension_poisons_the_store() {
    let fs = MemFs::new();
    let options = Options {
        seq_lease: 2,
        // No rotation (it would fdatasync the log) while the test runs.
        rotate_interval_ms: 3_600_000,
        ..Options::default()
    };
    let store = Store::open_with(fs.clone(), writelog::clock::SystemClock, options).unwrap();
    // No log fdatasync for `None` appends: the next file sync is the lease's.
    fs.fail_next_sync();
    let mut outcome = Ok(Seq(0));
    for _ in 0..10 {
        outcome = store.append_with("k", "v", Durability::None);
        if outcome.is_err() {
            break;
        }
    }
    let Err(Error::Poisoned(why)) = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(why.during(), "extending the seq lease", "{why}");
    assert!(floor(&fs).unwrap() <= 2, "nothing past the durable lease");
    drop(store);
}
