//! The one error type of the crate. No input makes the store panic; it answers with one
//! of these.

use std::path::{Path, PathBuf};

use crate::failure::Failure;
use crate::format::BadReason;

/// Everything that can go wrong, by kind.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A key must hold at least one byte.
    EmptyKey,
    /// The key is longer than `Options::max_key_len`.
    KeyTooLong {
        /// The key's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The payload is longer than `Options::max_record_len`.
    RecordTooLarge {
        /// The payload's length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A batch must hold at least one record.
    EmptyBatch,
    /// A batch holds more records than one log batch can carry.
    BatchTooLarge {
        /// Records in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The options are inconsistent or out of range.
    InvalidOptions(String),
    /// Another open store, in this process or another, holds the directory's lock (the
    /// path of that `LOCK` file).
    Locked(PathBuf),
    /// The directory holds no store (from [`crate::Store::open_read_only`], which creates
    /// nothing).
    NoStore(PathBuf),
    /// The write queue is full (only from `try_append`; `append` waits instead).
    QueueFull,
    /// Too many finished logs wait for the committers (only from `try_append`; `append`
    /// waits instead).
    Backlogged {
        /// Finished logs waiting.
        logs_waiting: u64,
        /// Memory the records not yet in the key store are counted for.
        pending_bytes: u64,
    },
    /// The commit side (dispatcher or a committer) failed; the logs stay and are applied
    /// after the store is reopened.
    CommitFailed(Failure),
    /// The store has been closed.
    Closed,
    /// An earlier failed write or fsync poisoned the store: nothing after it is
    /// acknowledged. Close and reopen; recovery keeps everything acknowledged before it.
    Poisoned(Failure),
    /// The directory holds a store in a layout this version does not read; it is refused
    /// rather than misread.
    UnsupportedLayout {
        /// The directory that shows the layout (under the store's directory, from a
        /// `Store`; relative to it from the lower-level APIs).
        path: PathBuf,
        /// The layout found.
        layout: &'static str,
    },
    /// A file-system call failed.
    Io {
        /// What the store was doing.
        action: &'static str,
        /// The file or directory (under the store's directory, from a `Store`; relative
        /// to it from the lower-level APIs).
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A finished log or a key-store file is corrupt and the recovery mode refuses to go
    /// on (or a read met damage it cannot return past).
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

// Written out rather than derived: `thiserror`'s proc macro (and `syn` with it) was most of
// an embedding program's cold build of this crate.
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::EmptyKey => write!(f, "key is empty"),
            Error::KeyTooLong { len, max } => {
                write!(f, "key is {len} bytes, over the limit of {max}")
            }
            Error::RecordTooLarge { len, max } => {
                write!(f, "payload is {len} bytes, over the limit of {max}")
            }
            Error::EmptyBatch => write!(f, "batch is empty"),
            Error::BatchTooLarge { len, max } => {
                write!(f, "batch holds {len} records, over the limit of {max}")
            }
            Error::InvalidOptions(why) => write!(f, "invalid options: {why}"),
            Error::Locked(lock) => write!(
                f,
                "the store's lock {} is held: the store is already open, in this process or another",
                lock.display()
            ),
            Error::NoStore(dir) => write!(f, "{} holds no store", dir.display()),
            Error::QueueFull => write!(f, "write queue is full"),
            Error::Backlogged {
                logs_waiting,
                pending_bytes,
            } => write!(
                f,
                "{logs_waiting} logs ({pending_bytes} bytes of records) wait for the committers, at the backlog bound"
            ),
            Error::CommitFailed(why) => write!(f, "applying logs to the key store failed: {why}"),
            Error::Closed => write!(f, "store is closed"),
            Error::Poisoned(why) => write!(
                f,
                "store is poisoned by an earlier failure ({why}); close and reopen it"
            ),
            Error::UnsupportedLayout { path, layout } => write!(
                f,
                "{} holds a store in an earlier layout ({layout}); this version does not read it",
                path.display()
            ),
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "I/O error while {action} {}: {source}", path.display()),
            Error::Corrupt {
                path,
                offset,
                reason,
            } => write!(
                f,
                "corrupt file {} at offset {offset}: {reason}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::CommitFailed(failure) | Error::Poisoned(failure) => Some(failure),
            _ => None,
        }
    }
}

/// A copy: an I/O error's copy has the same kind, OS error code and message (`std::io::Error`
/// is not `Clone`), so a machine can keep the error that spent it and still return it.
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::EmptyKey => Error::EmptyKey,
            Error::KeyTooLong { len, max } => Error::KeyTooLong {
                len: *len,
                max: *max,
            },
            Error::RecordTooLarge { len, max } => Error::RecordTooLarge {
                len: *len,
                max: *max,
            },
            Error::EmptyBatch => Error::EmptyBatch,
            Error::BatchTooLarge { len, max } => Error::BatchTooLarge {
                len: *len,
                max: *max,
            },
            Error::InvalidOptions(why) => Error::InvalidOptions(why.clone()),
            Error::Locked(path) => Error::Locked(path.clone()),
            Error::NoStore(path) => Error::NoStore(path.clone()),
            Error::QueueFull => Error::QueueFull,
            Error::Backlogged {
                logs_waiting,
                pending_bytes,
            } => Error::Backlogged {
                logs_waiting: *logs_waiting,
                pending_bytes: *pending_bytes,
            },
            Error::CommitFailed(failure) => Error::CommitFailed(failure.clone()),
            Error::Closed => Error::Closed,
            Error::Poisoned(failure) => Error::Poisoned(failure.clone()),
            Error::UnsupportedLayout { path, layout } => Error::UnsupportedLayout {
                path: path.clone(),
                layout,
            },
            Error::Io {
                action,
                path,
                source,
            } => Error::Io {
                action,
                path: path.clone(),
                source: copy_io_error(source),
            },
            Error::Corrupt {
                path,
                offset,
                reason,
            } => Error::Corrupt {
                path: path.clone(),
                offset: *offset,
                reason: *reason,
            },
        }
    }
}

