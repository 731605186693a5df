//! The submit queue between callers and the writer: it assigns seqs in queue order (so
//! queue order is log order), only within the durable [`SeqLease`], and bounds the bytes
//! waiting.

use std::collections::VecDeque;

use crate::format::{self, Kind};
use crate::index::PendingIndex;
use crate::machine::seq_lease::SeqLease;
use crate::options::Durability;

/// One record of a request, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Append, delete or truncate.
    pub kind: Kind,
    /// The key, never empty (checked by the caller before it is queued).
    pub key: Vec<u8>,
    /// The payload; empty for a delete.
    pub payload: Vec<u8>,
}

impl LogRecord {
    /// The record's encoded length in the log.
    pub fn encoded_len(&self) -> usize {
        format::block_len(self.key.len(), self.payload.len())
    }
}

/// The seqs a request was given: `first..=last`, consecutive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqRange {
    /// The first record's seq.
    pub first: u64,
    /// The last record's seq.
    pub last: u64,
}

/// One caller's request: a batch that is written whole or not at all. `T` is the
/// driver's token for the caller (a thread to wake, a simulated client's id); the
/// machine only carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<T> {
    /// Seq of `records[0]`; the others follow consecutively.
    pub first_seq: u64,
    /// The batch. Empty only for a sync barrier ([`SubmitQueue::push_sync_barrier`]).
    pub records: Vec<LogRecord>,
    /// How durable the batch must be before it is acknowledged.
    pub durability: Durability,
    /// Sum of the records' encoded lengths.
    pub encoded_len: usize,
    /// The driver's token for whoever waits on this request.
    pub token: T,
}

/// What the backlog holds now (finished logs and pending memory), as admission reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BacklogLoad {
    /// Finished logs not yet retired.
    pub logs_waiting: u64,
    /// Bytes the pending index holds.
    pub pending_bytes: u64,
}

/// The backlog's bounds (`Options::backlog_logs_max`, `Options::backlog_bytes_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BacklogBounds {
    /// At most this many finished logs wait.
    pub logs_max: u64,
    /// At most this many bytes wait in the pending index.
    pub bytes_max: u64,
}

/// Whether a request may be queued now ([`SubmitQueue::admit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// It fits: queue it.
    Admit,
    /// It must wait for room (or fail at once, if its caller asked so).
    Held(Held),
}

/// Why a request is held, and what the driver must do so that room appears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// The backlog is full (else the queue is: bytes, or seq lease).
    pub backlogged: bool,
    /// The request's seqs pass the seq lease: the writer must wake to extend it
    /// ([`SubmitQueue::lease_wanted`]).
    pub lease_short: bool,
    /// The pending memory is full: the active log must rotate once every record queued
    /// (up to this seq) is written, since its records cannot be applied (and their memory
    /// freed) before. Hand it to [`Rotation::request`](crate::machine::rotation::Rotation::request).
    pub rotate_upto: Option<u64>,
}

impl Held {
    /// Whether the writer must wake: for the lease, or for the rotation.
    pub fn wake_writer(&self) -> bool {
        self.lease_short || self.rotate_upto.is_some()
    }
}

/// The bounded queue between callers and the writer. Seqs are assigned here, in queue
/// order, so queue order is log order, and only within the [`SeqLease`].
#[derive(Debug)]
pub struct SubmitQueue<T> {
    requests: VecDeque<Request<T>>,
    bytes: usize,
    bytes_max: usize,
    next_seq: u64,
    /// Invariant: `next_seq - 1 <= lease.upto` (every seq handed out is leased).
    lease: SeqLease,
    /// The last seq the largest request refused for want of lease needs (0: none).
    lease_demand: u64,
    /// The last seq of a record queued, or, before any, of the last record recovery
    /// kept. Invariant: `last_record_seq < next_seq`.
    last_record_seq: u64,
}

impl<T> SubmitQueue<T> {
    /// An empty queue holding at most `bytes_max` encoded bytes, whose first request gets
    /// seq `next_seq`, with no lease ([`SeqLease::NONE`]; see [`Self::leased`]).
    pub fn new(next_seq: u64, bytes_max: usize) -> Self {
        assert!(next_seq >= 1, "seq 0 is never given out");
        SubmitQueue {
            requests: VecDeque::new(),
            bytes: 0,
            bytes_max,
            next_seq,
            lease: SeqLease::NONE,
            lease_demand: 0,
            last_record_seq: next_seq - 1,
        }
    }

