//! The seq lease: seqs are handed out only up to a bound made durable first (in
//! `txlogs/SEQ_FLOOR`), and every recovery starts new seqs above it. So a seq once
//! returned to a caller is never returned again, even for a record a crash then lost (a
//! `None` or `Buffered` write the crash took before its fdatasync).
//!
//! Call order: [`recover`](crate::machine::recovery::recover) makes the first lease
//! durable and the queue starts with it; before each pass the writer's driver asks
//! [`SubmitQueue::lease_wanted`](crate::machine::submit_queue::SubmitQueue::lease_wanted),
//! makes that bound durable with [`reserve`], then grants it with
//! [`SubmitQueue::grant_lease`](crate::machine::submit_queue::SubmitQueue::grant_lease). A
//! request that would run past the lease waits for room, as for a full queue.

use std::path::Path;

use crate::error::Result;
use crate::fs::Fs;
use crate::machine::{SEQ_FLOOR_FILE, SEQ_FLOOR_MAGIC, SEQ_FLOOR_TMP};
use crate::seq_file;

/// The seqs a lease covers by default: extending it costs one small durable write (a
/// temporary file fdatasync'd, renamed, the directory fsync'd) per half of this many
/// seqs, and each open skips what is left of the last one.
pub const SEQ_LEASE_DEFAULT: u64 = 1 << 20;

/// How far the queue may hand out seqs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqLease {
    /// The highest seq that may be handed out: durable in `txlogs/SEQ_FLOOR`.
    pub upto: u64,
    /// Seqs each extension covers past the next seq.
    pub seqs: u64,
}

impl SeqLease {
    /// No lease: any seq may be handed out, and a crash may hand out again seqs of lost
    /// records (a queue on its own, in the machines' tests).
    pub const NONE: SeqLease = SeqLease {
        upto: u64::MAX,
        seqs: 0,
    };

    /// Whether the seqs up to `last` are leased.
    pub fn covers(&self, last: u64) -> bool {
        last <= self.upto
    }

    /// The bound to make durable before seqs from `next_seq` on are handed out, or `None`
    /// while the lease suffices: more than half of an extension left, and the largest
    /// request waiting for seqs (up to `demand`) within it.
    pub fn wanted(&self, next_seq: u64, demand: u64) -> Option<u64> {
        if *self == SeqLease::NONE {
            return None;
        }
        let low = next_seq.saturating_add(self.seqs / 2) > self.upto;
        let short = demand > self.upto;
        (low || short).then(|| (next_seq - 1).saturating_add(self.seqs).max(demand))
    }
}

/// Makes `upto` the durable bound of the lease (`txlogs/SEQ_FLOOR`, replaced whole).
pub fn reserve<F: Fs>(fs: &F, upto: u64) -> Result<()> {
    seq_file::write(
        fs,
        Path::new(SEQ_FLOOR_FILE),
        Path::new(SEQ_FLOOR_TMP),
        SEQ_FLOOR_MAGIC,
        upto,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_extended_when_half_spent_or_too_short_for_a_request() {
        let lease = SeqLease {
            upto: 100,
            seqs: 100,
        };
        assert_eq!(lease.wanted(40, 0), None, "61 seqs left of 100");
        assert_eq!(
            lease.wanted(51, 0),
            Some(150),
            "half spent: 100 past seq 50"
        );
        assert_eq!(
            lease.wanted(40, 120),
            Some(139),
            "a request needs seqs up to 120"
        );
        assert_eq!(
            lease.wanted(40, 500),
            Some(500),
            "a batch longer than an extension"
        );
        assert!(lease.covers(100) && !lease.covers(101));
        assert_eq!(SeqLease::NONE.wanted(u64::MAX, u64::MAX), None);
        assert!(SeqLease::NONE.covers(u64::MAX));
    }
}
