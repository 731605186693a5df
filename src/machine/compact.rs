//! Compaction: a committer rewrites one of its partitions whole into a new segment, each
//! key's live records contiguous and in key order, drops what deletes and truncates
//! removed and tombstones nothing older can bring back, and swaps it in.
//!
//! Order of durability (every step a crash point):
//!
//! 1. The merged segment is written as compacted runs, fdatasync'd, and the partition's
//!    directory fsync'd (a new file).
//! 2. A new index checkpoint covering it is written and made durable.
//! 3. The partition's segments and index are swapped in memory ([`Partition::install_compaction`]).
//! 4. A MANIFEST listing the merged segment instead of the old ones is made durable.
//! 5. Only then are the old segments and checkpoint removed.
//!
//! A crash before step 4 leaves the old MANIFEST: opening removes the merged segment and
//! the new checkpoint as unlisted. After it, opening removes the old ones.
//!
//! The policy is here too ([`CompactPolicy`]): a partition is compacted once its bytes
//! pass both a floor and a factor of what it held right after its last compaction. A
//! partition where damage was found is never compacted: rewriting it would make the
//! damage final.
//!
//! [`Partition::install_compaction`]: crate::keystore::partition::Partition::install_compaction

use crate::error::{Error, IoContext, Result};
use crate::fs::{Fs, FsFile};
use crate::keystore::checkpoint::{checkpoint_path, CheckpointWriter};
use crate::keystore::segment::{
    self, GroupForm, GroupRef, RunEntry, GROUP_BYTES_TARGET, SEGMENT_HEADER_LEN,
};
use crate::keystore::{
    committer_for_partition, create_segment, partition_dir, segment_path, KeyEntry, KeyStore,
    SegmentState,
};
use crate::records::Records;

use super::commit::Committer;

/// Entries a compaction takes from the index at a time (it holds the partition's lock
/// only for that long).
const SCAN_BATCH: usize = 1024;
/// A compacted run is closed once its groups hold this many bytes (a key's records are
/// never split over two runs).
const COMPACTED_RUN_BYTES: usize = 1 << 20;

/// When a partition is due for compaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactPolicy {
    /// Never below this many bytes in the partition's segments.
    pub min_bytes: u64,
    /// Once the partition holds this percentage of what it held right after its last
    /// compaction (at least 110).
    pub space_percent: u32,
    /// Retention: a compaction keeps at most this many of each key's newest records
    /// (at least 1; `u64::MAX`: all), moving the key's floor as a truncate does.
    pub retain_records: u64,
    /// Retention by size: a compaction keeps each key's newest records whose payloads
    /// add up to at most this many bytes, and always the newest one (`u64::MAX`: all).
    /// With `retain_records` too, the fewer of the two is kept.
    pub retain_bytes: u64,
}

/// How many of a key's newest records retention keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retained {
    /// At most this many records (at least 1 is kept).
    pub records: u64,
    /// At most the newest records whose payloads add up to this many bytes, but the
    /// newest one always.
    pub bytes: u64,
}

impl Retained {
    /// How many of the records whose payload lengths are `payload_lens` (oldest first)
    /// are kept: the newest ones, within both bounds, and at least one if there is any.
    pub fn kept(
        &self,
        payload_lens: impl DoubleEndedIterator<Item = usize> + ExactSizeIterator,
    ) -> usize {
        let len = payload_lens.len();
        let by_records = usize::try_from(self.records.max(1)).unwrap_or(usize::MAX);
        let mut bytes = 0u64;
        let by_bytes = payload_lens
            .rev()
            .take_while(|&payload| {
                bytes = bytes.saturating_add(payload as u64);
                bytes <= self.bytes
            })
            .count()
            .max(1);
        let kept = len.min(by_records).min(by_bytes);
        assert!(
            kept <= len && (len == 0 || kept >= 1),
            "retention keeps the newest"
        );
        kept
    }
}

impl CompactPolicy {
    /// What retention keeps of each key.
    pub fn retained(&self) -> Retained {
        Retained {
            records: self.retain_records,
            bytes: self.retain_bytes,
        }
    }

