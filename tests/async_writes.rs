//! The async writes: they resolve at the durability asked, from many tasks on few
//! threads; dropping one never loses or duplicates what it queued; `sync` costs one
//! fdatasync and waits for no key store.
#![allow(clippy::disallowed_methods)]

mod common;
use common::Release;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use writelog::clock::{ManualClock, Timestamp};
use writelog::fs::MemFs;
use writelog::{Durability, Error, Options, Seq, Store};

fn options() -> Options {
    Options {
        rotate_interval_ms: 3_600_000,
        committers: 1,
        ..Options::default()
    }
}

fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn many_tasks_on_two_workers_append_and_read_their_own_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let seqs = runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..64u32 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let key = format!("task-{task}");
                let mut seqs = Vec::new();
                for i in 0..20u32 {
                    let seq = match i % 4 {
                        0 => store.append_async(&key, i.to_le_bytes()).await.unwrap(),
                        1 => {
                            let batch = [(key.as_bytes(), i.to_le_bytes())];
                            store.append_batch_async(&batch).await.unwrap()[0]
                        }
                        2 => store
                            .append_with_async(&key, i.to_le_bytes(), Durability::Buffered)
                            .await
                            .unwrap(),
                        _ => store
                            .append_with_async(&key, i.to_le_bytes(), Durability::None)
                            .await
                            .unwrap(),
                    };
                    seqs.push(seq);
                    // Read-your-writes holds for async writes as for blocking ones.
                    assert_eq!(store.last(&key).unwrap().unwrap().seq, seq);
                }
                store.sync_async().await.unwrap();
                seqs
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    let mut sorted = seqs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 64 * 20, "every write got its own seq");
    let store = Arc::into_inner(store).unwrap();
    store.close().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    for task in 0..64u32 {
        let records = store.read(format!("task-{task}")).unwrap();
        let payloads: Vec<u32> = records
            .iter()
            .map(|r| u32::from_le_bytes(r.payload[..].try_into().unwrap()))
            .collect();
        assert_eq!(payloads, (0..20).collect::<Vec<_>>());
    }
}

#[test]
fn a_future_dropped_before_its_first_poll_queues_nothing() {
    let store = Store::open_with(MemFs::new(), ManualClock::new(Timestamp(1)), options()).unwrap();
    drop(store.append_async(b"k", b"never"));
    drop(store.delete_async(b"k"));
    store.append(b"other", b"v").unwrap();
    store.flush().unwrap();
    assert!(store.read(b"k").unwrap().is_empty());
    assert_eq!(store.keys().unwrap(), vec![b"other".to_vec()]);
}

#[test]
fn a_future_dropped_after_it_queued_is_written_once_as_if_awaited() {
    let fs = MemFs::new();
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options()).unwrap();
    // The writer sticks in its fdatasync, so the first poll queues the write and is
    // sure to find it not yet durable.
    fs.hold_syncs();
    {
        let mut future = pin!(store.append_async(b"k", b"queued then dropped"));
        assert!(poll_once(future.as_mut()).is_pending());
        // Read-your-writes: once queued it is readable, before it is durable.
        assert_eq!(store.read(b"k").unwrap().len(), 1);
    }
    fs.release_syncs();
    store.flush().unwrap();
    let records = store.read(b"k").unwrap();
    assert_eq!(records.len(), 1, "written exactly once");
    assert_eq!(&records[0].payload[..], b"queued then dropped");
    store.close().unwrap();
}

