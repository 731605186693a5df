//! The pending index: every acknowledged record the key store may not hold yet, so reads
//! see a record as soon as its append returns (read-your-writes), whether it is still in
//! a log or already in the key store.
//!
//! Records enter in seq order when they are queued (and, at open, from the finished logs
//! recovery found), and leave only when the applied watermark passes them, which happens
//! after the key store made them durable. So at any moment, for any key, the pending ops
//! plus the key store cover every acknowledged record; a read lays the pending ops whose
//! seq is above the key's highest seq in the key store over its records ([`overlay`]).
//! Its size is bounded by what the backlog bound lets wait (see `Options`).

use crate::seq::Seq;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::error::Result;
use crate::format::Kind;
use crate::fs::Fs;
use crate::keystore::KeyStore;
use crate::records::Records;

mod arena;
use arena::{Payload, PayloadArena};

/// One pending operation on a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingOp {
    /// The record's seq.
    pub seq: u64,
    /// Append, delete or truncate.
    pub kind: Kind,
    /// The payload; empty for a delete.
    pub payload: Vec<u8>,
}

/// A record as reads return it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    /// The record's seq.
    pub seq: Seq,
    /// The payload.
    pub payload: Vec<u8>,
}

/// What one pending operation costs in memory beyond its key (counted twice) and payload:
/// its `PendingOp` and `by_seq` entries, the heap blocks' allocator headers and the maps'
/// per-entry share. An estimate (measured against the bench's peak resident memory), so
/// that the backlog's byte bound holds for small records too. It errs high: the index
/// holds a key once however many operations on it are pending, and a payload in its
/// arena costs no allocator header; the arena's unused room is under 1/256 of its
/// chunks plus the last chunk (1 MiB).
pub const OP_OVERHEAD_BYTES: usize = 128;

/// The memory one pending operation is counted for.
pub fn op_bytes(key_len: usize, payload_len: usize) -> usize {
    OP_OVERHEAD_BYTES + 2 * key_len + payload_len
}

/// Pending operations by key, and their order by seq for trimming.
#[derive(Debug, Default)]
pub struct PendingIndex {
    by_key: BTreeMap<Arc<[u8]>, KeyOps>,
    /// Invariant: seqs strictly increase front to back, and each entry's op is in its
    /// key's `KeyOps`, in the same order.
    by_seq: VecDeque<(u64, Arc<[u8]>)>,
    /// The payloads of the pending operations, in seq order.
    payloads: PayloadArena,
    payload_bytes: usize,
    /// Invariant: the sum of [`op_bytes`] over the pending operations.
    bytes: usize,
}

/// A key's pending operations, with the key itself, shared with `by_seq` so that an
/// operation on a key already pending allocates nothing for the key.
#[derive(Debug)]
struct KeyOps {
    key: Arc<[u8]>,
    /// Invariant: never empty, seqs strictly increase.
    ops: VecDeque<StoredOp>,
}

/// A pending operation as the index keeps it: its payload is in the arena.
#[derive(Clone, Debug)]
struct StoredOp {
    seq: u64,
    kind: Kind,
    payload: Payload,
}

impl PendingIndex {
    /// An empty index.
    pub fn new() -> Self {
        PendingIndex::default()
    }

    /// Adds an operation. Seqs must arrive in strictly increasing order.
    pub fn insert(&mut self, seq: u64, kind: Kind, key: &[u8], payload: &[u8]) {
        assert!(
            self.by_seq.back().is_none_or(|(last, _)| *last < seq),
            "the pending index is filled in seq order"
        );
        self.payload_bytes += payload.len();
        self.bytes += op_bytes(key.len(), payload.len());
        let op = StoredOp {
            seq,
            kind,
            payload: self.payloads.push(seq, payload),
        };
        let shared = match self.by_key.get_mut(key) {
            Some(entry) => {
                entry.ops.push_back(op);
                Arc::clone(&entry.key)
            }
            None => {
                let shared: Arc<[u8]> = Arc::from(key);
                let entry = KeyOps {
                    key: Arc::clone(&shared),
                    ops: VecDeque::from([op]),
                };
                self.by_key.insert(Arc::clone(&shared), entry);
                shared
            }
        };
        self.by_seq.push_back((seq, shared));
    }