    /// Never compacts.
    pub const NEVER: CompactPolicy = CompactPolicy {
        min_bytes: u64::MAX,
        space_percent: 200,
        retain_records: u64::MAX,
        retain_bytes: u64::MAX,
    };

    /// Whether a partition holding `bytes`, which held `compacted_bytes` right after its
    /// last compaction (0: never, or not known), is due. A committer with work waiting
    /// (`busy`) compacts only past a quarter more, so that compaction takes its idle
    /// time first but the space stays bounded under a load that leaves it none.
    pub fn due(&self, bytes: u64, compacted_bytes: u64, busy: bool) -> bool {
        assert!(self.space_percent >= 110, "validated options");
        let percent = u64::from(self.space_percent);
        let percent = if busy { percent + percent / 4 } else { percent };
        let grown = compacted_bytes.saturating_mul(percent) / 100;
        let floor = if busy {
            self.min_bytes.saturating_add(self.min_bytes / 4)
        } else {
            self.min_bytes
        };
        bytes >= floor.max(grown)
    }
}

/// Keys and their entries, in key order.
type Entries = Vec<(Vec<u8>, KeyEntry)>;

/// A compaction met damage (skipped under a lenient mode) and stopped.
struct MetDamage;

/// What one compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactOutcome {
    /// The partition compacted.
    pub partition: u32,
    /// Bytes its segments held before.
    pub bytes_before: u64,
    /// Bytes of the merged segment.
    pub bytes_after: u64,
    /// Bytes written: the merged segment and the checkpoint.
    pub bytes_written: u64,
    /// Keys whose records it kept, and tombstones it kept.
    pub keys: u64,
    /// Records it kept.
    pub records: u64,
    /// Records retention dropped.
    pub retained_out: u64,
}

/// The merged segment being written: its file, how far it is, and the keys of the run
/// being built (a run is laid out only when it closes: its index comes before its groups).
struct MergedSegment<File> {
    number: u32,
    path: std::path::PathBuf,
    file: File,
    len: u64,
    /// Keys of the open run, in key order: each one's entry and live records.
    pending: Vec<PendingKey>,
    pending_bytes: usize,
}

impl<F: Fs> Committer<F> {
    /// The same committer, compacting under `policy` (a new one never compacts).
    pub fn with_compaction(mut self, policy: CompactPolicy) -> Self {
        self.compaction = policy;
        self
    }

    /// Between passes: compacts the partition of this committer's that its policy says
    /// is due, if any (see [`Committer::compact`]); `busy` when work waits for it.
    pub fn compact_due(
        &mut self,
        fs: &F,
        store: &KeyStore,
        busy: bool,
    ) -> Result<Option<CompactOutcome>> {
        let policy = self.compaction;
        match self.partition_due(store, &policy, busy) {
            Some(partition) => self.compact(fs, store, partition),
            None => Ok(None),
        }
    }

    /// The partition of this committer's that is due for compaction under `policy`, if
    /// any: the one that grew most past its baseline. A partition with damage found in
    /// it, or with no bytes past its header, is never due.
    pub fn partition_due(
        &self,
        store: &KeyStore,
        policy: &CompactPolicy,
        busy: bool,
    ) -> Option<u32> {
        let mut best: Option<(u64, u32)> = None;
        for partition in self.own_partitions(store) {
            let part = store.partition(partition);
            if part.damage_found {
                continue;
            }
            let bytes: u64 = part.segments.iter().map(|s| s.len).sum();
            let baseline = u64::from(part.compacted_kib) * 1024;
            if policy.due(bytes, baseline, busy) && best.is_none_or(|(b, _)| bytes > b) {
                best = Some((bytes, partition));
            }
        }
        best.map(|(_, partition)| partition)
    }

