//! Reading a key: walk back from its newest group along the groups' links, only as far as
//! the records asked for, reading each group whole (a compacted key's groups a region at a
//! time, see [`super::regions`]) and checking its header and its records.

use super::regions::Regions;
use super::segment::{self, GroupRef, RecordPlace};
use super::{partition_for, segment_path, KeyEntry, KeyStore};
use crate::error::{IoContext, Result};
use crate::format::BadReason;
use crate::fs::Fs;
use crate::records::Records;

/// A key's records as the key store holds them, and what it holds of the key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyRead {
    /// The records asked for, in seq order.
    pub records: Records,
    /// The highest seq applied to the key (deletes and truncates included); a pending
    /// operation at or below it is already in the key store.
    pub last_seq: u64,
}

/// Which records a walk wants.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Every record with a seq above this.
    After(u64),
    /// The last this many records.
    Last(usize),
}

/// Damage a walk met: file, offset, what.
type Met = (std::path::PathBuf, u64, BadReason);

impl KeyStore {
    /// The first `limit` of `key`'s records whose seq is above `after`, in seq order. Reads
    /// the groups holding records above `after`, and no others.
    pub fn read<F: Fs>(&self, fs: &F, key: &[u8], after: u64, limit: usize) -> Result<KeyRead> {
        self.settled(
            key,
            |entry| {
                let (mut records, met) = self.walk(fs, key, entry, Want::After(after))?;
                records.truncate(limit);
                Ok((records, met))
            },
            fs,
        )
    }

    /// The last `count` of `key`'s records, in seq order. Reads only the newest groups.
    pub fn tail<F: Fs>(&self, fs: &F, key: &[u8], count: usize) -> Result<KeyRead> {
        self.settled(
            key,
            |entry| {
                if count == 0 {
                    return Ok((Records::default(), Vec::new()));
                }
                let (mut records, met) = self.walk(fs, key, entry, Want::Last(count))?;
                records.keep_last(count);
                Ok((records, met))
            },
            fs,
        )
    }

    /// Runs `walk` on `key`'s entry until no compaction moved the key's groups under it:
    /// a walk that met a missing segment, damage or an I/O error while the partition's
    /// generation changed is tried again (the files it followed were replaced). Damage
    /// met by a settled walk is reported: refused under `Strict`, counted otherwise.
    fn settled<F: Fs>(
        &self,
        key: &[u8],
        walk: impl Fn(&KeyEntry) -> Result<(Records, Vec<Met>)>,
        fs: &F,
    ) -> Result<KeyRead> {
        let partition = partition_for(key, self.partitions());
        loop {
            let generation = self.partition(partition).generation();
            let attempt = match self.entry(fs, key) {
                Ok(None) => return Ok(KeyRead::default()),
                Ok(Some(entry)) => walk(&entry).map(|(records, met)| (entry, records, met)),
                Err(e) => Err(e),
            };
            let moved = self.partition(partition).generation() != generation;
            match attempt {
                Ok((entry, records, met)) if met.is_empty() || !moved => {
                    for (path, offset, reason) in met {
                        self.damage(&path, offset, reason)?;
                    }
                    return Ok(KeyRead {
                        records,
                        last_seq: entry.last_seq,
                    });
                }
                Err(e) if !moved => return Err(e),
                _ => continue,
            }
        }
    }

