//! The one error type of the crate. No input makes the store panic; it answers with one
//! of these.

use std::path::{Path, PathBuf};

use crate::format::BadReason;

/// Everything that can go wrong, by kind.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key must hold at least one byte.
    #[error("key is empty")]
    EmptyKey,
    /// The key is longer than `Options::max_key_len`.
    #[error("key is {len} bytes, over the limit of {max}")]
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The payload is longer than `Options::max_record_len`.
    #[error("payload is {len} bytes, over the limit of {max}")]
    RecordTooLarge {
        /// The payload's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A batch must hold at least one record.
    #[error("batch is empty")]
    EmptyBatch,
    /// A batch holds more records than one log batch can carry.
    #[error("batch holds {len} records, over the limit of {max}")]
    BatchTooLarge {
        /// Records in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The options are inconsistent or out of range.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// Another open store, in this process or another, holds the directory's lock (the
    /// path of that `LOCK` file).
    #[error("the store's lock {0} is held: the store is already open, in this process or another")]
    Locked(PathBuf),
    /// The directory holds no store (from [`crate::Store::open_read_only`], which creates
    /// nothing).
    #[error("{0} holds no store")]
    NoStore(PathBuf),
    /// The write queue is full (only from `try_append`; `append` waits instead).
    #[error("write queue is full")]
    QueueFull,
    /// Too many finished logs wait for the committers (only from `try_append`; `append`
    /// waits instead).
    #[error(
        "{logs_waiting} logs ({pending_bytes} bytes of records) wait for the committers, at the backlog bound"
    )]
    Backlogged {
        /// Finished logs waiting.
        logs_waiting: u64,
        /// Memory the records not yet in the key store are counted for.
        pending_bytes: u64,
    },
    /// The commit side (dispatcher or a committer) failed; the logs stay and are applied
    /// after the store is reopened.
    #[error("applying logs to the key store failed: {0}")]
    CommitFailed(String),
    /// The store has been closed.
    #[error("store is closed")]
    Closed,
    /// An earlier failed write or fsync poisoned the store: nothing after it is
    /// acknowledged. Close and reopen; recovery keeps everything acknowledged before it.
    #[error("store is poisoned by an earlier I/O failure ({0}); close and reopen it")]
    Poisoned(String),
    /// The directory holds a store in a layout this version does not read; it is refused
    /// rather than misread.
    #[error("{path} holds a store in an earlier layout ({layout}); this version does not read it")]
    UnsupportedLayout {
        /// The directory that shows the layout (under the store's directory, from a
        /// `Store`; relative to it from the lower-level APIs).
        path: PathBuf,
        /// The layout found.
        layout: &'static str,
    },
    /// A file-system call failed.
    #[error("I/O error while {action} {path}: {source}")]
    Io {
        /// What the store was doing.
        action: &'static str,
        /// The file or directory (under the store's directory, from a `Store`; relative
        /// to it from the lower-level APIs).
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A finished log or a key-store file is corrupt and the recovery mode refuses to go
    /// on (or a read met damage it cannot return past).
    #[error("corrupt file {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file (under the store's directory, from a `Store`; relative to it from the
        /// lower-level APIs).
        path: PathBuf,
        /// Where the damage begins.
        offset: u64,
        /// What is wrong there.
        reason: BadReason,
    },
}

impl Error {
    /// The error as a `Store` reports it: every path under the store's directory
    /// `location`, and the messages of background failures naming the store.
    pub(crate) fn in_store(self, location: &Path) -> Error {
        if location.as_os_str().is_empty() {
            return self;
        }
        let named = |what: String| format!("{what} (store {})", location.display());
        match self {
            Error::Locked(path) => Error::Locked(location.join(path)),
            Error::UnsupportedLayout { path, layout } => Error::UnsupportedLayout {
                path: location.join(path),
                layout,
            },
            Error::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path: location.join(path),
                source,
            },
            Error::Corrupt {
                path,
                offset,
                reason,
            } => Error::Corrupt {
                path: location.join(path),
                offset,
                reason,
            },
            Error::CommitFailed(why) => Error::CommitFailed(named(why)),
            Error::Poisoned(why) => Error::Poisoned(named(why)),
            other => other,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what the store was doing and on which path to an I/O error.
pub(crate) trait IoContext<T> {
    fn io(self, action: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, action: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        })
    }
}