    /// This committer's partitions.
    fn own_partitions(&self, store: &KeyStore) -> impl Iterator<Item = u32> + '_ {
        let committers = self.committers();
        let id = self.id();
        (0..store.partitions()).filter(move |&p| committer_for_partition(p, committers) == id)
    }

    /// Compacts `partition` (one of this committer's) whole, then makes a MANIFEST that
    /// lists the result durable and removes what it replaced (see the module doc).
    /// Between passes only: no run of this committer's is in flight. Damage met on the
    /// way stops it and leaves the partition as it is, never to be compacted again in
    /// this process (`None`); any other failure spends the committer, as a failed pass
    /// does.
    pub fn compact(
        &mut self,
        fs: &F,
        store: &KeyStore,
        partition: u32,
    ) -> Result<Option<CompactOutcome>> {
        self.check_usable()?;
        assert_eq!(
            committer_for_partition(partition, self.committers()),
            self.id(),
            "a committer compacts only its own partitions"
        );
        let (number, checkpoint_number) = {
            let part = store.partition(partition);
            let last = part.segments.last().map_or(0, |s| s.number + 1);
            (last, part.next_checkpoint_number())
        };
        match self.compact_inner(fs, store, partition, (number, checkpoint_number)) {
            Ok(Ok(outcome)) => Ok(Some(outcome)),
            Ok(Err(MetDamage)) | Err(Error::Corrupt { .. }) => {
                store.partition(partition).damage_found = true;
                // Unlisted and unnamed: nothing refers to them.
                for path in [
                    segment_path(partition, number),
                    checkpoint_path(partition, checkpoint_number),
                ] {
                    if let Err(e) = fs.remove(&path).io("removing", &path) {
                        self.spend(&e);
                        return Err(e);
                    }
                }
                Ok(None)
            }
            Err(e) => {
                self.spend(&e);
                Err(e)
            }
        }
    }

    /// Merges `partition` into segment `number` with checkpoint `checkpoint_number`.
    fn compact_inner(
        &mut self,
        fs: &F,
        store: &KeyStore,
        partition: u32,
        (number, checkpoint_number): (u32, u32),
    ) -> Result<Result<CompactOutcome, MetDamage>> {
        let damage_before = store.damage_skipped();
        let bytes_before: u64 = store
            .partition(partition)
            .segments
            .iter()
            .map(|s| s.len)
            .sum();
        let mut merged = MergedSegment::create(fs, partition, number)?;
        let mut checkpoint = CheckpointWriter::new(fs, partition, checkpoint_number)?;
        let mut outcome = CompactOutcome {
            partition,
            bytes_before,
            ..CompactOutcome::default()
        };
        let watermark = store.watermark();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let batch =
                store
                    .partition(partition)
                    .entries_after(fs, after.as_deref(), SCAN_BATCH)?;
            let Some((last, _)) = batch.last() else {
                break;
            };
            after = Some(last.clone());
            for item in batch {
                let limits = (watermark, self.compaction.retained());
                for (key, kept) in merged.take_key(fs, store, item, limits, &mut outcome)? {
                    checkpoint.push(&key, &kept)?;
                }
            }
        }
        // Damage met on the way would be made final by removing the old segments.
        if store.damage_skipped() != damage_before {
            return Ok(Err(MetDamage));
        }
        let (state, kept) = merged.finish(fs, partition)?;
        for (key, kept) in kept {
            checkpoint.push(&key, &kept)?;
        }
        let checkpoint = checkpoint.finish(fs)?;
        outcome.bytes_after = state.len;
        outcome.bytes_written = state.len + checkpoint.file_len;
        self.forget_open_segment(partition);
        store
            .partition(partition)
            .install_compaction(state, checkpoint);
        store.write_manifest(fs, store.watermark())?;
        Ok(Ok(outcome))
    }
}

impl<File: FsFile> MergedSegment<File> {
    /// Creates segment `number` of `partition` with its header.
    fn create<F: Fs<File = File>>(fs: &F, partition: u32, number: u32) -> Result<Self> {
        let path = segment_path(partition, number);
        let file = create_segment(fs, partition, number)?;
        Ok(MergedSegment {
            number,
            path,
            file,
            len: SEGMENT_HEADER_LEN as u64,
            pending: Vec::new(),
            pending_bytes: 0,
        })
    }

