//! One partition in memory: its segments, and its index, which is a checkpoint on disk
//! (only its directory in memory) plus the entries changed since (the delta, bounded: past
//! its share of `Options::index_memory_max` the committer folds it into a new checkpoint).

use std::collections::BTreeMap;

use super::checkpoint::{self, Checkpoint, Damage};
use super::manifest::CheckpointEntry;
use super::{KeyEntry, SegmentState};
use crate::error::{Error, Result};
use crate::fs::Fs;
use crate::options::RecoveryMode;

/// What one key's entry in the delta is counted for in memory beyond its key's bytes: the
/// entry, the key's `Vec` and heap block, and the map's per-entry share. An estimate.
pub const INDEX_ENTRY_OVERHEAD_BYTES: u64 = 96;

/// One partition (see the module doc).
#[derive(Debug)]
pub struct Partition {
    id: u32,
    mode: RecoveryMode,
    /// Live segments, by number; appends go to the last one unless it is sealed.
    pub segments: Vec<SegmentState>,
    /// Entries changed since the checkpoint; they override it.
    delta: BTreeMap<Vec<u8>, KeyEntry>,
    /// Invariant: the sum over `delta` of the key's length plus
    /// [`INDEX_ENTRY_OVERHEAD_BYTES`].
    delta_bytes: u64,
    /// The checkpoint, if any, and the position (segment, offset) before which every run
    /// is in it.
    checkpoint: Option<(Checkpoint, (u32, u64))>,
    /// Checkpoints replaced in this process, removed once a MANIFEST no longer names them.
    superseded: Vec<u32>,
    /// Damage met in the checkpoint and skipped (lenient modes).
    pub(super) damage_skipped: u64,
    /// Runs indexed when the store opened.
    pub(super) runs: u64,
    /// Bumped whenever compaction replaces the segments: a read that met a missing
    /// segment or damage retries if it changed meanwhile (the group it followed moved).
    generation: u64,
    /// Segments a compaction replaced, removed once a MANIFEST no longer lists them.
    retired: Vec<u32>,
    /// The partition's bytes right after its last compaction, in KiB (0: not known);
    /// kept in the MANIFEST with the checkpoint.
    pub compacted_kib: u32,
    /// Damage was found in the partition (at open, by a read, or by a compaction): it is
    /// never compacted, so that the damaged bytes stay as they are.
    pub damage_found: bool,
}

impl Partition {
    /// An empty partition `id` whose reads follow `mode` on damage.
    pub fn new(id: u32, mode: RecoveryMode) -> Self {
        Partition {
            id,
            mode,
            segments: Vec::new(),
            delta: BTreeMap::new(),
            delta_bytes: 0,
            checkpoint: None,
            superseded: Vec::new(),
            damage_skipped: 0,
            runs: 0,
            generation: 0,
            retired: Vec::new(),
            compacted_kib: 0,
            damage_found: false,
        }
    }

    /// Takes `checkpoint` as the index up to `covers`, at open.
    pub(super) fn set_checkpoint(&mut self, checkpoint: Checkpoint, covers: (u32, u64)) {
        assert!(
            self.delta.is_empty(),
            "a checkpoint is set before any run is indexed"
        );
        self.checkpoint = Some((checkpoint, covers));
    }

    /// Records that the durable MANIFEST names checkpoint `number`, which opening could
    /// not use (damaged, under a lenient mode): its number is never written again, and
    /// the file goes once a MANIFEST that does not name it is durable.
    pub(super) fn set_unusable_checkpoint(&mut self, number: u32) {
        assert!(self.checkpoint.is_none(), "a usable checkpoint was set");
        self.superseded.push(number);
    }

    /// The position before which every run is in the checkpoint.
    pub fn covers(&self) -> Option<(u32, u64)> {
        self.checkpoint.as_ref().map(|(_, covers)| *covers)
    }

