//! The threads and channels that drive the machines in production: the writer thread
//! ([`write`]) and the dispatcher with its committer threads ([`commit`]). This is the
//! only code that spawns threads, blocks on condvars or sleeps; the machines it calls
//! are the same ones the simulator drives from one thread.

pub(crate) mod commit;
pub(crate) mod write;

use std::sync::atomic::{AtomicU64, Ordering};

use crate::index::PendingIndex;

/// Counters the threads bump and `Store::stats` reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub payload_bytes: AtomicU64,
    pub passes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub rotations: AtomicU64,
    pub logs_waiting: AtomicU64,
    /// The pending index's [`crate::index::PendingIndex::bytes`], stored under its lock
    /// after every change.
    pub pending_bytes: AtomicU64,
    pub written_seq: AtomicU64,
    pub applied_seq: AtomicU64,
    pub commit_passes: AtomicU64,
    pub records_applied: AtomicU64,
    /// Runs appended to the key store (each one fdatasync of a segment).
    pub runs_written: AtomicU64,
    /// Bytes the key store wrote: runs, index checkpoints and compactions.
    pub keystore_bytes_written: AtomicU64,
    /// Compactions done.
    pub compactions: AtomicU64,
    /// Bytes compactions wrote (in `keystore_bytes_written` too).
    pub compaction_bytes_written: AtomicU64,
    /// Microseconds committers spent compacting.
    pub compaction_micros: AtomicU64,
    pub corrupt_skipped: AtomicU64,
    /// Set when the commit side stops for good (an error or a panic): callers waiting
    /// for room under the backlog bound must not wait for logs that will never retire.
    pub commit_stopped: std::sync::atomic::AtomicBool,
}

impl Counters {
    /// Publishes `index`'s counted memory; called under the index's lock after every
    /// change, so that the backlog checks can read it without taking that lock.
    pub fn publish_pending_bytes(&self, index: &PendingIndex) {
        self.pending_bytes
            .store(index.bytes() as u64, Ordering::SeqCst);
    }
}