    /// The queue of a store whose last record kept by recovery has seq `last_record_seq`
    /// (below `next_seq - 1` when recovery left seqs unused: hidden by damage, or the rest
    /// of a crashed run's lease). No record holds those, so no flush waits for them.
    pub fn resumed_after(mut self, last_record_seq: u64) -> Self {
        assert!(
            last_record_seq < self.next_seq,
            "recovery kept seqs below the next"
        );
        self.last_record_seq = last_record_seq;
        self
    }

    /// What a flush queued now waits for: every seq up to this one applied.
    pub fn flush_upto(&self) -> u64 {
        self.last_record_seq
    }

    /// The admission rule: a request of `records` records and `encoded_len` bytes is
    /// queued now if the backlog (`load`, within `bounds`) and the queue have room;
    /// otherwise it is held, with what the driver must do for room to appear.
    pub fn admit(
        &mut self,
        (records, encoded_len): (usize, usize),
        load: BacklogLoad,
        bounds: BacklogBounds,
    ) -> Admission {
        let memory_full = load.pending_bytes >= bounds.bytes_max;
        let backlogged = load.logs_waiting >= bounds.logs_max || memory_full;
        if !backlogged && self.has_room(records, encoded_len) {
            return Admission::Admit;
        }
        Admission::Held(Held {
            backlogged,
            lease_short: self.wants_lease_for(records),
            rotate_upto: memory_full.then_some(self.last_record_seq),
        })
    }

    /// The queue handing out seqs only within `lease` (durable: recovery made it so).
    pub fn leased(mut self, lease: SeqLease) -> Self {
        assert!(
            lease.covers(self.next_seq - 1),
            "the seqs handed out are leased"
        );
        self.lease = lease;
        self
    }

    /// Whether a request of `records` records and `encoded_len` bytes fits now: within the
    /// byte bound (an empty queue takes any request, so a request larger than the bound is
    /// taken alone rather than never) and within the lease.
    fn has_room(&self, records: usize, encoded_len: usize) -> bool {
        let bytes_fit =
            self.requests.is_empty() || self.bytes.saturating_add(encoded_len) <= self.bytes_max;
        bytes_fit && self.lease.covers(self.last_seq_of(records))
    }

    /// Whether a request of `records` records waits for the lease alone (then the driver
    /// must extend it: see [`Self::lease_wanted`]); notes what it needs.
    fn wants_lease_for(&mut self, records: usize) -> bool {
        let last = self.last_seq_of(records);
        let short = !self.lease.covers(last);
        if short {
            self.lease_demand = self.lease_demand.max(last);
        }
        short
    }

    /// The lease bound to make durable before more seqs go out, if the lease runs low or
    /// a waiting request needs more ([`SeqLease::wanted`]).
    pub fn lease_wanted(&self) -> Option<u64> {
        self.lease.wanted(self.next_seq, self.lease_demand)
    }

    /// The bound `upto` is durable: seqs up to it may be handed out.
    pub fn grant_lease(&mut self, upto: u64) {
        assert!(upto >= self.lease.upto, "a lease never shrinks");
        self.lease.upto = upto;
        if self.lease.covers(self.lease_demand) {
            self.lease_demand = 0;
        }
    }

    /// The lease.
    pub fn lease(&self) -> SeqLease {
        self.lease
    }

    /// At a clean close (nothing more is queued): the floor that still covers every seq
    /// handed out, so that the rest of the lease goes back and the next open continues
    /// right after the last seq; `None` without a lease. After a crash, the next open
    /// starts above the whole lease instead.
    pub fn lease_at_close(&self) -> Option<u64> {
        (self.lease != SeqLease::NONE).then(|| self.next_seq - 1)
    }

    /// The last seq a request of `records` records queued now would take.
    fn last_seq_of(&self, records: usize) -> u64 {
        (self.next_seq - 1).saturating_add(records as u64)
    }

    /// Queues a batch admitted by [`Self::admit`] and enters its records into the pending
    /// index (read-your-writes), under the same exclusion as the queue, so the index is
    /// filled in seq order.
    pub fn push_indexed(
        &mut self,
        index: &mut PendingIndex,
        records: Vec<LogRecord>,
        durability: Durability,
        token: T,
    ) -> SeqRange {
        let first = self.next_seq;
        for (i, record) in records.iter().enumerate() {
            index.insert(first + i as u64, record.kind, &record.key, &record.payload);
        }
        self.push(records, durability, token)
    }