    /// Drops the oldest operations at or below `applied`, at most `max_ops` of them, and
    /// returns whether any at or below `applied` are left. The driver trims in such
    /// steps, releasing the index's lock between them, so that appends (which insert
    /// under that lock) never wait for a whole handout's trim.
    pub fn trim_some(&mut self, applied: u64, max_ops: usize) -> bool {
        assert!(max_ops > 0, "a step trims something");
        let leaving = self.by_seq.partition_point(|(seq, _)| *seq <= applied);
        if leaving == 0 {
            return false;
        }
        let step = leaving.min(max_ops);
        let upto = self.by_seq[step - 1].0;
        self.trim(upto);
        step < leaving
    }

    /// Drops every operation at or below `applied` (the key store holds them durably).
    ///
    /// When more operations leave than keys are pending (the usual case: the committers
    /// apply a handout of seconds of appends at once), one sweep over the keys does it;
    /// otherwise each leaving operation is looked up by its key.
    pub fn trim(&mut self, applied: u64) {
        let leaving = self.by_seq.partition_point(|(seq, _)| *seq <= applied);
        if leaving == 0 {
            return;
        }
        let (mut payload_bytes, mut bytes) = (0, 0);
        let mut drop_op = |key_len: usize, op: &StoredOp| {
            assert!(op.seq <= applied, "only ops the watermark passed leave");
            payload_bytes += op.payload.len();
            bytes += op_bytes(key_len, op.payload.len());
        };
        if leaving >= self.by_key.len() {
            let mut swept = 0;
            self.by_key.retain(|key, entry| {
                while entry.ops.front().is_some_and(|op| op.seq <= applied) {
                    if let Some(op) = entry.ops.pop_front() {
                        drop_op(key.len(), &op);
                        swept += 1;
                    }
                }
                !entry.ops.is_empty()
            });
            assert_eq!(
                swept, leaving,
                "the sweep drops exactly the ops by_seq lets go"
            );
            self.by_seq.drain(..leaving);
        } else {
            for (seq, key) in self.by_seq.drain(..leaving) {
                let entry = self
                    .by_key
                    .get_mut(&key)
                    .expect("every by_seq entry has its key's ops");
                let op = entry
                    .ops
                    .pop_front()
                    .expect("every by_seq entry has its op");
                assert_eq!(op.seq, seq, "a key's ops leave in seq order");
                drop_op(key.len(), &op);
                if entry.ops.is_empty() {
                    self.by_key.remove(&key);
                }
            }
        }
        self.payloads.trim(applied);
        self.payload_bytes -= payload_bytes;
        self.bytes -= bytes;
    }