/// The same OS error (by code) or, for one made by hand, the same kind and message.
fn copy_io_error(source: &std::io::Error) -> std::io::Error {
    match source.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(source.kind(), source.to_string()),
    }
}

impl Error {
    /// The error of taking the store's `LOCK` (`WouldBlock`: another open holds it).
    pub(crate) fn locking(source: std::io::Error) -> Error {
        let lock = PathBuf::from(crate::machine::LOCK_FILE);
        if source.kind() == std::io::ErrorKind::WouldBlock {
            Error::Locked(lock)
        } else {
            Error::Io {
                action: "locking",
                path: lock,
                source,
            }
        }
    }

    /// The error as a `Store` reports it: every path under the store's directory
    /// `location`, and the messages of background failures naming the store.
    pub(crate) fn in_store(self, location: &Path) -> Error {
        if location.as_os_str().is_empty() {
            return self;
        }
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
            Error::CommitFailed(why) => Error::CommitFailed(why.in_store(location)),
            Error::Poisoned(why) => Error::Poisoned(why.in_store(location)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed_and_io_errors_keep_their_source() {
        let io = Error::Io {
            action: "reading",
            path: PathBuf::from("/s/keys/MANIFEST"),
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(
            io.to_string(),
            "I/O error while reading /s/keys/MANIFEST: disk on fire"
        );
        assert!(std::error::Error::source(&io).is_some());
        let corrupt = Error::Corrupt {
            path: PathBuf::from("/s/keys/p000/seg-00000000.dat"),
            offset: 40,
            reason: BadReason::BadChecksum,
        };
        assert_eq!(
            corrupt.to_string(),
            "corrupt file /s/keys/p000/seg-00000000.dat at offset 40: checksum mismatch"
        );
        assert!(std::error::Error::source(&corrupt).is_none());
        assert_eq!(
            Error::KeyTooLong {
                len: 2000,
                max: 1024
            }
            .to_string(),
            "key is 2000 bytes, over the limit of 1024"
        );
        assert_eq!(
            BadReason::UnsupportedVersion(9).to_string(),
            "unsupported log format version 9"
        );
        let failure = Failure::without_cause("the writer thread panicked");
        let named = Error::Poisoned(failure).in_store(Path::new("/s"));
        assert_eq!(
            named.to_string(),
            "store is poisoned by an earlier failure (the writer thread panicked, in store /s); close and reopen it"
        );
    }
}