    /// Queues a batch and gives it its seqs. The caller was admitted by [`Self::admit`]
    /// (the queue has room).
    pub fn push(&mut self, records: Vec<LogRecord>, durability: Durability, token: T) -> SeqRange {
        assert!(!records.is_empty(), "a request holds at least one record");
        let encoded_len: usize = records.iter().map(LogRecord::encoded_len).sum();
        assert!(
            self.has_room(records.len(), encoded_len),
            "push without room"
        );
        let first = self.next_seq;
        let last = first + records.len() as u64 - 1;
        assert!(self.lease.covers(last), "seqs go out only within the lease");
        self.next_seq = last + 1;
        self.last_record_seq = last;
        self.bytes += encoded_len;
        self.requests.push_back(Request {
            first_seq: first,
            records,
            durability,
            encoded_len,
            token,
        });
        SeqRange { first, last }
    }

    /// Queues a sync barrier: a request of no records, `Sync`, that takes no seq. Its pass
    /// fdatasyncs the log if it holds unsynced bytes, so once it is acknowledged every
    /// request queued before it is `Sync`-durable whatever it asked for. Returns the last
    /// seq it covers (the one given out before it).
    pub fn push_sync_barrier(&mut self, token: T) -> u64 {
        self.requests.push_back(Request {
            first_seq: self.next_seq,
            records: Vec::new(),
            durability: Durability::Sync,
            encoded_len: 0,
            token,
        });
        self.next_seq - 1
    }

    /// Takes requests from the front, at least one (when any) and no more than
    /// `pass_bytes_max` encoded bytes beyond the first.
    pub fn take_pass(&mut self, pass_bytes_max: usize) -> Vec<Request<T>> {
        let mut taken = Vec::new();
        let mut bytes = 0usize;
        while let Some(next) = self.requests.front() {
            if !taken.is_empty() && bytes + next.encoded_len > pass_bytes_max {
                break;
            }
            bytes += next.encoded_len;
            taken.extend(self.requests.pop_front());
        }
        self.bytes -= bytes;
        taken
    }

    /// Takes every request left (a poisoned or closing driver releases their callers).
    pub fn drain(&mut self) -> Vec<Request<T>> {
        self.bytes = 0;
        self.requests.drain(..).collect()
    }

