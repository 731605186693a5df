//! `writelog`: an embeddable record store whose write path is one sequential log.
//!
//! Every write goes through one append-only log, written by one writer thread with group
//! commit; a caller returns (or its future resolves) once its record is as durable as it
//! asked. Committer threads then apply the finished logs to the key store, where each
//! key's records live for good. Every moving part is a deterministic state machine in
//! [`machine`], over the [`fs::Fs`] and [`clock::Clock`] traits, which the runtime drives
//! with threads and a seeded simulator drives from one thread.
//!
//! # Quick start
//!
//! ```
//! use writelog::{Options, Seq, Store};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().join("my-store"), Options::default())?;
//! let first = store.append("device:7", "21.5 C")?; // durable once it returns
//! store.append("device:7", "21.7 C")?;
//!
//! let records = store.read("device:7")?;
//! assert_eq!(records.len(), 2);
//! assert_eq!(records[0].seq, first);
//! assert_eq!(records[1].payload, b"21.7 C");
//! store.close()?;
//! # Ok::<(), writelog::Error>(())
//! ```
//!
//! Keys and payloads are anything that is `AsRef<[u8]>`. A [`Seq`] is unique and grows
//! store-wide in the order records were written.
//!
//! # Durability
//!
//! Each write is as durable as the store's default ([`Options::durability`], `Sync`) or as
//! its `*_with` form says:
//!
//! - [`Durability::Sync`]: fdatasync'd before the call returns; survives a power loss.
//! - [`Durability::Buffered`]: handed to the OS; survives a crash of the process.
//! - [`Durability::None`]: queued; returns at once.
//!
//! Concurrent callers share one fdatasync (group commit), so `Sync` from many threads
//! costs little more than `None`. [`Store::sync`] makes everything written so far
//! `Sync`-durable with one fdatasync:
//!
//! ```
//! # use writelog::{Durability, Options, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! # let store = Store::open(dir.path(), Options::default())?;
//! for i in 0..100u32 {
//!     store.append_with("metrics", i.to_le_bytes(), Durability::None)?;
//! }
//! store.sync()?; // all 100 survive a power loss from here on
//! # Ok::<(), writelog::Error>(())
//! ```
//!
//! # Batches, deletes and truncates
//!
//! A batch is atomic: after any crash, all of it or none. Deletes and truncates go
//! through the log like appends, in the same order.
//!
//! ```
//! # use writelog::{Options, Seq, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! # let store = Store::open(dir.path(), Options::default())?;
//! let seqs = store.append_batch(&[("order:1", "placed"), ("stock:9", "-1")])?;
//! store.append("order:1", "paid")?;
//! store.truncate("order:1", Seq(seqs[0].0 + 1))?; // drop order:1's records below that seq
//! assert_eq!(store.read("order:1")?.len(), 1);
//! store.delete("stock:9")?;
//! assert!(store.read("stock:9")?.is_empty());
//! # Ok::<(), writelog::Error>(())
//! ```
//!
//! # Reads
//!
//! Reads see every acknowledged write at once (read-your-writes), whether it is still in a
//! log or already in the key store. [`Store::records`] and [`Store::tail`] cost what they
//! return, not the key's history, so a reader can follow a key cheaply:
//!
//! ```
//! # use writelog::{Options, Seq, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! # let store = Store::open(dir.path(), Options::default())?;
//! for i in 0..10u32 {
//!     store.append("feed", format!("item {i}"))?;
//! }
//! let mut after = Seq(0);
//! let mut seen = 0;
//! loop {
//!     let page = store.records("feed", after, 4)?; // at most 4 records after `after`
//!     let Some(last) = page.last() else { break };
//!     after = last.seq;
//!     seen += page.len();
//! }
//! assert_eq!(seen, 10);
//! assert_eq!(store.last("feed")?.unwrap().payload, b"item 9");
//! assert_eq!(store.keys()?, vec![b"feed".to_vec()]);
//! # Ok::<(), writelog::Error>(())
//! ```
//!
//! # Async
//!
//! Every write has an `*_async` form: a future that blocks no thread, woken by the writer
//! through its `Waker`, so it runs on any executor. Dropping the future before its first
//! poll queues nothing; after that, the write goes on exactly once as if awaited.
//!
//! ```
//! # use writelog::{Options, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! # let store = Store::open(dir.path(), Options::default())?;
//! # let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # runtime.block_on(async {
//! let seq = store.append_async("user:42", "logged in").await?;
//! store.sync_async().await?;
//! assert_eq!(store.last("user:42")?.unwrap().seq, seq);
//! # Ok::<(), writelog::Error>(())
//! # })?;
//! # Ok::<(), writelog::Error>(())
//! ```
//!
//! # Errors
//!
//! Nothing panics on bad input: every failure is an [`Error`], and a `Store`'s errors name
//! the store's directory and the file.
//!
//! ```
//! # use writelog::{Error, Options, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), Options::default())?;
//! assert!(matches!(store.append("", "v"), Err(Error::EmptyKey)));
//! // A second open of the same directory, in this process or another, is refused.
//! match Store::open(dir.path(), Options::default()) {
//!     Err(Error::Locked(lock)) => assert!(lock.ends_with("LOCK")),
//!     other => panic!("{:?}", other.map(|_| ())),
//! }
//! # Ok::<(), writelog::Error>(())
//! ```
//!
//! A failed write or fdatasync of the log poisons the store ([`Error::Poisoned`]): nothing
//! after it is acknowledged; close and reopen, and recovery keeps everything acknowledged
//! before the failure.
//!
//! # Recovery modes
//!
//! Opening a store recovers it: a crash's torn tail is cut (it was never acknowledged),
//! and logs not yet applied are applied again. Damage in what was made durable (a
//! flipped bit on disk) is never cut silently; [`RecoveryMode`] says what to do:
//!
//! - [`RecoveryMode::Strict`] (default): the open, or the read that meets it, returns
//!   [`Error::Corrupt`] naming the file and offset.
//! - [`RecoveryMode::PointInTime`]: a damaged log is kept up to its first damage.
//! - [`RecoveryMode::SkipCorrupt`]: damaged regions are skipped and counted
//!   ([`Stats::corrupt_skipped`], [`Stats::keystore_damage_skipped`]).
//!
//! ```
//! # use writelog::{Options, RecoveryMode, Store};
//! # let dir = tempfile::tempdir().unwrap();
//! let lenient = Options {
//!     recovery_mode: RecoveryMode::SkipCorrupt,
//!     ..Options::default()
//! };
//! let store = Store::open(dir.path(), lenient)?;
//! println!("recovery found {:?}", store.recovery_report());
//! # Ok::<(), writelog::Error>(())
//! ```
//!
//! `examples/recover.rs` damages a store on purpose and walks through all three, with
//! [`keystore::scrub::scrub`] (the CLI's `writelog scrub`) checking every byte.
#![warn(missing_docs)]

pub mod clock;
pub mod error;
pub mod failure;
pub mod format;
pub mod fs;
pub mod index;
pub mod keystore;
pub mod machine;
pub mod options;
pub mod read_only;
pub mod records;
mod runtime;
pub mod seq;
pub mod seq_file;
pub mod store;

pub use error::{Error, Result};
pub use failure::Failure;
pub use index::Record;
pub use options::{Durability, Options, RecoveryMode};
pub use read_only::ReadOnlyStore;
pub use records::{RecordRef, Records};
pub use store::{Seq, Stats, Store};
