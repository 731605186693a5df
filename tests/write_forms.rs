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

/// Each `*_with` call is as durable as it asks, whatever the store's default: `Sync` on a
/// store whose default is `None` fdatasyncs before it returns, and `None` on a store whose
/// default is `Sync` costs no fdatasync. (The simulator submits to the writer machine's
/// queue directly, so this glue is the tests' to check.)
#[test]
fn each_call_is_as_durable_as_it_asks_whatever_the_default() {
    let open = |fs: &MemFs, durability| {
        let options = Options {
            durability,
            ..Options::default()
        };
        Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options).unwrap()
    };
    let fs = MemFs::new();
    let store = open(&fs, Durability::None);
    let mut syncs = fs.file_syncs();
    type Form = dyn Fn(&Store<MemFs, ManualClock>);
    let forms: [&Form; 4] = [
        &|s| {
            s.append_with("k", "v", Durability::Sync).unwrap();
        },
        &|s| {
            s.append_batch_with(&[("k", "v")], Durability::Sync)
                .unwrap();
        },
        &|s| {
            s.truncate_with("k", Seq(1), Durability::Sync).unwrap();
        },
        &|s| {
            s.delete_with("k", Durability::Sync).unwrap();
        },
    ];
    for (i, form) in forms.iter().enumerate() {
        form(&store);
        assert!(fs.file_syncs() > syncs, "form {i}: a Sync call fdatasyncs");
        syncs = fs.file_syncs();
    }
    store.close().unwrap();

    let fs = MemFs::new();
    let store = open(&fs, Durability::Sync);
    let syncs = fs.file_syncs();
    for _ in 0..20 {
        store.append_with("k", "v", Durability::None).unwrap();
        store
            .append_batch_with(&[("k", "v")], Durability::Buffered)
            .unwrap();
        store.truncate_with("k", Seq(1), Durability::None).unwrap();
        store.delete_with("j", Durability::Buffered).unwrap();
    }
    assert_eq!(
        fs.file_syncs(),
        syncs,
        "None and Buffered calls cost no fdatasync"
    );
    store.close().unwrap();
}