    /// Takes `key`'s live records into the run being built, and closes the run once it
    /// is large enough; returns the entries of the keys of a closed run (for the new
    /// checkpoint). Nothing of a key is kept when it holds no records and its last
    /// operation is at or below the watermark: no replay can bring anything older back.
    fn take_key<F: Fs>(
        &mut self,
        fs: &F,
        store: &KeyStore,
        (key, entry): (Vec<u8>, KeyEntry),
        (watermark, retained): (u64, Retained),
        outcome: &mut CompactOutcome,
    ) -> Result<Entries> {
        // One key's live records are held at a time, whole.
        let mut records = if entry.has_records() {
            store
                .read(fs, &key, entry.floor.saturating_sub(1), usize::MAX)?
                .records
        } else {
            Records::default()
        };
        // Retention moves the floor to the oldest record kept, as a truncate would.
        let mut entry = entry;
        let kept = retained.kept(records.iter().map(|r| r.payload.len()));
        let over = records.len() - kept;
        if over > 0 {
            records.keep_last(kept);
            let oldest = records.first().expect("retention keeps the newest");
            entry.floor = entry.floor.max(oldest.seq.0);
            outcome.retained_out += over as u64;
        }
        if records.is_empty() && entry.last_seq <= watermark {
            return Ok(Vec::new());
        }
        outcome.keys += 1;
        outcome.records += records.len() as u64;
        self.pending_bytes += records
            .iter()
            .map(|r| r.payload.len() + segment::RECORD_HEADER_LEN)
            .sum::<usize>()
            + key.len();
        self.pending.push((key, entry, records));
        if self.pending_bytes >= COMPACTED_RUN_BYTES {
            return self.close_run();
        }
        Ok(Vec::new())
    }

    /// Lays out and appends the open run (compacted: groups in key order), and returns
    /// each of its keys' entries, their heads in this segment.
    fn close_run(&mut self) -> Result<Entries> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let records_of: Vec<Vec<Pair<'_>>> = pending
            .iter()
            .map(|(_, _, records)| records.iter().map(|r| (r.seq.0, r.payload)).collect())
            .collect();
        let groups_of: Vec<Vec<&[Pair<'_>]>> = records_of
            .iter()
            .map(|records| split_groups(records))
            .collect();
        // Entries first: a group's length follows from its payloads.
        let entries = run_entries(&pending, &groups_of);
        let (mut bytes, header) = segment::encode_run_start(&entries, true);
        let mut kept = Vec::with_capacity(pending.len());
        for ((key, entry, _), groups) in pending.iter().zip(&groups_of) {
            let mut head: Option<GroupRef> = None;
            for &group in groups {
                let offset = self.len + bytes.len() as u64;
                let at = bytes.len();
                segment::encode_group(&mut bytes, key, head, group, GroupForm::Sealed);
                head = Some(GroupRef {
                    segment: self.number,
                    offset,
                    len: (bytes.len() - at) as u32,
                    last_seq: group[group.len() - 1].0,
                });
            }
            kept.push((
                key.clone(),
                KeyEntry {
                    head,
                    last_seq: entry.last_seq,
                    floor: entry.floor,
                },
            ));
        }
        assert_eq!(
            bytes.len() as u64,
            header.run_len,
            "the run fills its length"
        );
        self.file.append(&bytes).io("writing", &self.path)?;
        self.len += header.run_len;
        Ok(kept)
    }
}

impl<File: FsFile> MergedSegment<File> {
    /// Closes the last run, makes the segment durable (file, then the directory entry)
    /// and returns it, sealed, with the entries of the last run's keys.
    fn finish<F: Fs<File = File>>(
        mut self,
        fs: &F,
        partition: u32,
    ) -> Result<(SegmentState, Entries)> {
        let kept = self.close_run()?;
        self.file.sync_data().io("syncing", &self.path)?;
        let dir = partition_dir(partition);
        fs.sync_dir(&dir).io("fsyncing", &dir)?;
        let state = SegmentState {
            number: self.number,
            len: self.len,
            sealed: true,
        };
        Ok((state, kept))
    }
}