    /// The entry of `key`: from the delta, else from the checkpoint (one block read).
    /// Damage in the checkpoint is `Error::Corrupt` under `Strict`, else counted and read
    /// as no entry.
    pub fn lookup<F: Fs>(&mut self, fs: &F, key: &[u8]) -> Result<Option<KeyEntry>> {
        if let Some(entry) = self.delta.get(key) {
            return Ok(Some(*entry));
        }
        let Some((checkpoint, _)) = &self.checkpoint else {
            return Ok(None);
        };
        let Some(block) = checkpoint.block_for(key) else {
            return Ok(None);
        };
        match checkpoint::read_block(fs, self.id, checkpoint, block)? {
            Ok(entries) => Ok(entries
                .binary_search_by(|(k, _)| k.as_slice().cmp(key))
                .ok()
                .map(|at| entries[at].1)),
            Err(damage) => self.damaged(damage).map(|()| None),
        }
    }

    /// Damage in the checkpoint: refused under `Strict`, else counted.
    fn damaged(&mut self, (path, offset, reason): Damage) -> Result<()> {
        let what = "a read met damage in an index checkpoint";
        super::refuse_if_strict(self.mode, (&path, offset, reason), what)?;
        self.damage_skipped += 1;
        Ok(())
    }

    /// Sets the entry of `key` (in the delta).
    pub fn insert(&mut self, key: &[u8], entry: KeyEntry) {
        match self.delta.get_mut(key) {
            Some(existing) => *existing = entry,
            None => {
                self.delta_bytes += key.len() as u64 + INDEX_ENTRY_OVERHEAD_BYTES;
                self.delta.insert(key.to_vec(), entry);
            }
        }
    }

    /// Memory the delta is counted for.
    pub fn delta_bytes(&self) -> u64 {
        self.delta_bytes
    }

    /// Whether entries changed since the checkpoint.
    pub fn has_delta(&self) -> bool {
        !self.delta.is_empty()
    }

    /// Memory the index is counted for: the delta and the checkpoint's directory.
    pub fn index_bytes(&self) -> u64 {
        self.delta_bytes + self.checkpoint.as_ref().map_or(0, |(c, _)| c.bytes())
    }

    /// Appends every key holding live records to `out`, in key order.
    pub fn live_keys<F: Fs>(&mut self, fs: &F, out: &mut Vec<Vec<u8>>) -> Result<()> {
        let mut delta = self.delta.iter().peekable();
        let mut damage = None;
        if let Some((checkpoint, _)) = &self.checkpoint {
            for block in &checkpoint.blocks {
                let entries = match checkpoint::read_block(fs, self.id, checkpoint, block)? {
                    Ok(entries) => entries,
                    Err(found) => {
                        damage = Some(found);
                        break;
                    }
                };
                for (key, entry) in entries {
                    while let Some((k, e)) = delta.next_if(|(k, _)| **k < key) {
                        if e.has_records() {
                            out.push(k.clone());
                        }
                    }
                    if delta.peek().is_some_and(|(k, _)| **k == key) {
                        continue;
                    }
                    if entry.has_records() {
                        out.push(key);
                    }
                }
            }
        }
        out.extend(
            delta
                .filter(|(_, e)| e.has_records())
                .map(|(k, _)| k.clone()),
        );
        match damage {
            Some(found) => self.damaged(found),
            None => Ok(()),
        }
    }

