//! Every write has its `*_with` and `try_*` forms, keys and payloads take anything that is
//! bytes, and a truncate drops what it says through a flush and a reopen.

use writelog::clock::{ManualClock, Timestamp};
use writelog::fs::MemFs;
use writelog::{Durability, Options, Seq, Store};

#[test]
fn every_write_form_does_what_its_name_says() {
    let fs = MemFs::new();
    let open = |fs: &MemFs| {
        Store::open_with(
            fs.clone(),
            ManualClock::new(Timestamp(1)),
            Options::default(),
        )
        .unwrap()
    };
    let store = open(&fs);
    let key = String::from("k");
    let seqs: Vec<Seq> = (0..6u8)
        .map(|i| store.append(&key, vec![i]).unwrap())
        .collect();
    store.try_append(key.as_bytes(), [6u8]).unwrap();
    store
        .append_with(b"k", b"seven", Durability::Buffered)
        .unwrap();
    // Drop the first three, two ways.
    store
        .truncate_with(&key, seqs[2], Durability::None)
        .unwrap();
    store.try_truncate("k", seqs[3]).unwrap();
    let payloads = |store: &Store<MemFs, ManualClock>| -> Vec<Vec<u8>> {
        store
            .read("k")
            .unwrap()
            .into_iter()
            .map(|r| r.payload)
            .collect()
    };
    let expected = vec![vec![3], vec![4], vec![5], vec![6], b"seven".to_vec()];
    assert_eq!(payloads(&store), expected);
    store.append("gone", "x").unwrap();
    store.try_delete("gone").unwrap();
    store.append("gone-too", "x").unwrap();
    store
        .delete_with(String::from("gone-too"), Durability::Sync)
        .unwrap();
    assert_eq!(store.keys().unwrap(), vec![b"k".to_vec()]);
    store.flush().unwrap();
    assert_eq!(payloads(&store), expected, "the same once applied");
    store.close().unwrap();
    let store = open(&fs);
    assert_eq!(payloads(&store), expected, "the same after a reopen");
    assert_eq!(store.keys().unwrap(), vec![b"k".to_vec()]);
    store.close().unwrap();
}