    /// True when no request waits.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Encoded bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The seq the next request will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An append of `payload` to `key` (the writer's tests use it too).
    pub(crate) fn record(key: &str, payload: &str) -> LogRecord {
        LogRecord {
            kind: Kind::Append,
            key: key.as_bytes().to_vec(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_queue_assigns_consecutive_seqs_and_bounds_its_bytes() {
        let mut queue = SubmitQueue::<()>::new(1, 100);
        let a = queue.push(vec![record("k", "v"); 2], Durability::Sync, ());
        assert_eq!(a, SeqRange { first: 1, last: 2 });
        assert!(
            !queue.has_room(1, record("k", "v").encoded_len()),
            "the bound counts encoded bytes"
        );
        assert_eq!(
            queue.take_pass(1).len(),
            1,
            "a pass takes at least one request"
        );
        let b = queue.push(vec![record("k", "v")], Durability::None, ());
        assert_eq!(b.first, 3);
        let c = queue.push(vec![record("k", "v")], Durability::None, ());
        assert_eq!(c.first, 4);
        assert_eq!(queue.take_pass(1 << 20).len(), 2);
        assert!(queue.is_empty());
        assert_eq!(queue.bytes(), 0);
        assert!(queue.has_room(1, 1 << 30), "an empty queue takes anything");
    }

    #[test]
    fn the_queue_hands_out_seqs_only_within_its_lease() {
        let lease = SeqLease { upto: 4, seqs: 4 };
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20).leased(lease);
        assert_eq!(queue.lease_wanted(), None, "4 seqs leased, none out");
        queue.push(vec![record("k", "v"); 3], Durability::None, ());
        assert_eq!(queue.lease_wanted(), Some(7), "half spent: 4 past seq 3");
        assert!(!queue.has_room(2, 10), "seqs 4 and 5: past the lease");
        assert!(queue.wants_lease_for(2));
        assert!(queue.has_room(1, 10), "seq 4 is leased");
        // A batch longer than an extension: the lease grows to cover it.
        assert!(queue.wants_lease_for(9));
        assert_eq!(queue.lease_wanted(), Some(12));
        queue.grant_lease(12);
        assert!(queue.has_room(9, 10));
        assert_eq!(queue.lease_wanted(), None, "the demand is met");
        let range = queue.push(vec![record("k", "v"); 9], Durability::None, ());
        assert_eq!((range.first, range.last), (4, 12));
        assert!(!queue.has_room(1, 10), "seq 13 is not leased");
    }

    const BOUNDS: BacklogBounds = BacklogBounds {
        logs_max: 4,
        bytes_max: 1000,
    };

    #[test]
    fn admission_holds_for_the_backlog_and_asks_for_what_makes_room() {
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20).leased(SeqLease { upto: 8, seqs: 8 });
        let light = BacklogLoad {
            logs_waiting: 3,
            pending_bytes: 999,
        };
        assert_eq!(queue.admit((1, 10), light, BOUNDS), Admission::Admit);
        let logs_full = BacklogLoad {
            logs_waiting: 4,
            ..light
        };
        let held = Held {
            backlogged: true,
            lease_short: false,
            rotate_upto: None,
        };
        assert_eq!(
            queue.admit((1, 10), logs_full, BOUNDS),
            Admission::Held(held)
        );
        assert!(
            !held.wake_writer(),
            "only the committers make room for logs"
        );
        queue.push(vec![record("k", "v"); 2], Durability::None, ());
        let memory_full = BacklogLoad {
            pending_bytes: 1000,
            ..light
        };
        let held = Held {
            backlogged: true,
            lease_short: false,
            rotate_upto: Some(2),
        };
        assert_eq!(
            queue.admit((1, 10), memory_full, BOUNDS),
            Admission::Held(held),
            "full memory rotates what is queued so that it can be applied"
        );
        assert!(held.wake_writer(), "the writer rotates");
        let held = Held {
            backlogged: false,
            lease_short: true,
            rotate_upto: None,
        };
        assert_eq!(
            queue.admit((7, 10), light, BOUNDS),
            Admission::Held(held),
            "seqs 3..=9 pass the lease: the writer extends it"
        );
        assert!(held.wake_writer(), "the writer extends the lease");
        assert_eq!(
            queue.lease_wanted(),
            Some(10),
            "a lease past the seqs handed out"
        );
    }

    #[test]
    fn a_pass_takes_requests_up_to_exactly_its_bound() {
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20);
        let size = record("k", "v").encoded_len();
        for _ in 0..3 {
            queue.push(vec![record("k", "v")], Durability::None, ());
        }
        assert_eq!(
            queue.take_pass(2 * size).len(),
            2,
            "two fill the bound exactly"
        );
        assert_eq!(queue.bytes(), size, "the bytes taken leave the queue");
        assert_eq!(queue.take_pass(0).len(), 1, "a pass takes at least one");
        assert_eq!(queue.bytes(), 0);
        queue.push(vec![record("k", "v")], Durability::None, ());
        queue.push_sync_barrier(());
        assert_eq!(
            queue.drain().len(),
            2,
            "a poisoned writer releases every caller"
        );
        assert!(queue.is_empty());
        assert_eq!(queue.bytes(), 0);
    }

    #[test]
    fn push_indexed_fills_the_pending_index_in_seq_order() {
        let mut queue = SubmitQueue::<()>::new(5, 1 << 20);
        let mut index = PendingIndex::new();
        let range = queue.push_indexed(
            &mut index,
            vec![record("a", "1"), record("b", "2")],
            Durability::Sync,
            (),
        );
        assert_eq!((range.first, range.last), (5, 6));
        assert_eq!(index.len(), 2);
        index.trim(5);
        assert_eq!(index.len(), 1, "seq 6 stays until it is applied");
    }

    #[test]
    fn a_flush_waits_for_the_last_record_not_for_seqs_recovery_left_unused() {
        let mut queue = SubmitQueue::<()>::new(101, 1 << 20).resumed_after(40);
        assert_eq!(queue.flush_upto(), 40, "seqs 41..=100 hold no record");
        queue.push(vec![record("k", "v")], Durability::None, ());
        assert_eq!(queue.flush_upto(), 101);
        queue.push_sync_barrier(());
        assert_eq!(queue.flush_upto(), 101, "a barrier takes no seq");
    }
}
