//! The key store, built like the log: P partitions fixed at creation, each an ordered list
//! of append-only segments; every committer pass appends one run to each partition it
//! touched (one write, one fdatasync); `keys/MANIFEST` says which segments are live, how
//! far each is durable, and the applied watermark (DESIGN §2, `docs/FORMAT.md`).
//!
//! ```text
//! keys/MANIFEST              partitions, live segments and their durable lengths, watermark
//! keys/p{NNN}/seg-{n}.dat    one partition's segments
//! ```
//!
//! A key's records live in groups, one per run that touched it (more when a run holds more
//! than [`segment::GROUP_BYTES_TARGET`] of them); each group links to the key's previous
//! group, so a read walks back from the newest group only as far as the records it
//! returns. The index ([`KeyEntry`] per key) says where a key's newest group is, the
//! highest seq the key holds (deletes included: a replayed older record is skipped) and the
//! key's floor (records below it are deleted or truncated).
//!
//! Order of durability: runs durable (fdatasync of the segment; the partition directory
//! fsync'd when a segment is created), then the MANIFEST, then the logs removed. Only bytes
//! past a segment's durable length in the MANIFEST can be crash damage: opening cuts them.
//! Damage inside the durable part is corruption: never cut, never written over; a read that
//! meets it returns [`crate::Error::Corrupt`] under `Strict`, and skips and counts it under
//! the lenient modes.

pub mod checkpoint;
pub mod manifest;
mod open;
pub mod partition;
mod read;
mod regions;
pub mod scrub;
pub mod segment;
pub mod varint;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{IoContext, Result};
use crate::fs::Fs;
use crate::options::RecoveryMode;
pub use open::{OpenMode, OpenReport};
pub use partition::{Partition, INDEX_ENTRY_OVERHEAD_BYTES};
pub use read::KeyRead;
use segment::GroupRef;

/// The key store's directory.
pub const KEYS_DIR: &str = "keys";

/// FNV-1a, 64-bit, over the key's bytes: the specified, stable hash that picks a key's
/// partition (`key_hash(key) % partitions`). Test vectors: `""` → `0xcbf29ce484222325`,
/// `"a"` → `0xaf63dc4c8601ec8c`, `"foobar"` → `0x85944171f73967e8`.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The partition (of `partitions`) that holds `key`.
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    (key_hash(key) % u64::from(partitions.max(1))) as u32
}

/// The committer (of `committers`) that owns partition `partition`.
pub fn committer_for_partition(partition: u32, committers: usize) -> usize {
    partition as usize % committers.max(1)
}

/// The directory of partition `partition`: `keys/p{NNN}`.
pub fn partition_dir(partition: u32) -> PathBuf {
    Path::new(KEYS_DIR).join(format!("p{partition:03}"))
}

/// The path of segment `segment` of partition `partition`.
pub fn segment_path(partition: u32, segment: u32) -> PathBuf {
    partition_dir(partition).join(segment_file_name(segment))
}

/// Creates segment `segment` of `partition` and writes its header (not synced: the first
/// run's fdatasync covers it, and the caller fsyncs the directory). There must be none of
/// that number: opening removed every segment the MANIFEST does not list, and numbers
/// only grow, so a segment is never created over another.
pub fn create_segment<F: Fs>(fs: &F, partition: u32, segment: u32) -> Result<F::File> {
    let path = segment_path(partition, segment);
    if fs.len(&path).io("inspecting", &path)?.is_some() {
        return Err(crate::error::Error::CommitFailed(
            crate::Failure::without_cause(format!(
                "{} exists, yet the key store does not list it",
                path.display()
            )),
        ));
    }
    let mut file = fs.create(&path).io("creating", &path)?;
    let mut header = Vec::with_capacity(segment::SEGMENT_HEADER_LEN);
    segment::encode_segment_header(&mut header, partition, segment);
    crate::fs::FsFile::append(&mut file, &header).io("writing", &path)?;
    Ok(file)
}

/// A segment's file name: `seg-{n:08}.dat`.
pub fn segment_file_name(segment: u32) -> String {
    format!("seg-{segment:08}.dat")
}

/// The number of a segment file's name, or `None` for a name that is not one.
pub fn parse_segment_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".dat")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What the key store knows of one key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key's newest group that may hold live records (`None`: no live records).
    pub head: Option<GroupRef>,
    /// The highest seq applied to the key, deletes and truncates included: a record at or
    /// below it is a duplicate.
    pub last_seq: u64,
    /// Records below this seq are gone (deleted or truncated).
    pub floor: u64,
}

impl KeyEntry {
    /// Whether the key holds live records.
    pub fn has_records(&self) -> bool {
        self.head.is_some_and(|head| head.last_seq >= self.floor)
    }
}

/// One segment as the store keeps it in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentState {
    /// Its number in the partition.
    pub number: u32,
    /// Bytes durable and indexed: what reads may touch and the next MANIFEST records.
    pub len: u64,
    /// No more runs go here (damage was found in it, or it was found short).
    pub sealed: bool,
}

/// The key store: its partitions behind one lock each, shared by the committers (which
/// write their own partitions), the readers and the dispatcher (which writes the MANIFEST).
#[derive(Debug)]
pub struct KeyStore {
    partitions: Vec<Mutex<Partition>>,
    mode: RecoveryMode,
    /// The durable applied watermark.
    watermark: AtomicU64,
    /// Damaged groups and records that reads skipped (lenient modes).
    damage_skipped: AtomicU64,
    /// Held while a MANIFEST is written: the dispatcher and a compacting committer both
    /// write one, through the same temporary file.
    manifest_writer: Mutex<()>,
}

