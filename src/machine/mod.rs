//! The state machines of the write path, each a plain struct over [`Fs`](crate::fs::Fs)
//! with time passed in as a value: no threads, channels, sleeps, clock reads or
//! randomness inside. [`crate::runtime`] drives them with threads; the simulator drives
//! the same methods from one thread.
//!
//! The order a driver must follow:
//! 1. [`recovery::recover`] once, before anything else touches the store's files.
//! 2. Callers push requests into a [`writer::SubmitQueue`]; it assigns seqs in queue order.
//! 3. One driver owns the [`writer::Writer`] and the [`rotation::Rotation`]: it takes a pass
//!    from the queue, calls [`writer::Writer::write_pass`], acknowledges per the returned
//!    levels, then asks [`rotation::Rotation::is_due`] and calls
//!    [`rotation::Rotation::rotate`] when it says so (and at [`rotation::Rotation::deadline`]
//!    when idle).
//! 4. After any I/O error the writer is poisoned and acknowledges nothing more.

pub mod build;
pub mod commit;
pub mod compact;
pub mod dispatch;
pub mod pacing;
pub mod recovery;
pub mod rotation;
pub mod writer;

use std::path::{Path, PathBuf};

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

/// The file name of a finished log rotated at `ts` (microseconds): `tx-{ts:020}.log`, so
/// that name order is numeric order.
pub fn log_file_name(ts: u64) -> String {
    format!("tx-{ts:020}.log")
}

/// The path of a finished log named `name`.
pub fn reading_path(name: &str) -> PathBuf {
    Path::new(READING_DIR).join(name)
}

/// The timestamp of a finished log's name, or `None` for a name that is not one.
pub fn parse_log_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("tx-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_round_trip_and_sort_numerically() {
        assert_eq!(log_file_name(42), "tx-00000000000000000042.log");
        assert_eq!(
            parse_log_file_name(&log_file_name(u64::MAX)),
            Some(u64::MAX)
        );
        assert!(log_file_name(9) < log_file_name(10));
        for bad in [
            "tx-1.log",
            "tx-0000000000000000004x.log",
            "x",
            "tx-00000000000000000042.log.tmp",
        ] {
            assert_eq!(parse_log_file_name(bad), None, "{bad}");
        }
    }
}