#[test]
fn a_future_waiting_for_room_takes_none_and_dropping_it_queues_nothing() {
    let fs = MemFs::new();
    let options = Options {
        queue_bytes_max: 1024,
        durability: Durability::None,
        ..options()
    };
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options).unwrap();
    // As large as the writes that no longer fit.
    let mut waits = [b'w'; 100];
    waits[..14].copy_from_slice(b"waits for room");
    let mut woken = [b'r'; 100];
    woken[..14].copy_from_slice(b"woken for room");
    fs.hold_syncs();
    std::thread::scope(|s| {
        let _release = Release(fs.clone());
        let stuck = s.spawn(|| store.append_with(b"k", b"first", Durability::Sync));
        while fs.syncs_waiting() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        while store.try_append(b"k", [0u8; 100]).is_ok() {}
        let full = store.try_append_batch(&[(b"k", [0u8; 100])]);
        assert!(matches!(full, Err(Error::QueueFull)), "{full:?}");
        let queued = store.read(b"k").unwrap().len();
        {
            let mut waiting = pin!(store.append_async(b"k", waits));
            for _ in 0..3 {
                assert!(poll_once(waiting.as_mut()).is_pending(), "no room yet");
            }
            assert_eq!(store.read(b"k").unwrap().len(), queued, "not queued");
        }
        // One that waits for room and is woken when the writer takes the queue.
        let (tx, rx) = std::sync::mpsc::channel();
        let store = &store;
        s.spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            tx.send(runtime.block_on(store.append_async(b"k", woken)))
                .unwrap();
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(rx.try_recv().is_err(), "it waits for room");
        fs.release_syncs();
        stuck.join().unwrap().unwrap();
        rx.recv_timeout(Duration::from_secs(20)).unwrap().unwrap();
    });
    store.flush().unwrap();
    let payloads: Vec<Vec<u8>> = store
        .read(b"k")
        .unwrap()
        .into_iter()
        .map(|r| r.payload.to_vec())
        .collect();
    assert!(!payloads.iter().any(|p| p[..] == waits));
    assert_eq!(payloads.iter().filter(|p| p[..] == woken).count(), 1);
    store.close().unwrap();
}

#[test]
fn sync_makes_earlier_unsynced_writes_durable_with_one_fdatasync() {
    let fs = MemFs::new();
    let options = Options {
        durability: Durability::None,
        ..options()
    };
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options).unwrap();
    for i in 0..100u32 {
        store.append(b"k", i.to_le_bytes()).unwrap();
    }
    // Wait until the writer has written them (None returns once queued).
    store
        .append_with(b"k", b"written", Durability::Buffered)
        .unwrap();
    let (syncs, fsyncs) = (fs.file_syncs(), store.stats().fsyncs);
    store.sync().unwrap();
    assert_eq!(fs.file_syncs(), syncs + 1, "one fdatasync for all of them");
    assert_eq!(store.stats().fsyncs, fsyncs + 1);
    store.sync().unwrap();
    assert_eq!(fs.file_syncs(), syncs + 1, "nothing unsynced: no fdatasync");
    assert_eq!(
        store.stats().applied_seq,
        0,
        "sync does not wait for the key store"
    );
    // The async form: one more fdatasync for one more unsynced write.
    store
        .append_with(b"k", b"more", Durability::Buffered)
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(store.sync_async()).unwrap();
    assert_eq!(fs.file_syncs(), syncs + 2);
    store.close().unwrap();
}

#[test]
fn async_writes_check_their_input_and_report_a_poisoned_store() {
    let fs = MemFs::new();
    let store = Store::open_with(fs.clone(), ManualClock::new(Timestamp(1)), options()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        assert!(matches!(
            store.append_async(b"", b"v").await,
            Err(Error::EmptyKey)
        ));
        let empty: [(&[u8], &[u8]); 0] = [];
        assert!(matches!(
            store.append_batch_async(&empty).await,
            Err(Error::EmptyBatch)
        ));
        let seq = store.append_async(b"k", b"v").await.unwrap();
        store.truncate_async(b"k", Seq(seq.0 + 1)).await.unwrap();
        assert!(store.read(b"k").unwrap().is_empty());
        fs.fail_next_sync();
        let failed = store.append_async(b"k", b"v").await;
        assert!(matches!(failed, Err(Error::Poisoned(_))), "{failed:?}");
        assert!(matches!(store.sync_async().await, Err(Error::Poisoned(_))));
        assert!(matches!(
            store.delete_async(b"k").await,
            Err(Error::Poisoned(_))
        ));
    });
}