impl KeyStore {
    /// The partitions, fixed when the store was created.
    pub fn partitions(&self) -> u32 {
        self.partitions.len() as u32
    }

    /// The recovery mode reads follow when they meet damage.
    pub fn mode(&self) -> RecoveryMode {
        self.mode
    }

    /// The partition `partition`, locked.
    pub fn partition(&self, partition: u32) -> MutexGuard<'_, Partition> {
        self.partitions[partition as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The durable applied watermark: every seq at or below it is in the key store.
    pub fn watermark(&self) -> u64 {
        self.watermark.load(Ordering::SeqCst)
    }

    /// Damaged groups, records and checkpoint blocks that reads skipped under a lenient
    /// mode.
    pub fn damage_skipped(&self) -> u64 {
        let in_checkpoints: u64 = (0..self.partitions())
            .map(|p| self.partition(p).damage_skipped)
            .sum();
        self.damage_skipped.load(Ordering::Relaxed) + in_checkpoints
    }

    /// What the store knows of `key` (from the delta, or one checkpoint block read).
    pub fn entry<F: Fs>(&self, fs: &F, key: &[u8]) -> Result<Option<KeyEntry>> {
        let partition = partition_for(key, self.partitions());
        self.partition(partition).lookup(fs, key)
    }

    /// Every key holding live records, sorted. From the index: no record is read.
    pub fn keys<F: Fs>(&self, fs: &F) -> Result<Vec<Vec<u8>>> {
        let mut keys = Vec::new();
        for partition in 0..self.partitions() {
            self.partition(partition).live_keys(fs, &mut keys)?;
        }
        keys.sort();
        Ok(keys)
    }

    /// Memory the index is counted for, summed over the partitions.
    pub fn index_bytes(&self) -> u64 {
        (0..self.partitions())
            .map(|p| self.partition(p).index_bytes())
            .sum()
    }

    /// Live segments and their bytes, summed over the partitions.
    pub fn segments_and_bytes(&self) -> (u64, u64) {
        (0..self.partitions()).fold((0, 0), |(count, bytes), partition| {
            let part = self.partition(partition);
            let held: u64 = part.segments.iter().map(|s| s.len).sum();
            (count + part.segments.len() as u64, bytes + held)
        })
    }

    /// Makes a MANIFEST durable that records every segment as far as it is durable now,
    /// each partition's checkpoint, and `watermark`; then removes the checkpoints it no
    /// longer names. Called by the one dispatcher, before it removes the logs that the
    /// watermark covers.
    pub fn write_manifest<F: Fs>(&self, fs: &F, watermark: u64) -> Result<()> {
        let _one_writer = self
            .manifest_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let watermark = watermark.max(self.watermark());
        let mut manifest = manifest::Manifest {
            partitions: self.partitions(),
            watermark,
            ..Default::default()
        };
        // Segments a compaction replaced before this MANIFEST was taken: it does not list
        // them, so once it is durable they can go.
        let mut retired: Vec<(u32, Vec<u32>)> = Vec::new();
        for partition in 0..self.partitions() {
            let mut part = self.partition(partition);
            manifest
                .segments
                .extend(part.segments.iter().map(|s| manifest::SegmentEntry {
                    partition,
                    segment: s.number,
                    durable_len: s.len,
                }));
            manifest.checkpoints.extend(part.checkpoint_entry());
            retired.push((partition, part.take_retired()));
        }
        if let Err(e) = manifest::write(fs, &manifest) {
            for (partition, numbers) in retired {
                self.partition(partition).give_back_retired(numbers);
            }
            return Err(e);
        }
        self.watermark.store(watermark, Ordering::SeqCst);
        for (partition, numbers) in &retired {
            for &number in numbers {
                let path = segment_path(*partition, number);
                fs.remove(&path).io("removing", &path)?;
            }
        }
        for partition in 0..self.partitions() {
            let named = manifest
                .checkpoints
                .iter()
                .find(|c| c.partition == partition)
                .map_or(u32::MAX, |c| c.number);
            let gone = self.partition(partition).take_superseded_below(named);
            for number in gone {
                let path = checkpoint::checkpoint_path(partition, number);
                fs.remove(&path).io("removing", &path)?;
            }
        }
        for (partition, numbers) in &retired {
            if !numbers.is_empty() {
                let dir = partition_dir(*partition);
                fs.sync_dir(&dir).io("fsyncing", &dir)?;
            }
        }
        Ok(())
    }

    /// Counts one piece of damage a read skipped.
    fn count_damage(&self) {
        self.damage_skipped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Damage met in durable key-store bytes, told as a `warn` event (`what` says where):
/// [`Error::Corrupt`] under `Strict`; `Ok` otherwise, for the caller to count or record.
fn refuse_if_strict(
    mode: RecoveryMode,
    (path, offset, reason): (&Path, u64, crate::format::BadReason),
    what: &'static str,
) -> Result<()> {
    tracing::warn!(path = %path.display(), offset, %reason, ?mode, "{what}");
    if mode == RecoveryMode::Strict {
        return Err(crate::Error::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hash_is_fnv1a_64_and_names_partitions() {
        assert_eq!(key_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(key_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(key_hash(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            partition_for(b"foobar", 7),
            (0x8594_4171_f739_67e8u64 % 7) as u32
        );
        assert_eq!(committer_for_partition(5, 2), 1);
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_path(3, 42), Path::new("keys/p003/seg-00000042.dat"));
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        for bad in ["seg-1.dat", "seg-0000004x.dat", "seg-00000042.dat.tmp", "x"] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
    }
}
