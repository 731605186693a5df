//! The bytes one walk of a key's groups has read: regions of segments, each read with one
//! positional read, newest first.
//!
//! A walk that steps from a group to the one lying right before it in the same segment
//! (a compacted key's groups lie back to back) reads ahead: the next region ends where
//! that group ends and is twice as long as the region before it, up to
//! [`READ_AHEAD_MAX`]. So a key read whole costs a few reads, not one per group, and a walk
//! reads at most about twice the bytes of the groups it steps through (each region is no
//! longer than all the regions before it together, plus one group).

use std::io;

use super::segment::{GroupRef, RecordPlace, SEGMENT_HEADER_LEN};
use super::segment_path;
use crate::fs::Fs;
use crate::records::Records;

/// The longest region read ahead.
pub const READ_AHEAD_MAX: u64 = 1 << 20;

/// One region of a segment, and the records a walk kept from the groups in it.
struct Region {
    segment: u32,
    start: u64,
    bytes: Vec<u8>,
    /// The records kept, a group at a time, newest first.
    groups: Vec<Vec<RecordPlace>>,
}

impl Region {
    fn holds(&self, at: &GroupRef) -> bool {
        let end = self.start + self.bytes.len() as u64;
        self.segment == at.segment
            && at.offset >= self.start
            && at.offset + u64::from(at.len) <= end
    }
}

/// What a walk has read (see the module's comment), all of it in one partition.
pub struct Regions {
    partition: u32,
    /// Newest first.
    regions: Vec<Region>,
    /// The group read last, to tell whether the next lies right before it.
    last_group: Option<GroupRef>,
}

impl Regions {
    /// Nothing read yet, of `partition`.
    pub fn new(partition: u32) -> Self {
        Regions {
            partition,
            regions: Vec::new(),
            last_group: None,
        }
    }

    /// The partition walked.
    pub fn partition(&self) -> u32 {
        self.partition
    }

    /// Makes group `at` of the partition (in bounds of its segment: checked by the caller)
    /// the one read last: from the region read last when it holds it, else by a new read.
    /// Returns the region's bytes and where the group starts in them.
    pub fn group<F: Fs>(&mut self, fs: &F, at: GroupRef) -> io::Result<(&[u8], usize)> {
        let end = at.offset + u64::from(at.len);
        let held = self.regions.last().is_some_and(|r| r.holds(&at));
        if !held {
            let adjacent = self
                .last_group
                .is_some_and(|last| last.segment == at.segment && end == last.offset);
            let len = match (adjacent, self.regions.last()) {
                (true, Some(before)) => (2 * before.bytes.len() as u64)
                    .min(READ_AHEAD_MAX)
                    .max(u64::from(at.len)),
                _ => u64::from(at.len),
            };
            let start = end
                .saturating_sub(len)
                .max(SEGMENT_HEADER_LEN as u64)
                .min(at.offset);
            let path = segment_path(self.partition, at.segment);
            let bytes = fs.read_at(&path, start, (end - start) as usize)?;
            self.regions.push(Region {
                segment: at.segment,
                start,
                bytes,
                groups: Vec::new(),
            });
        }
        self.last_group = Some(at);
        let region = self.regions.last().expect("a region holds the group");
        assert!(region.holds(&at), "the region read holds the group");
        Ok((&region.bytes, (at.offset - region.start) as usize))
    }

    /// Keeps records of the group read last (where they lie in its region), in seq order,
    /// all below those of the groups kept before.
    pub fn keep(&mut self, spans: Vec<RecordPlace>) {
        let region = self.regions.last_mut().expect("a group was read");
        region.groups.push(spans);
    }

    /// The records kept, in seq order.
    pub fn into_records(self) -> Records {
        let mut records = Records::default();
        records.reserve(
            self.regions
                .iter()
                .flat_map(|r| &r.groups)
                .map(Vec::len)
                .sum(),
        );
        for region in self.regions.into_iter().rev() {
            records.push_buffer(region.bytes, region.groups.iter().rev().flatten());
        }
        records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    const GROUP: u32 = 64 << 10;

    fn at(offset: u64) -> GroupRef {
        GroupRef {
            segment: 3,
            offset,
            len: GROUP,
            last_seq: 0,
        }
    }

    #[test]
    fn back_to_back_groups_are_read_a_growing_region_at_a_time() {
        let fs = MemFs::new();
        let path = segment_path(0, 3);
        fs.create_dir_all(path.parent().unwrap()).unwrap();
        let len = SEGMENT_HEADER_LEN as u64 + 160 * u64::from(GROUP);
        fs.put(&path, &vec![7; len as usize]).unwrap();
        let mut regions = Regions::new(0);
        for i in (0..160).rev() {
            let offset = SEGMENT_HEADER_LEN as u64 + i * u64::from(GROUP);
            let (bytes, from) = regions.group(&fs, at(offset)).unwrap();
            assert_eq!(bytes[from..from + GROUP as usize].len(), GROUP as usize);
        }
        // 64 KiB, then 128 KiB, 256 KiB, ... up to 1 MiB: 10 MiB in 14 reads, not 160.
        let lens: Vec<usize> = regions
            .regions
            .iter()
            .map(|r| r.bytes.len() >> 16)
            .collect();
        assert_eq!(lens, [vec![1, 2, 4, 8], vec![16; 9], vec![1]].concat());
        let read: usize = regions.regions.iter().map(|r| r.bytes.len()).sum();
        assert_eq!(read as u64, len - SEGMENT_HEADER_LEN as u64);
    }

    #[test]
    fn groups_apart_are_read_each_alone_and_no_further_back() {
        let fs = MemFs::new();
        let path = segment_path(0, 3);
        fs.create_dir_all(path.parent().unwrap()).unwrap();
        fs.put(&path, &vec![7; 40 * GROUP as usize]).unwrap();
        let mut regions = Regions::new(0);
        for offset in [30, 20, 10, 9, 1] {
            regions.group(&fs, at(offset * u64::from(GROUP))).unwrap();
        }
        let lens: Vec<usize> = regions
            .regions
            .iter()
            .map(|r| r.bytes.len() >> 16)
            .collect();
        // Only the step from 10 to 9 is back to back: it reads twice the region before.
        assert_eq!(lens, vec![1, 1, 1, 2, 1]);
        assert!(regions.into_records().is_empty());
    }
}