    /// Folds the delta into a new checkpoint covering every run so far, made durable
    /// before it replaces the old one (which is removed once a MANIFEST no longer names
    /// it). Entries of keys with no records whose last seq is at or below `watermark` are
    /// dropped: no replay can bring anything older back (the dispatcher skips every seq at
    /// or below the watermark), so the tombstone has done its work.
    /// Returns the checkpoint's length in bytes.
    pub fn write_checkpoint<F: Fs>(&mut self, fs: &F, watermark: u64) -> Result<u64> {
        let covers = self.segments.last().map_or((0, 0), |s| (s.number, s.len));
        let number = self.next_checkpoint_number();
        let mut merge = Merge {
            fs,
            partition: self.id,
            old: self.checkpoint.as_ref().map(|(c, _)| c),
            next_block: 0,
            block: Vec::new().into_iter(),
            old_head: None,
            delta: self.delta.iter().peekable(),
            failure: None,
        };
        let kept = (&mut merge).filter(|(_, e)| e.has_records() || e.last_seq > watermark);
        let written = checkpoint::write(fs, self.id, number, kept)?;
        let failure = merge.failure.take();
        if let Some(failure) = failure {
            match failure {
                MergeFailure::Io(e) => return Err(e),
                MergeFailure::Damage(found) => self.damaged(found)?,
            }
        }
        let bytes = written.file_len;
        if let Some((old, _)) = self.checkpoint.replace((written, covers)) {
            self.superseded.push(old.number);
        }
        self.delta.clear();
        self.delta_bytes = 0;
        Ok(bytes)
    }

    /// The MANIFEST's entry for this partition's checkpoint.
    pub fn checkpoint_entry(&self) -> Option<CheckpointEntry> {
        self.checkpoint
            .as_ref()
            .map(|(c, (segment, offset))| CheckpointEntry {
                partition: self.id,
                number: c.number,
                covers_segment: *segment,
                covers_offset: *offset,
                compacted_kib: self.compacted_kib,
            })
    }

    /// Takes the superseded checkpoints numbered below `number` (a durable MANIFEST names
    /// `number`, so they can go).
    pub fn take_superseded_below(&mut self, number: u32) -> Vec<u32> {
        let (gone, kept) = self.superseded.iter().partition(|&&n| n < number);
        self.superseded = kept;
        gone
    }

    /// The partition's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// How many times compaction has replaced the segments in this process.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The next checkpoint's number: above the current one and every superseded one.
    pub fn next_checkpoint_number(&self) -> u32 {
        self.checkpoint
            .as_ref()
            .map_or(0, |(c, _)| c.number + 1)
            .max(self.superseded.iter().max().map_or(0, |n| n + 1))
    }

    /// Up to `limit` entries of the index (checkpoint and delta merged, the delta's
    /// winning) with keys after `after`, in key order: a scan a caller resumes from the
    /// last key it got, holding the partition only for one batch at a time.
    pub fn entries_after<F: Fs>(
        &mut self,
        fs: &F,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, KeyEntry)>> {
        let past = |key: &[u8]| after.is_none_or(|after| key > after);
        let mut old: Vec<(Vec<u8>, KeyEntry)> = Vec::new();
        if let Some((checkpoint, _)) = &self.checkpoint {
            // The block that may hold `after` (the last whose first key is not above it).
            let start = after.map_or(0, |a| {
                checkpoint
                    .blocks
                    .partition_point(|b| b.first_key.as_slice() <= a)
                    .saturating_sub(1)
            });
            let mut failure = None;
            for block in &checkpoint.blocks[start..] {
                if old.len() >= limit {
                    break;
                }
                match checkpoint::read_block(fs, self.id, checkpoint, block)? {
                    Ok(entries) => old.extend(entries.into_iter().filter(|(k, _)| past(k))),
                    Err(damage) => failure = Some(damage),
                }
            }
            if let Some(damage) = failure {
                self.damaged(damage)?;
            }
        }
        let mut delta = self
            .delta
            .iter()
            .filter(|(k, _)| past(k))
            .map(|(k, e)| (k.clone(), *e))
            .take(limit)
            .peekable();
        let mut old = old.into_iter().peekable();
        let mut out = Vec::with_capacity(limit.min(4096));
        while out.len() < limit {
            let order = match (old.peek(), delta.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            if order == std::cmp::Ordering::Equal {
                old.next();
            }
            let next = if order == std::cmp::Ordering::Less {
                old.next()
            } else {
                delta.next()
            };
            out.extend(next);
        }
        Ok(out)
    }

    /// Replaces every segment with `merged` (a compaction's output, durable, sealed so
    /// that the next run goes to a new segment) and the index with `checkpoint`, which
    /// covers all of it. The old segments and checkpoint go once a MANIFEST without them
    /// is durable. The caller (the partition's one committer) wrote nothing else since
    /// it read the entries it merged.
    pub fn install_compaction(&mut self, merged: SegmentState, checkpoint: Checkpoint) {
        assert!(merged.sealed, "a compaction's output takes no runs");
        assert!(
            self.segments.iter().all(|s| s.number < merged.number),
            "the output is numbered after every segment it replaces"
        );
        assert!(
            checkpoint.number >= self.next_checkpoint_number(),
            "a checkpoint number is never reused"
        );
        self.retired.extend(self.segments.iter().map(|s| s.number));
        self.segments = vec![merged];
        if let Some((old, _)) = self
            .checkpoint
            .replace((checkpoint, (merged.number, merged.len)))
        {
            self.superseded.push(old.number);
        }
        self.delta.clear();
        self.delta_bytes = 0;
        self.generation += 1;
        self.compacted_kib = u32::try_from(merged.len.div_ceil(1024)).unwrap_or(u32::MAX);
    }

    /// Takes the segments a compaction replaced (a durable MANIFEST no longer lists
    /// them, so they can go).
    pub fn take_retired(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.retired)
    }