/// The run index entries of `pending` keys cut into `groups_of`: one per group, or one
/// alone for a key that keeps no record (its floor and last seq).
fn run_entries(pending: &[PendingKey], groups_of: &[Vec<&[Pair<'_>]>]) -> Vec<RunEntry> {
    pending
        .iter()
        .zip(groups_of)
        .flat_map(|((key, entry, _), groups)| {
            let what = (entry.last_seq, entry.floor);
            segment::key_entries(key, groups.iter().copied(), GroupForm::Sealed, what)
        })
        .collect()
}

/// A key taken into the run being built: its entry and live records.
type PendingKey = (Vec<u8>, KeyEntry, Records);

/// A record as compaction lays it out: its seq and payload.
type Pair<'p> = (u64, &'p [u8]);

/// A key's records cut into groups of about [`GROUP_BYTES_TARGET`], in seq order.
fn split_groups<'r, 'p>(records: &'r [Pair<'p>]) -> Vec<&'r [Pair<'p>]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        if i > start && bytes >= GROUP_BYTES_TARGET {
            groups.push(&records[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += record.1.len() + segment::RECORD_HEADER_LEN;
    }
    if start < records.len() {
        groups.push(&records[start..]);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{truncate_payload, Kind};
    use crate::fs::MemFs;
    use crate::keystore::OpenMode;
    use crate::machine::commit::{CommitRecord, CommitWork};

    fn rec(seq: u64, kind: Kind, key: &str, payload: Vec<u8>) -> CommitRecord {
        CommitRecord {
            seq,
            kind,
            key: key.as_bytes().to_vec(),
            payload,
        }
    }

    /// One committer pass over `records`, as log `log`.
    fn one_pass(
        committer: &mut Committer<MemFs>,
        fs: &MemFs,
        store: &KeyStore,
        log: u64,
        records: Vec<CommitRecord>,
    ) {
        let work = [CommitWork {
            log: crate::machine::LogId::at(log),
            records,
        }];
        committer.commit(fs, store, &work).unwrap();
    }

    /// Everything every key reads.
    fn all_reads(fs: &MemFs, store: &KeyStore) -> Vec<(Vec<u8>, Vec<crate::Record>)> {
        (0..20)
            .map(|k| format!("key-{k:02}").into_bytes())
            .map(|key| {
                let records = store
                    .read(fs, &key, 0, usize::MAX)
                    .unwrap()
                    .records
                    .into_vec();
                (key, records)
            })
            .collect()
    }

    /// Appends, deletes and truncates over 20 keys, then a compaction: every key reads the
    /// same, the partition is one segment whose keys' records are contiguous, the old
    /// files are gone, and a reopen reads the same again with no run to index.
    #[test]
    fn a_compaction_keeps_every_live_record_and_drops_the_rest() {
        let fs = MemFs::new();
        let (store, _) = KeyStore::open(&fs, OpenMode::new_store(1)).unwrap();
        let mut committer = Committer::new(0, 1, 8 << 10, u64::MAX);
        let mut seq = 0;
        for pass in 0..60u64 {
            let records: Vec<CommitRecord> = (0..10u64)
                .map(|i| {
                    seq += 1;
                    let key = format!("key-{:02}", (pass * 7 + i * 3) % 20);
                    match (pass + i) % 23 {
                        0 => rec(seq, Kind::Delete, &key, Vec::new()),
                        5 => rec(
                            seq,
                            Kind::Truncate,
                            &key,
                            truncate_payload(seq.saturating_sub(40)),
                        ),
                        _ => rec(seq, Kind::Append, &key, vec![pass as u8; 100]),
                    }
                })
                .collect();
            one_pass(&mut committer, &fs, &store, pass, records);
            store.write_manifest(&fs, seq).unwrap();
        }
        let before = all_reads(&fs, &store);
        let (segments, bytes) = store.segments_and_bytes();
        assert!(segments > 3, "{segments} segments");
        let policy = CompactPolicy {
            min_bytes: 1,
            space_percent: 200,
            retain_records: u64::MAX,
            retain_bytes: u64::MAX,
        };
        assert_eq!(committer.partition_due(&store, &policy, false), Some(0));
        let outcome = committer.compact(&fs, &store, 0).unwrap().unwrap();
        assert_eq!(outcome.bytes_before, bytes);
        assert!(outcome.bytes_after < bytes / 2, "{outcome:?}");
        assert_eq!(all_reads(&fs, &store), before);
        assert_eq!(store.segments_and_bytes(), (1, outcome.bytes_after));
        let files = fs.list(&partition_dir(0)).unwrap();
        assert_eq!(files.len(), 2, "one segment, one checkpoint: {files:?}");
        assert_eq!(
            committer.partition_due(&store, &policy, false),
            None,
            "not due again until it grows"
        );
        // Appends after it go to a new segment; a reopen reads only those runs.
        seq += 1;
        let late = vec![rec(seq, Kind::Append, "key-03", b"late".to_vec())];
        one_pass(&mut committer, &fs, &store, 1_000, late);
        store.write_manifest(&fs, seq).unwrap();
        let expected = all_reads(&fs, &store);
        let (reopened, report) = KeyStore::open(&fs, OpenMode::new_store(1)).unwrap();
        assert_eq!(report.runs, 1, "{report:?}");
        assert_eq!(all_reads(&fs, &reopened), expected);
        assert_eq!(
            reopened.partition(0).compacted_kib as u64,
            outcome.bytes_after.div_ceil(1024)
        );
    }

    /// The groups of `key` from its head back, as (segment, offset, len).
    fn group_chain(fs: &MemFs, store: &KeyStore, key: &[u8]) -> Vec<(u32, u64, u32)> {
        let mut chain = Vec::new();
        let mut next = store.entry(fs, key).unwrap().and_then(|e| e.head);
        while let Some(at) = next {
            chain.push((at.segment, at.offset, at.len));
            let path = segment_path(0, at.segment);
            let bytes = fs.read_at(&path, at.offset, at.len as usize).unwrap();
            next = segment::decode_group(key, &bytes).unwrap().prev;
        }
        chain
    }

    /// A key whose records were spread over many runs, among other keys' records, is one
    /// contiguous region after a compaction: its groups back to back, oldest first.
    #[test]
    fn after_a_compaction_a_key_is_one_contiguous_region() {
        let fs = MemFs::new();
        let (store, _) = KeyStore::open(&fs, OpenMode::new_store(1)).unwrap();
        let mut committer = Committer::new(0, 1, 1 << 20, u64::MAX);
        let mut seq = 0;
        for pass in 0..200u64 {
            let records = ["long", "a", "b"]
                .iter()
                .map(|key| {
                    seq += 1;
                    rec(seq, Kind::Append, key, vec![7; 1000])
                })
                .collect();
            one_pass(&mut committer, &fs, &store, pass, records);
        }
        store.write_manifest(&fs, seq).unwrap();
        assert_eq!(
            group_chain(&fs, &store, b"long").len(),
            200,
            "one group a pass"
        );
        let before = store.read(&fs, b"long", 0, usize::MAX).unwrap();
        committer.compact(&fs, &store, 0).unwrap().unwrap();
        let mut chain = group_chain(&fs, &store, b"long");
        chain.reverse();
        assert!(
            chain.len() >= 3,
            "200 KB in groups of about 64 KiB: {chain:?}"
        );
        for pair in chain.windows(2) {
            assert_eq!(pair[0].0, pair[1].0, "one segment");
            assert_eq!(pair[0].1 + u64::from(pair[0].2), pair[1].1, "back to back");
        }
        assert_eq!(store.read(&fs, b"long", 0, usize::MAX).unwrap(), before);
    }

    #[test]
    fn retention_keeps_the_newest_records_within_both_bounds_and_always_one() {
        let retained = |records, bytes| Retained { records, bytes };
        let lens = [10usize, 20, 30, 40];
        let kept = |r: Retained| r.kept(lens.iter().copied());
        assert_eq!(kept(retained(u64::MAX, u64::MAX)), 4);
        assert_eq!(kept(retained(2, u64::MAX)), 2);
        assert_eq!(kept(retained(u64::MAX, 70)), 2, "40 + 30 fit in 70");
        assert_eq!(kept(retained(u64::MAX, 69)), 1, "40 alone");
        assert_eq!(
            kept(retained(u64::MAX, 5)),
            1,
            "the newest even over the bound"
        );
        assert_eq!(kept(retained(1, 1000)), 1, "the fewer of the two");
        assert_eq!(kept(retained(3, 100)), 3);
        assert_eq!(retained(5, 5).kept(std::iter::empty()), 0);
    }

    /// Retention: a compaction keeps each key's newest records only, moving its floor,
    /// which a reopen keeps; a replay of the dropped records changes nothing.
    #[test]
    fn retention_keeps_each_keys_newest_records_through_a_reopen() {
        let fs = MemFs::new();
        let (store, _) = KeyStore::open(&fs, OpenMode::new_store(1)).unwrap();
        let policy = CompactPolicy {
            min_bytes: 1,
            space_percent: 110,
            retain_records: 10,
            retain_bytes: u64::MAX,
        };
        let mut committer = Committer::new(0, 1, 1 << 20, u64::MAX).with_compaction(policy);
        let work: Vec<CommitWork> = (1..=50u64)
            .map(|seq| CommitWork {
                log: crate::machine::LogId::at(seq),
                records: vec![
                    rec(seq * 2 - 1, Kind::Append, "long", vec![1; 10]),
                    rec(seq * 2, Kind::Append, &format!("short-{seq}"), vec![2; 10]),
                ],
            })
            .collect();
        committer.commit(&fs, &store, &work).unwrap();
        store.write_manifest(&fs, 100).unwrap();
        let done = committer.compact_due(&fs, &store, false).unwrap().unwrap();
        assert_eq!(done.retained_out, 40);
        let seqs = |store: &KeyStore, key: &[u8]| -> Vec<u64> {
            let read = store.read(&fs, key, 0, usize::MAX).unwrap();
            read.records.iter().map(|r| r.seq.0).collect()
        };
        let kept: Vec<u64> = (41..=50).map(|s| s * 2 - 1).collect();
        assert_eq!(seqs(&store, b"long"), kept);
        assert_eq!(seqs(&store, b"short-7"), vec![14], "a short key keeps all");
        let (reopened, _) = KeyStore::open(&fs, OpenMode::new_store(1)).unwrap();
        assert_eq!(seqs(&reopened, b"long"), kept);
        // The dropped records, replayed: skipped (they are below what the key holds).
        let mut committer = Committer::new(0, 1, 1 << 20, u64::MAX);
        let outcome = committer.commit(&fs, &reopened, &work[..5]).unwrap();
        assert_eq!((outcome.applied, outcome.skipped), (0, 10));
        assert_eq!(seqs(&reopened, b"long"), kept);
    }

    /// Retention by size: a compaction keeps the newest records whose payloads fit.
    #[test]
    fn retention_by_bytes_keeps_the_newest_payloads_that_fit() {
        let fs = MemFs::new();
        let (store, _) = KeyStore::open(&fs, OpenMode::new_store(1)).unwrap();
        let policy = CompactPolicy {
            min_bytes: 1,
            space_percent: 110,
            retain_records: u64::MAX,
            retain_bytes: 35,
        };
        let mut committer = Committer::new(0, 1, 1 << 20, u64::MAX).with_compaction(policy);
        let work: Vec<CommitWork> = (1..=20u64)
            .map(|seq| CommitWork {
                log: crate::machine::LogId::at(seq),
                records: vec![
                    rec(seq * 2 - 1, Kind::Append, "small", vec![1; 10]),
                    rec(seq * 2, Kind::Append, "huge", vec![2; 100]),
                ],
            })
            .collect();
        committer.commit(&fs, &store, &work).unwrap();
        store.write_manifest(&fs, 40).unwrap();
        let done = committer.compact_due(&fs, &store, false).unwrap().unwrap();
        assert_eq!(done.retained_out, 17 + 19);
        let seqs = |key: &[u8]| -> Vec<u64> {
            let read = store.read(&fs, key, 0, usize::MAX).unwrap();
            read.records.iter().map(|r| r.seq.0).collect()
        };
        assert_eq!(
            seqs(b"small"),
            vec![35, 37, 39],
            "three of 10 bytes fit in 35"
        );
        assert_eq!(seqs(b"huge"), vec![40], "the newest, though over the bound");
    }
}
