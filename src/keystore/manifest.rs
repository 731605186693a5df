//! `keys/MANIFEST`: the key store's partition count, its live segments with the length up
//! to which each is durable, and the applied watermark (`docs/FORMAT.md`).
//!
//! ```text
//! magic "WLMANIF1"(8) version u32 partitions u32 watermark u64 segments u32 checkpoints u32
//! segments × (partition u32, segment u32, durable_len u64)
//! checkpoints × (partition u32, number u32, covers_segment u32, compacted_kib u32, covers_offset u64)
//! crc64 over all before it
//! ```
//!
//! Replaced whole, never edited: written to `keys/MANIFEST.tmp`, fdatasync'd, renamed over
//! the old one, then `keys/` is fsync'd. A crash leaves the old MANIFEST or the new one.

use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::format::{crc64, BadReason};
use crate::fs::{Fs, FsFile};

/// The MANIFEST's path.
pub const MANIFEST_FILE: &str = "keys/MANIFEST";
/// Where a new MANIFEST is written before it is renamed into place.
pub const MANIFEST_TMP: &str = "keys/MANIFEST.tmp";
/// The MANIFEST's magic.
pub const MANIFEST_MAGIC: [u8; 8] = *b"WLMANIF1";
/// The MANIFEST format version.
pub const MANIFEST_VERSION: u32 = 1;
/// Length of the MANIFEST's fixed header.
pub const MANIFEST_HEADER_LEN: usize = 32;
/// Length of one segment's entry.
pub const MANIFEST_ENTRY_LEN: usize = 16;
/// Length of one checkpoint's entry.
pub const MANIFEST_CHECKPOINT_LEN: usize = 24;
/// The most partitions a store may have.
pub const PARTITIONS_MAX: u32 = 1000;

/// One live segment, as the MANIFEST records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentEntry {
    /// The partition it belongs to.
    pub partition: u32,
    /// Its number within the partition.
    pub segment: u32,
    /// Every byte before this offset is durable; anything after it may be crash damage.
    pub durable_len: u64,
}

/// A partition's index checkpoint, as the MANIFEST records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CheckpointEntry {
    /// The partition.
    pub partition: u32,
    /// The checkpoint's number (`index-{n}.idx`).
    pub number: u32,
    /// The segment up to which it covers the partition's runs.
    pub covers_segment: u32,
    /// The offset in that segment up to which it covers them (every run before it).
    pub covers_offset: u64,
    /// The partition's bytes right after its last compaction, in KiB rounded up (0: not
    /// compacted, or not known): the baseline compaction's space policy grows from.
    pub compacted_kib: u32,
}

/// The decoded MANIFEST.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    /// Partitions, fixed when the store was created.
    pub partitions: u32,
    /// Every seq at or below it is in the key store.
    pub watermark: u64,
    /// Live segments, sorted by partition then number.
    pub segments: Vec<SegmentEntry>,
    /// Index checkpoints, at most one per partition, sorted by partition.
    pub checkpoints: Vec<CheckpointEntry>,
}

