//! Options and durability levels, validated once when a store opens.

use crate::error::{Error, Result};
use crate::format::{FORMAT_KEY_LEN_MAX, FORMAT_PAYLOAD_LEN_MAX};

/// How durable a record is when its append call returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Durability {
    /// On stable storage (the log was fdatasync'd) before the call returns: survives a
    /// power loss.
    #[default]
    Sync,
    /// Written to the OS before the call returns: survives a process crash, not a power
    /// loss.
    Buffered,
    /// Returns once queued: a crash may lose the last moments, but what survives is
    /// always a prefix of the log order.
    None,
}

/// What to do with a damaged block in a finished log (`txlogs/reading/`).
///
/// Crash damage in the leftover `writing/tx.log` is not corruption: every mode cuts that
/// log at its first bad block on open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Refuse to go on, with a corruption error naming the file and offset.
    #[default]
    Strict,
    /// Stop that log at its first bad block and keep what precedes it.
    PointInTime,
    /// Skip bad blocks (dropping the batches they break) and count them.
    SkipCorrupt,
}

/// Fails unless `key` holds 1 to `max_key_len` bytes.
pub(crate) fn check_key(key: &[u8], max_key_len: usize) -> crate::Result<()> {
    if key.is_empty() {
        return Err(crate::Error::EmptyKey);
    }
    if key.len() > max_key_len {
        return Err(crate::Error::KeyTooLong {
            len: key.len(),
            max: max_key_len,
        });
    }
    Ok(())
}

/// Everything a store can be configured with. `Options::default()` is a sound start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Durability of calls that do not name one.
    pub durability: Durability,
    /// Rotate the write log at least this often (when it holds records).
    pub rotate_interval_ms: u64,
    /// Rotate the write log once it holds this many bytes.
    pub rotate_bytes_max: u64,
    /// Number of committer threads that apply logs to the key store.
    pub committers: usize,
    /// Bytes of encoded records the write queue holds before `append` blocks and
    /// `try_append` fails. A single request larger than this is still taken, alone.
    pub queue_bytes_max: usize,
    /// Bytes of encoded records the writer takes from the queue in one pass.
    pub pass_bytes_max: usize,
    /// Longest key accepted, in bytes (1..=65535).
    pub max_key_len: usize,
    /// Longest payload accepted, in bytes.
    pub max_record_len: usize,
    /// What to do with corruption in finished logs.
    pub recovery_mode: RecoveryMode,
    /// Zeros the writer writes ahead in the active log each time a pass that fdatasyncs
    /// outgrows it, so that most passes' fdatasyncs commit no file size change (0: none;
    /// passes that do not sync write none). A new log's first outgrowing goes at once to
    /// the length the previous log reached, if that is more. Rotation cuts what is left
    /// unused. Capped at `rotate_bytes_max`.
    pub log_prealloc_bytes: u64,
    /// Finished logs allowed to wait for the committers before appends block. This bounds
    /// the disk the logs take: each holds at most about `rotate_bytes_max` plus one pass
    /// (with the defaults, 128 × 8 MiB, about 1 GiB).
    pub backlog_logs_max: usize,
    /// Memory the records not yet in the key store may take (the pending index behind
    /// read-your-writes, counted as [`crate::index::op_bytes`] per record) before appends
    /// block and `try_append` fails with `Backlogged`. With the committers' copies of the
    /// records in flight, the commit side holds at most about twice this.
    pub backlog_bytes_max: usize,
    /// The dispatcher hands new logs to the committers at most this often (at once for
    /// `flush`, or when half of either backlog bound is reached), so that a committer pass
    /// covers several logs and writes each key's file once for many records.
    pub commit_interval_ms: u64,
    /// Seqs reserved durably ahead of those handed out (1..=2^40), so that a seq once
    /// returned is never returned again, even for a record a crash then lost: each
    /// extension costs one small durable write per half this many seqs, and each open
    /// skips what is left of the last reservation (seqs jump by up to this much across a
    /// restart).
    pub seq_lease: u64,
    /// Partitions of the key store (1..=1000). Fixed when the store is created and kept
    /// in `keys/MANIFEST`: opening an existing store uses the partitions it was created
    /// with, whatever this says. Each committer pass appends one run, with one fdatasync,
    /// to each partition it touched.
    pub partitions: u32,
    /// A committer starts a new segment once the one it appends to holds this many bytes.
    pub segment_bytes_max: u64,
    /// Memory the key store's index may take, whatever the number of keys: each
    /// partition's entries changed since its last index checkpoint are folded into a new
    /// one once they are counted for more than this over `partitions`; a checkpoint keeps
    /// only its directory (about one key in 40) in memory. Opening reads only the runs
    /// written since each partition's checkpoint, so it is bounded by this too.
    pub index_memory_max: u64,
    /// Compaction: a partition is rewritten whole (each key's live records contiguous,
    /// what deletes and truncates removed dropped) once its segments hold at least this
    /// many bytes and [`Options::compaction_space_percent`] of what they held right after
    /// its last compaction. `u64::MAX`: never.
    pub compaction_min_bytes: u64,
    /// See [`Options::compaction_min_bytes`]; at least 110. Under steady churn a
    /// partition holds at most about this percentage of its live bytes.
    pub compaction_space_percent: u32,
    /// Retention: keep at most this many of each key's newest records (at least 1;
    /// `None`: all). Applied by compaction, which moves each longer key's floor as a
    /// truncate does: a key holds at least this many records (if it had them), and at
    /// most this many plus what it gained since its partition was last compacted.
    pub retain_records: Option<u64>,
    /// Retention by size: keep each key's newest records whose payloads add up to at
    /// most this many bytes, and always its newest record (at least 1; `None`: all).
    /// Applied by compaction like `retain_records`; with both, the fewer records are kept.
    pub retain_bytes: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Sync,
            rotate_interval_ms: 100,
            rotate_bytes_max: 8 << 20,
            committers: std::thread::available_parallelism()
                .map(usize::from)
                .unwrap_or(1),
            queue_bytes_max: 64 << 20,
            pass_bytes_max: 4 << 20,
            max_key_len: 1024,
            max_record_len: 16 << 20,
            recovery_mode: RecoveryMode::Strict,
            log_prealloc_bytes: 256 << 10,
            backlog_logs_max: 128,
            backlog_bytes_max: 256 << 20,
            commit_interval_ms: 5000,
            seq_lease: crate::machine::seq_lease::SEQ_LEASE_DEFAULT,
            partitions: 8,
            segment_bytes_max: 256 << 20,
            index_memory_max: 64 << 20,
            compaction_min_bytes: 64 << 20,
            compaction_space_percent: 190,
            retain_records: None,
            retain_bytes: None,
        }
    }
}

