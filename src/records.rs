//! A key's records as one read returns them, their payloads left in the buffers the key
//! store read them into: a read of many records allocates once per group it reads (about
//! 64 KiB of a key's records), not once per record.

use crate::index::Record;
use crate::keystore::segment::RecordPlace;
use crate::seq::Seq;

/// One record of [`Records`]: its seq and its payload, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordRef<'a> {
    /// The record's seq.
    pub seq: Seq,
    /// The payload.
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// The record, its payload copied.
    pub fn to_record(&self) -> Record {
        Record {
            seq: self.seq,
            payload: self.payload.to_vec(),
        }
    }
}

/// Where a record's payload lies: which buffer, and the range within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    seq: Seq,
    buffer: usize,
    start: usize,
    len: usize,
}

/// A key's records in seq order, as [`crate::Store::scan`] returns them. A buffer the key
/// store read is kept whole while any of its records is, so a few records taken from a
/// long group hold the group's bytes (at most about 64 KiB a group).
#[derive(Clone, Default)]
pub struct Records {
    /// The buffers the payloads lie in: groups as read, and pending payloads one each.
    buffers: Vec<Vec<u8>>,
    /// The records, in seq order (invariant: strictly increasing seqs).
    spans: Vec<Span>,
}

impl Records {
    /// How many records.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The `index`th record, if there are that many.
    pub fn get(&self, index: usize) -> Option<RecordRef<'_>> {
        self.spans.get(index).map(|span| self.at(span))
    }

    /// The first record.
    pub fn first(&self) -> Option<RecordRef<'_>> {
        self.get(0)
    }

    /// The last record.
    pub fn last(&self) -> Option<RecordRef<'_>> {
        self.spans.last().map(|span| self.at(span))
    }

    /// The records in seq order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            records: self,
            spans: self.spans.iter(),
        }
    }

    /// The records as owned [`Record`]s (one allocation each).
    pub fn into_vec(self) -> Vec<Record> {
        self.iter().map(|r| r.to_record()).collect()
    }

    fn at(&self, span: &Span) -> RecordRef<'_> {
        RecordRef {
            seq: span.seq,
            payload: &self.buffers[span.buffer][span.start..span.start + span.len],
        }
    }

    /// Adds a buffer and the records in it (where each lies), all above the records held
    /// so far.
    pub(crate) fn push_buffer<'p>(
        &mut self,
        bytes: Vec<u8>,
        places: impl IntoIterator<Item = &'p RecordPlace>,
    ) {
        let buffer = self.buffers.len();
        for place in places {
            assert!(
                place.start + place.len <= bytes.len(),
                "a record lies in its buffer"
            );
            self.push_span(Span {
                seq: Seq(place.seq),
                buffer,
                start: place.start,
                len: place.len,
            });
        }
        self.buffers.push(bytes);
    }

    /// Adds one record above those held so far, its payload taken as it is.
    pub(crate) fn push_owned(&mut self, seq: Seq, payload: Vec<u8>) {
        let span = Span {
            seq,
            buffer: self.buffers.len(),
            start: 0,
            len: payload.len(),
        };
        self.buffers.push(payload);
        self.push_span(span);
    }

    fn push_span(&mut self, span: Span) {
        assert!(
            self.spans.last().is_none_or(|last| last.seq < span.seq),
            "records are in strictly increasing seq order"
        );
        self.spans.push(span);
    }

    /// Keeps only the records at or above `seq` (the records are in seq order: a search,
    /// not a pass over them).
    pub(crate) fn drop_below(&mut self, seq: Seq) {
        let below = self.spans.partition_point(|span| span.seq < seq);
        self.spans.drain(..below);
    }

    /// Makes room for `more` records.
    pub(crate) fn reserve(&mut self, more: usize) {
        self.spans.reserve(more);
    }

    /// Keeps at most the first `count` records.
    pub(crate) fn truncate(&mut self, count: usize) {
        self.spans.truncate(count);
    }

    /// Keeps at most the last `count` records.
    pub(crate) fn keep_last(&mut self, count: usize) {
        let extra = self.spans.len().saturating_sub(count);
        self.spans.drain(..extra);
    }
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Records {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Records {}

impl From<Records> for Vec<Record> {
    fn from(records: Records) -> Self {
        records.into_vec()
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = RecordRef<'a>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// The records of a [`Records`], in seq order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    records: &'a Records,
    spans: std::slice::Iter<'a, Span>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = RecordRef<'a>;

    fn next(&mut self) -> Option<RecordRef<'a>> {
        self.spans.next().map(|span| self.records.at(span))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.spans.next_back().map(|span| self.records.at(span))
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_lie_in_their_buffers_in_seq_order() {
        let mut records = Records::default();
        let place = |seq, start, len| RecordPlace { seq, start, len };
        records.push_buffer(b"..ab..cde".to_vec(), &[place(3, 2, 2), place(5, 6, 3)]);
        records.push_owned(Seq(9), b"pending".to_vec());
        let seen: Vec<(u64, &[u8])> = records.iter().map(|r| (r.seq.0, r.payload)).collect();
        assert_eq!(
            seen,
            vec![(3, &b"ab"[..]), (5, &b"cde"[..]), (9, &b"pending"[..])]
        );
        assert_eq!(records.last().map(|r| r.seq), Some(Seq(9)));
        assert_eq!(records.iter().next_back().map(|r| r.seq), Some(Seq(9)));
        let mut tail = records.clone();
        tail.keep_last(2);
        assert_eq!(tail.first().map(|r| r.seq), Some(Seq(5)));
        let owned: Vec<Record> = records.clone().into();
        assert_eq!(owned.len(), 3, "the conversion keeps every record");
        assert_ne!(records, tail, "equality compares the records");
        let mut above = records.clone();
        above.drop_below(Seq(5));
        assert_eq!(above.first().map(|r| r.seq), Some(Seq(5)));
        above.drop_below(Seq(6));
        assert_eq!(above.len(), 1, "only seq 9 is at or above 6");
        records.truncate(1);
        assert_eq!(
            records.into_vec(),
            vec![Record {
                seq: Seq(3),
                payload: b"ab".to_vec()
            }]
        );
    }

    #[test]
    #[should_panic(expected = "strictly increasing")]
    fn a_record_out_of_order_is_a_bug() {
        let mut records = Records::default();
        records.push_owned(Seq(4), vec![]);
        records.push_owned(Seq(4), vec![]);
    }
}