/// Encodes `manifest`.
pub fn encode(manifest: &Manifest) -> Vec<u8> {
    assert!(
        manifest
            .segments
            .windows(2)
            .all(|w| (w[0].partition, w[0].segment) < (w[1].partition, w[1].segment)),
        "segments sorted, each once"
    );
    let mut out =
        Vec::with_capacity(MANIFEST_HEADER_LEN + manifest.segments.len() * MANIFEST_ENTRY_LEN + 8);
    out.extend_from_slice(&MANIFEST_MAGIC);
    out.extend_from_slice(&MANIFEST_VERSION.to_le_bytes());
    out.extend_from_slice(&manifest.partitions.to_le_bytes());
    out.extend_from_slice(&manifest.watermark.to_le_bytes());
    out.extend_from_slice(&(manifest.segments.len() as u32).to_le_bytes());
    out.extend_from_slice(&(manifest.checkpoints.len() as u32).to_le_bytes());
    for entry in &manifest.segments {
        out.extend_from_slice(&entry.partition.to_le_bytes());
        out.extend_from_slice(&entry.segment.to_le_bytes());
        out.extend_from_slice(&entry.durable_len.to_le_bytes());
    }
    for entry in &manifest.checkpoints {
        out.extend_from_slice(&entry.partition.to_le_bytes());
        out.extend_from_slice(&entry.number.to_le_bytes());
        out.extend_from_slice(&entry.covers_segment.to_le_bytes());
        out.extend_from_slice(&entry.compacted_kib.to_le_bytes());
        out.extend_from_slice(&entry.covers_offset.to_le_bytes());
    }
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a MANIFEST, checking its checksum, its counts against its length, and that
/// every segment names a partition the store has, in order.
pub fn decode(bytes: &[u8]) -> Result<Manifest, BadReason> {
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let dword = |at: usize| u64::from(word(at)) | (u64::from(word(at + 4)) << 32);
    if bytes.len() < MANIFEST_HEADER_LEN + 8 {
        return Err(BadReason::HeaderTruncated);
    }
    if bytes[..8] != MANIFEST_MAGIC {
        return Err(BadReason::BadFileMagic);
    }
    let body = bytes.len() - 8;
    if crc64(&bytes[..body]) != dword(body) {
        return Err(BadReason::BadChecksum);
    }
    if word(8) != MANIFEST_VERSION {
        return Err(BadReason::UnsupportedVersion(word(8)));
    }
    let partitions = word(12);
    let (count, checkpoints) = (word(24) as usize, word(28) as usize);
    if partitions == 0 || partitions > PARTITIONS_MAX {
        return Err(BadReason::BadField);
    }
    let expected = (count as u64 * MANIFEST_ENTRY_LEN as u64)
        .checked_add(checkpoints as u64 * MANIFEST_CHECKPOINT_LEN as u64);
    if expected != Some((body - MANIFEST_HEADER_LEN) as u64) {
        return Err(BadReason::BadField);
    }
    let segments: Vec<SegmentEntry> = (0..count)
        .map(|i| {
            let at = MANIFEST_HEADER_LEN + i * MANIFEST_ENTRY_LEN;
            SegmentEntry {
                partition: word(at),
                segment: word(at + 4),
                durable_len: dword(at + 8),
            }
        })
        .collect();
    let sorted = segments
        .windows(2)
        .all(|w| (w[0].partition, w[0].segment) < (w[1].partition, w[1].segment));
    if !sorted || segments.iter().any(|s| s.partition >= partitions) {
        return Err(BadReason::BadField);
    }
    let base = MANIFEST_HEADER_LEN + count * MANIFEST_ENTRY_LEN;
    let checkpoints: Vec<CheckpointEntry> = (0..checkpoints)
        .map(|i| {
            let at = base + i * MANIFEST_CHECKPOINT_LEN;
            CheckpointEntry {
                partition: word(at),
                number: word(at + 4),
                covers_segment: word(at + 8),
                compacted_kib: word(at + 12),
                covers_offset: dword(at + 16),
            }
        })
        .collect();
    let one_each = checkpoints
        .windows(2)
        .all(|w| w[0].partition < w[1].partition);
    if !one_each || checkpoints.iter().any(|c| c.partition >= partitions) {
        return Err(BadReason::BadField);
    }
    Ok(Manifest {
        partitions,
        watermark: dword(16),
        segments,
        checkpoints,
    })
}

/// Reads the MANIFEST; `None` when there is none. Damage is [`Error::Corrupt`].
pub fn read<F: Fs>(fs: &F) -> Result<Option<Manifest>> {
    let path = Path::new(MANIFEST_FILE);
    if fs.len(path).io("inspecting", path)?.is_none() {
        return Ok(None);
    }
    let bytes = fs.read(path).io("reading", path)?;
    decode(&bytes).map(Some).map_err(|reason| Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    })
}

/// Makes `manifest` the durable MANIFEST (see the module doc).
pub fn write<F: Fs>(fs: &F, manifest: &Manifest) -> Result<()> {
    let (path, tmp) = (Path::new(MANIFEST_FILE), Path::new(MANIFEST_TMP));
    let bytes = encode(manifest);
    let mut file = fs.create(tmp).io("creating", tmp)?;
    file.append(&bytes).io("writing", tmp)?;
    file.sync_data().io("syncing", tmp)?;
    drop(file);
    fs.rename(tmp, path).io("renaming", tmp)?;
    let dir = Path::new(super::KEYS_DIR);
    fs.sync_dir(dir).io("fsyncing", dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    #[test]
    fn a_manifest_round_trips_and_refuses_damage() {
        let manifest = Manifest {
            partitions: 4,
            watermark: 77,
            segments: vec![
                SegmentEntry {
                    partition: 0,
                    segment: 1,
                    durable_len: 32,
                },
                SegmentEntry {
                    partition: 3,
                    segment: 0,
                    durable_len: 4096,
                },
            ],
            checkpoints: vec![CheckpointEntry {
                partition: 3,
                number: 2,
                covers_segment: 0,
                covers_offset: 2000,
                compacted_kib: 77,
            }],
        };
        let bytes = encode(&manifest);
        assert_eq!(decode(&bytes), Ok(manifest.clone()));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut rotten = bytes.clone();
            rotten[at] ^= 0x10;
            assert!(decode(&rotten).is_err(), "flip at {at}");
        }
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("keys")).unwrap();
        assert_eq!(read(&fs).unwrap(), None);
        write(&fs, &manifest).unwrap();
        assert_eq!(read(&fs).unwrap(), Some(manifest));
    }
}