    /// A copy of `key`'s pending operations, in seq order.
    pub fn ops(&self, key: &[u8]) -> Vec<PendingOp> {
        self.by_key
            .get(key)
            .map(|entry| {
                entry
                    .ops
                    .iter()
                    .map(|op| PendingOp {
                        seq: op.seq,
                        kind: op.kind,
                        payload: self.payloads.get(&op.payload).to_vec(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Keys with pending operations, sorted.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.by_key.keys().map(|key| key.to_vec()).collect()
    }

    /// Operations pending.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_seq.is_empty()
    }

    /// Payload bytes pending.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }

    /// The lowest seq of any pending operation.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.by_seq.front().map(|(seq, _)| *seq)
    }

    /// The memory the pending operations are counted for (see [`op_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The pending operations a read applies on top of what the key store returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// The key store's records below this seq are hidden (a pending delete or truncate);
    /// 0 hides none.
    pub floor: u64,
    /// The pending appends at or above the floor, in seq order.
    pub appends: Vec<Record>,
}

impl Overlay {
    /// Lays the overlay over `stored` (the key store's records, in seq order).
    fn over(self, mut stored: Records) -> Records {
        stored.drop_below(Seq(self.floor));
        for append in self.appends {
            stored.push_owned(append.seq, append.payload);
        }
        stored
    }
}

/// The overlay of `pending` (a key's pending ops, in seq order) on a key store read that
/// reflects every operation up to `stored_last_seq`: only the ops above it count.
pub fn overlay(pending: Vec<PendingOp>, stored_last_seq: u64) -> Overlay {
    let mut overlay = Overlay::default();
    for op in pending.into_iter().filter(|op| op.seq > stored_last_seq) {
        let floor = match op.kind {
            Kind::Append => {
                overlay.appends.push(Record {
                    seq: Seq(op.seq),
                    payload: op.payload,
                });
                continue;
            }
            Kind::Delete => op.seq + 1,
            // Checked when it was decoded or submitted; an unreadable one moves nothing.
            Kind::Truncate => crate::format::truncate_floor(op.seq, &op.payload).unwrap_or(0),
        };
        overlay.floor = overlay.floor.max(floor);
        let floor = overlay.floor;
        overlay.appends.retain(|r| r.seq.0 >= floor);
    }
    overlay
}

/// Every key that holds at least one record, sorted: the key store's index, corrected by
/// `pending_keys` (the keys with pending operations), each looked at through its newest
/// record (`pending` gives a key's pending operations).
pub fn keys<F: Fs>(
    fs: &F,
    store: &KeyStore,
    pending_keys: Vec<Vec<u8>>,
    pending: impl Fn(&[u8]) -> Vec<PendingOp>,
) -> Result<Vec<Vec<u8>>> {
    let mut keys: std::collections::BTreeSet<Vec<u8>> = store.keys(fs)?.into_iter().collect();
    for key in pending_keys {
        if tail(fs, store, pending(&key), &key, 1)?.is_empty() {
            keys.remove(&key);
        } else {
            keys.insert(key);
        }
    }
    Ok(keys.into_iter().collect())
}

/// The first `limit` records of `key` above `after`: the key store's, then the pending
/// ones. `pending` must be copied from the pending index before the key store is read
/// (a record leaves the index only once the key store holds it, so between the two reads
/// every acknowledged record is seen at least once; the overlay takes each seq once).
pub fn records<F: Fs>(
    fs: &F,
    store: &KeyStore,
    pending: Vec<PendingOp>,
    key: &[u8],
    after: u64,
    limit: usize,
) -> Result<Records> {
    let mut from = after;
    loop {
        let stored = store.read(fs, key, from, limit)?;
        let overlay = overlay(pending.clone(), stored.last_seq);
        // A pending truncate hides the key store's older records: read from its floor,
        // or `limit` of them could all be hidden. `from` only rises, so this ends.
        let hidden = stored
            .records
            .first()
            .is_some_and(|r| r.seq.0 < overlay.floor);
        if hidden && overlay.floor - 1 > from {
            from = overlay.floor - 1;
            continue;
        }
        let mut records = overlay.over(stored.records);
        records.drop_below(Seq(after.saturating_add(1)));
        records.truncate(limit);
        return Ok(records);
    }
}

/// The last `count` records of `key` (see [`records`] for `pending`).
pub fn tail<F: Fs>(
    fs: &F,
    store: &KeyStore,
    pending: Vec<PendingOp>,
    key: &[u8],
    count: usize,
) -> Result<Records> {
    let stored = store.tail(fs, key, count)?;
    let mut records = overlay(pending, stored.last_seq).over(stored.records);
    records.keep_last(count);
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(seq: u64, kind: Kind) -> PendingOp {
        PendingOp {
            seq,
            kind,
            payload: if kind == Kind::Append {
                vec![seq as u8]
            } else {
                vec![]
            },
        }
    }

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.seq.0).collect()
    }

    #[test]
    fn the_overlay_takes_pending_ops_above_the_key_store() {
        let pending = vec![op(5, Kind::Append), op(7, Kind::Append)];
        let over = overlay(pending.clone(), 5);
        assert_eq!((over.floor, seqs(&over.appends)), (0, vec![7]));
        assert_eq!(seqs(&overlay(pending, 0).appends), vec![5, 7]);
        let pending = vec![
            op(5, Kind::Append),
            op(6, Kind::Delete),
            op(7, Kind::Append),
        ];
        // Before the delete is applied and after: both read only seq 7.
        for stored_last_seq in [5, 6] {
            let over = overlay(pending.clone(), stored_last_seq);
            assert_eq!(seqs(&over.appends), vec![7]);
            assert_eq!(over.floor, if stored_last_seq < 6 { 7 } else { 0 });
        }
        assert_eq!(overlay(pending, 7), Overlay::default());
    }

    #[test]
    fn a_pending_truncate_hides_older_records_and_never_reaches_past_itself() {
        let truncate = |seq: u64, before: u64| PendingOp {
            seq,
            kind: Kind::Truncate,
            payload: crate::format::truncate_payload(before),
        };
        let pending = vec![
            op(5, Kind::Append),
            op(6, Kind::Append),
            truncate(7, 6),
            op(8, Kind::Append),
        ];
        let over = overlay(pending.clone(), 4);
        assert_eq!((over.floor, seqs(&over.appends)), (6, vec![6, 8]));
        // Past its own seq: it drops what is older than itself, keeps later appends.
        let over = overlay(
            vec![op(5, Kind::Append), truncate(7, 100), op(8, Kind::Append)],
            0,
        );
        assert_eq!((over.floor, seqs(&over.appends)), (7, vec![8]));
        // A truncate behind a delete's floor moves nothing.
        let over = overlay(vec![op(6, Kind::Delete), truncate(7, 3)], 0);
        assert_eq!(over.floor, 7);
        let mut stored = Records::default();
        stored.push_owned(Seq(1), vec![]);
        stored.push_owned(Seq(3), vec![]);
        assert_eq!(
            seqs(&overlay(pending, 4).over(stored).into_vec()),
            vec![6, 8]
        );
    }

    proptest::proptest! {
        /// Against a plain list of ops, through both ways `trim` works (a sweep over the
        /// keys when many ops leave, a lookup per op when few do) and in bounded steps.
        #[test]
        fn the_index_agrees_with_a_list_of_ops(
            steps in proptest::collection::vec((0u8..8, 0usize..4, 0u64..6, proptest::bool::ANY), 0..300)
        ) {
            let mut index = PendingIndex::new();
            let mut model: Vec<(u64, Vec<u8>, Kind, Vec<u8>)> = Vec::new();
            let (mut seq, mut applied) = (0u64, 0u64);
            for (key, payload_len, advance, is_trim) in steps {
                if is_trim {
                    applied = (applied + advance * advance).min(seq);
                    if payload_len == 0 {
                        index.trim(applied);
                    } else {
                        // In steps of `payload_len` ops, as the driver trims.
                        let mut steps = 0;
                        while index.trim_some(applied, payload_len) {
                            steps += 1;
                        }
                        let leaving = model.iter().filter(|(s, ..)| *s <= applied).count();
                        proptest::prop_assert_eq!(steps, leaving.saturating_sub(1) / payload_len);
                    }
                    model.retain(|(s, ..)| *s > applied);
                } else {
                    seq += 1;
                    let key = vec![b'k', key];
                    let kind = if payload_len == 0 { Kind::Delete } else { Kind::Append };
                    let payload: Vec<u8> = (0..payload_len).map(|i| (seq as u8).wrapping_add(i as u8)).collect();
                    index.insert(seq, kind, &key, &payload);
                    model.push((seq, key, kind, payload));
                }
                let mut keys: Vec<Vec<u8>> = model.iter().map(|(_, k, ..)| k.clone()).collect();
                keys.sort();
                keys.dedup();
                proptest::prop_assert_eq!(index.keys(), keys.clone());
                for key in &keys {
                    let expected: Vec<PendingOp> = model
                        .iter()
                        .filter(|(_, k, ..)| k == key)
                        .map(|(seq, _, kind, payload)| PendingOp { seq: *seq, kind: *kind, payload: payload.clone() })
                        .collect();
                    proptest::prop_assert_eq!(index.ops(key), expected);
                }
                proptest::prop_assert_eq!(index.len(), model.len());
                proptest::prop_assert_eq!(
                    index.bytes(),
                    model.iter().map(|(_, k, _, p)| op_bytes(k.len(), p.len())).sum::<usize>()
                );
                proptest::prop_assert_eq!(
                    index.payload_bytes(),
                    model.iter().map(|(.., p)| p.len()).sum::<usize>()
                );
            }
        }
    }

    #[test]
    fn trim_drops_what_the_watermark_passed() {
        let mut index = PendingIndex::new();
        index.insert(1, Kind::Append, b"a", b"xx");
        index.insert(2, Kind::Append, b"b", b"y");
        index.insert(3, Kind::Append, b"a", b"z");
        assert_eq!(index.payload_bytes(), 4);
        assert_eq!(index.bytes(), 3 * OP_OVERHEAD_BYTES + 3 * 2 + 4);
        index.trim(2);
        assert_eq!(index.bytes(), op_bytes(1, 1));
        assert_eq!(index.len(), 1);
        assert_eq!(index.keys(), vec![b"a".to_vec()]);
        assert_eq!(index.ops(b"a")[0].seq, 3);
        index.trim(10);
        assert!(index.is_empty());
        assert_eq!(index.payload_bytes(), 0);
        assert_eq!(index.bytes(), 0);
    }
}
