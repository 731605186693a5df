//! The state machines of the write path, each a plain struct over [`Fs`](crate::fs::Fs)
//! with time passed in as a value: no threads, channels, sleeps, clock reads or
//! randomness inside. [`crate::runtime`] drives them with threads; the simulator drives
//! the same methods from one thread.
//!
//! The order a driver must follow:
//! 1. [`recovery::recover`] once, before anything else touches the store's files, then
//!    [`build::Machines::build`] for every machine and the pending index.
//! 2. Each request goes through [`submit_queue::SubmitQueue::admit`] (the backlog bounds,
//!    the queue's bytes, the seq lease); once admitted,
//!    [`submit_queue::SubmitQueue::push_indexed`] assigns its seqs in queue order and enters
//!    it into the pending index. A held request's `rotate_upto` goes to
//!    [`rotation::Rotation::request`], as does a flush's
//!    [`submit_queue::SubmitQueue::flush_upto`] (with [`pacing::CommitPacing::hurry`]).
//! 3. One driver owns the [`writer::Writer`] and the [`rotation::Rotation`]: it takes a pass
//!    from the queue, calls [`writer::Writer::write_pass`], releases each caller up to
//!    [`writer::Writer::released_upto`] for its own durability, then asks
//!    [`rotation::Rotation::is_due`] and calls [`rotation::Rotation::rotate`] when it says
//!    so (and after [`rotation::Rotation::poll_timeout`] when idle).
//! 4. After any I/O error the writer is poisoned and acknowledges nothing more.
//! 5. The dispatcher's [`dispatch::Dispatcher::finish`] retires logs and returns the
//!    [`dispatch::IndexTrim`] the driver applies to the pending index.

pub mod build;
pub mod commit;
pub mod compact;
pub mod dispatch;
pub mod log_id;
pub mod pacing;
pub mod recovery;
pub mod rotation;
pub mod seq_lease;
pub mod submit_queue;
pub mod writer;

pub use log_id::LogId;

/// Directory holding the write logs.
pub const TXLOGS_DIR: &str = "txlogs";
/// Directory holding the one log being written.
pub const WRITING_DIR: &str = "txlogs/writing";
/// Directory holding finished logs, waiting for the dispatcher.
pub const READING_DIR: &str = "txlogs/reading";
/// The one log being written.
pub const WRITING_LOG: &str = "txlogs/writing/tx.log";
/// The store's lock file.
pub const LOCK_FILE: &str = "LOCK";
/// Recovery's seq floor: new seqs always start above it (see [`recovery::recover`]).
pub const SEQ_FLOOR_FILE: &str = "txlogs/SEQ_FLOOR";
/// Where the seq floor is written before it is renamed into place.
pub const SEQ_FLOOR_TMP: &str = "txlogs/SEQ_FLOOR.tmp";
/// The magic of the seq floor's file.
pub const SEQ_FLOOR_MAGIC: [u8; 8] = *b"WLFLOOR1";