impl Options {
    /// Checks every field's range and the fields' consistency.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidOptions(why));
        if self.max_key_len == 0 || self.max_key_len > FORMAT_KEY_LEN_MAX {
            return bad(format!("max_key_len must be 1..={FORMAT_KEY_LEN_MAX}"));
        }
        if self.max_record_len > FORMAT_PAYLOAD_LEN_MAX {
            return bad(format!(
                "max_record_len must be at most {FORMAT_PAYLOAD_LEN_MAX}"
            ));
        }
        if self.rotate_interval_ms == 0 {
            return bad("rotate_interval_ms must be at least 1".into());
        }
        if self.rotate_bytes_max < 4096 {
            return bad("rotate_bytes_max must be at least 4096".into());
        }
        if self.committers == 0 || self.committers > 1024 {
            return bad("committers must be 1..=1024".into());
        }
        if self.queue_bytes_max == 0 || self.pass_bytes_max == 0 {
            return bad("queue_bytes_max and pass_bytes_max must be positive".into());
        }
        if self.backlog_logs_max == 0 {
            return bad("backlog_logs_max must be at least 1".into());
        }
        if self.backlog_bytes_max == 0 {
            return bad("backlog_bytes_max must be positive".into());
        }
        if self.partitions == 0 || self.partitions > crate::keystore::manifest::PARTITIONS_MAX {
            return bad("partitions must be 1..=1000".into());
        }
        if self.seq_lease == 0 || self.seq_lease > 1 << 40 {
            return bad("seq_lease must be 1..=2^40".into());
        }
        if self.segment_bytes_max < 4096 {
            return bad("segment_bytes_max must be at least 4096".into());
        }
        if self.index_memory_max < 4096 {
            return bad("index_memory_max must be at least 4096".into());
        }
        if self.compaction_space_percent < 110 {
            return bad("compaction_space_percent must be at least 110".into());
        }
        if self.retain_records == Some(0) {
            return bad("retain_records must be at least 1".into());
        }
        if self.retain_bytes == Some(0) {
            return bad("retain_bytes must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        let cases = [
            Options {
                max_key_len: 0,
                ..Options::default()
            },
            Options {
                compaction_space_percent: 109,
                ..Options::default()
            },
            Options {
                retain_records: Some(0),
                ..Options::default()
            },
            Options {
                retain_bytes: Some(0),
                ..Options::default()
            },
            Options {
                max_key_len: 70_000,
                ..Options::default()
            },
            Options {
                rotate_interval_ms: 0,
                ..Options::default()
            },
            Options {
                committers: 0,
                ..Options::default()
            },
            Options {
                queue_bytes_max: 0,
                ..Options::default()
            },
            Options {
                backlog_logs_max: 0,
                ..Options::default()
            },
            Options {
                partitions: 0,
                ..Options::default()
            },
            Options {
                partitions: 1001,
                ..Options::default()
            },
        ];
        for options in cases {
            assert!(
                matches!(options.validate(), Err(Error::InvalidOptions(_))),
                "{options:?}"
            );
        }
    }
}
