//! `read_from` returns the records after a seq, `last` the newest; both see a delete.

use writelog::clock::{ManualClock, Timestamp};
use writelog::fs::MemFs;
use writelog::{Options, Seq, Store};

#[test]
fn read_from_and_last_follow_the_key_through_a_flush_and_a_delete() {
    let store = Store::open_with(
        MemFs::new(),
        ManualClock::new(Timestamp(1)),
        Options::default(),
    )
    .unwrap();
    let seqs: Vec<Seq> = (0..5).map(|i| store.append(b"k", [i]).unwrap()).collect();
    let after: Vec<u8> = store
        .read_from(b"k", seqs[2])
        .unwrap()
        .into_iter()
        .map(|r| r.payload[0])
        .collect();
    assert_eq!(after, vec![3, 4]);
    assert_eq!(store.last(b"k").unwrap().map(|r| r.seq), Some(seqs[4]));
    store.flush().unwrap();
    assert_eq!(
        store.read_from(b"k", seqs[3]).unwrap().len(),
        1,
        "the same once applied"
    );
    store.delete(b"k").unwrap();
    assert_eq!(store.last(b"k").unwrap(), None);
    assert!(store.read_from(b"k", Seq(0)).unwrap().is_empty());
    assert_eq!(store.last(b"never").unwrap(), None);
    store.close().unwrap();
}
