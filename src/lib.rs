//! `writelog`: an embeddable record store whose write path is one sequential log.
//!
//! Every record goes through one append-only write log, written by one writer thread
//! with group commit; callers return once their record is as durable as they asked
//! ([`Durability`]). The log is rotated every few milliseconds into
//! `txlogs/reading/tx-{ts}.log`.
//!
//! Every moving part is a deterministic state machine in [`machine`], over the [`fs::Fs`]
//! and [`clock::Clock`] traits; [`runtime`] drives them with threads.
//!
//! ```no_run
//! use writelog::{Options, Store};
//! let store = Store::open("/tmp/my-store", Options::default())?;
//! let seq = store.append(b"user:42", b"logged in")?;
//! store.close()?;
//! # Ok::<(), writelog::Error>(())
//! ```
#![warn(missing_docs)]

pub mod clock;
pub mod error;
pub mod format;
pub mod fs;
pub mod index;
pub mod keystore;
pub mod machine;
pub mod options;
mod runtime;
pub mod seq;
pub mod seq_file;
pub mod store;

pub use error::{Error, Result};
pub use index::Record;
pub use options::{Durability, Options, RecoveryMode};
pub use store::{Seq, Stats, Store};