    /// Puts back segments taken by [`Partition::take_retired`] whose MANIFEST failed.
    pub fn give_back_retired(&mut self, numbers: Vec<u32>) {
        self.retired.extend(numbers);
    }

    /// The segment numbered `number`.
    pub fn segment(&self, number: u32) -> Option<&SegmentState> {
        self.segments
            .binary_search_by_key(&number, |s| s.number)
            .ok()
            .map(|at| &self.segments[at])
    }
}

/// Why a merge stopped early.
enum MergeFailure {
    Io(Error),
    Damage(Damage),
}

/// The old checkpoint's entries merged with the delta's, in key order, the delta's winning.
struct Merge<'a, F: Fs> {
    fs: &'a F,
    partition: u32,
    old: Option<&'a Checkpoint>,
    next_block: usize,
    block: std::vec::IntoIter<(Vec<u8>, KeyEntry)>,
    old_head: Option<(Vec<u8>, KeyEntry)>,
    delta: std::iter::Peekable<std::collections::btree_map::Iter<'a, Vec<u8>, KeyEntry>>,
    failure: Option<MergeFailure>,
}

impl<F: Fs> Merge<'_, F> {
    /// The next entry of the old checkpoint, reading its next block when needed.
    fn next_old(&mut self) -> Option<(Vec<u8>, KeyEntry)> {
        loop {
            if let Some(entry) = self.block.next() {
                return Some(entry);
            }
            let old = self.old?;
            let block = old.blocks.get(self.next_block)?;
            self.next_block += 1;
            match checkpoint::read_block(self.fs, self.partition, old, block) {
                Ok(Ok(entries)) => self.block = entries.into_iter(),
                Ok(Err(damage)) => {
                    self.failure.get_or_insert(MergeFailure::Damage(damage));
                }
                Err(e) => {
                    self.failure = Some(MergeFailure::Io(e));
                    return None;
                }
            }
        }
    }
}

impl<F: Fs> Iterator for Merge<'_, F> {
    type Item = (Vec<u8>, KeyEntry);

    fn next(&mut self) -> Option<Self::Item> {
        if matches!(self.failure, Some(MergeFailure::Io(_))) {
            return None;
        }
        if self.old_head.is_none() {
            self.old_head = self.next_old();
        }
        let order = match (&self.old_head, self.delta.peek()) {
            (None, None) => return None,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some((old, _)), Some((new, _))) => old.cmp(new),
        };
        if order == std::cmp::Ordering::Equal {
            // The delta's entry replaces the checkpoint's.
            self.old_head = None;
        }
        let take_delta = order != std::cmp::Ordering::Less;
        if take_delta {
            self.delta.next().map(|(k, e)| (k.clone(), *e))
        } else {
            self.old_head.take()
        }
    }
}