    /// Walks `key`'s groups from the newest back, until `want` is met or the floor is
    /// reached. Each step goes to a group whose records are all older than the one before
    /// (checked), so the walk ends.
    fn walk<F: Fs>(
        &self,
        fs: &F,
        key: &[u8],
        entry: &KeyEntry,
        want: Want,
    ) -> Result<(Records, Vec<Met>)> {
        let partition = partition_for(key, self.partitions());
        let stop_below = match want {
            Want::After(after) => after.saturating_add(1).max(entry.floor),
            Want::Last(_) => entry.floor,
        };
        let mut regions = Regions::new(partition);
        let mut met: Vec<Met> = Vec::new();
        let (mut have, mut next, mut newer_than) = (0, entry.head, u64::MAX);
        while let Some(at) = next.filter(|g| g.last_seq >= stop_below) {
            let path = segment_path(partition, at.segment);
            // A tail needs only the newest records of a group: the rest are checked, not
            // copied.
            let keep_last = match want {
                Want::Last(count) => Some(count - have),
                Want::After(_) => None,
            };
            let read = match self.read_group(fs, &mut regions, key, at, newer_than, keep_last)? {
                Ok(read) => read,
                Err(reason) => {
                    met.push((path, at.offset, reason));
                    break;
                }
            };
            if let Some((offset, reason)) = read.damage {
                met.push((path.clone(), at.offset + offset as u64, reason));
            }
            newer_than = read.first_seq;
            let mut read = read;
            let below = read.spans.partition_point(|r| r.seq < stop_below);
            read.spans.drain(..below);
            have += read.spans.len();
            let done = match want {
                Want::After(_) => read.first_seq <= stop_below,
                Want::Last(count) => have >= count,
            };
            next = if done { None } else { read.prev };
            regions.keep(read.spans);
        }
        Ok((regions.into_records(), met))
    }

    /// Reads and checks one group: it must lie in the durable part of a live segment, hold
    /// `at.last_seq` as its last record, and end below `newer_than`. Returns its records
    /// (only the last `keep_last` of them, when given), where they lie in the region read.
    fn read_group<F: Fs>(
        &self,
        fs: &F,
        regions: &mut Regions,
        key: &[u8],
        at: GroupRef,
        newer_than: u64,
        keep_last: Option<usize>,
    ) -> Result<Result<GroupRead, BadReason>> {
        let partition = regions.partition();
        let in_bounds = self
            .partition(partition)
            .segment(at.segment)
            .is_some_and(|s| {
                at.offset
                    .checked_add(u64::from(at.len))
                    .is_some_and(|end| end <= s.len)
            });
        if !in_bounds || at.last_seq >= newer_than {
            return Ok(Err(BadReason::BadField));
        }
        let path = segment_path(partition, at.segment);
        // In bounds of what opening found on disk, so a failed read is an I/O error.
        let (region, from) = regions.group(fs, at).io("reading", &path)?;
        let group = match segment::decode_group_places(key, &region[from..from + at.len as usize]) {
            Ok(group) => group,
            Err(reason) => return Ok(Err(reason)),
        };
        if group.damage.is_none() && group.records.last().map(|r| r.seq) != Some(at.last_seq) {
            return Ok(Err(BadReason::BadField));
        }
        let first_seq = group.records.first().map_or(at.last_seq, |r| r.seq);
        let prev = group.prev.filter(|p| p.last_seq < first_seq);
        if group.prev.is_some() && prev.is_none() {
            return Ok(Err(BadReason::SeqNotIncreasing));
        }
        let mut spans = group.records;
        let dropped = spans.len() - keep_last.unwrap_or(usize::MAX).min(spans.len());
        spans.drain(..dropped);
        for span in &mut spans {
            span.start += from;
        }
        Ok(Ok(GroupRead {
            spans,
            first_seq,
            prev,
            damage: group.damage,
        }))
    }

    /// Damage met by a read: `Error::Corrupt` under `Strict`, else counted and skipped.
    fn damage(&self, path: &std::path::Path, offset: u64, reason: BadReason) -> Result<()> {
        let what = "a read met damage in the key store";
        super::refuse_if_strict(self.mode(), (path, offset, reason), what)?;
        self.count_damage();
        Ok(())
    }
}

/// One group as a walk reads it: where its records' payloads lie in the region read.
struct GroupRead {
    /// The records kept, in seq order, where they lie in the region.
    spans: Vec<RecordPlace>,
    first_seq: u64,
    prev: Option<GroupRef>,
    damage: Option<(usize, BadReason)>,
}
