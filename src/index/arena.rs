//! The pending index's payload bytes, kept in seq order in large chunks: a small payload
//! costs no allocation of its own, and trimming frees whole chunks.
//!
//! A payload allocated per operation by the appending threads and freed seconds later by
//! the dispatcher (another thread, another allocator arena) was the costliest part of an
//! append without durability: storing no payload at all took `Durability::None` from
//! 273,000–330,000 to 339,000–486,000 appends/s in the same minutes.

use std::collections::VecDeque;

/// Bytes of a shared chunk.
const CHUNK_BYTES: usize = 1 << 20;

/// Payloads longer than this get a chunk of their own, of their exact length, so that
/// the room a shared chunk leaves unused when the next payload does not fit stays under
/// 1/256 of it.
const SHARED_PAYLOAD_MAX: usize = CHUNK_BYTES / 256;

/// Where a payload is in the arena. An empty payload is nowhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PayloadAt {
    chunk: u64,
    start: usize,
    len: usize,
}

impl PayloadAt {
    /// The payload's length.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

/// Payload bytes in seq order.
#[derive(Debug, Default)]
pub(super) struct PayloadArena {
    /// Oldest first. Invariant: chunk ids are consecutive from `first_id`.
    chunks: VecDeque<Chunk>,
    first_id: u64,
}

#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    /// Small payloads share it (its room is `CHUNK_BYTES`); otherwise it holds one payload.
    shared: bool,
    /// The highest seq whose payload is here: once the watermark passes it, nothing
    /// pending points into the chunk.
    last_seq: u64,
}

impl PayloadArena {
    /// Stores the payload of the operation `seq`. Seqs arrive in increasing order.
    pub(super) fn push(&mut self, seq: u64, payload: &[u8]) -> PayloadAt {
        if payload.is_empty() {
            return PayloadAt {
                chunk: 0,
                start: 0,
                len: 0,
            };
        }
        let shared = payload.len() <= SHARED_PAYLOAD_MAX;
        let has_room = self
            .chunks
            .back()
            .is_some_and(|chunk| chunk.shared && chunk.bytes.len() + payload.len() <= CHUNK_BYTES);
        if !shared || !has_room {
            let capacity = if shared { CHUNK_BYTES } else { payload.len() };
            self.chunks.push_back(Chunk {
                bytes: Vec::with_capacity(capacity),
                shared,
                last_seq: seq,
            });
        }
        let chunk_id = self.first_id + self.chunks.len() as u64 - 1;
        let chunk = self
            .chunks
            .back_mut()
            .expect("a chunk was just made if none had room");
        assert!(chunk.last_seq <= seq, "payloads arrive in seq order");
        let start = chunk.bytes.len();
        chunk.bytes.extend_from_slice(payload);
        chunk.last_seq = seq;
        PayloadAt {
            chunk: chunk_id,
            start,
            len: payload.len(),
        }
    }

    /// The payload at `at`, which a pending operation holds (its chunk is still here).
    pub(super) fn get(&self, at: PayloadAt) -> &[u8] {
        if at.len == 0 {
            return &[];
        }
        let index = at
            .chunk
            .checked_sub(self.first_id)
            .expect("a pending payload's chunk is not trimmed");
        &self.chunks[index as usize].bytes[at.start..at.start + at.len]
    }

    /// Frees every chunk holding only payloads of seqs at or below `applied`.
    pub(super) fn trim(&mut self, applied: u64) {
        while self
            .chunks
            .front()
            .is_some_and(|chunk| chunk.last_seq <= applied)
        {
            self.chunks.pop_front();
            self.first_id += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_payloads_share_chunks_large_ones_get_their_own_and_trim_frees_whole_chunks() {
        let mut arena = PayloadArena::default();
        let small = vec![1u8; SHARED_PAYLOAD_MAX];
        let per_chunk = (CHUNK_BYTES / small.len()) as u64;
        let ats: Vec<PayloadAt> = (1..=per_chunk + 1)
            .map(|seq| arena.push(seq, &small))
            .collect();
        assert_eq!(
            arena.chunks.len(),
            2,
            "the first chunk filled, then a second"
        );
        let large = vec![2u8; SHARED_PAYLOAD_MAX + 1];
        let large_at = arena.push(per_chunk + 2, &large);
        assert_eq!(arena.chunks.len(), 3);
        assert_eq!(arena.chunks[2].bytes.capacity(), large.len());
        let after_large = arena.push(per_chunk + 3, b"xy");
        assert_eq!(
            arena.chunks.len(),
            4,
            "nothing shares a payload's own chunk"
        );
        assert_eq!(
            arena.get(PayloadAt {
                chunk: 0,
                start: 0,
                len: 0
            }),
            b""
        );

        arena.trim(per_chunk - 1);
        assert_eq!(
            arena.chunks.len(),
            4,
            "the first chunk still holds seq {per_chunk}"
        );
        arena.trim(per_chunk);
        assert_eq!(arena.chunks.len(), 3);
        assert_eq!(arena.get(ats[per_chunk as usize]), &small[..]);
        assert_eq!(arena.get(large_at), &large[..]);
        assert_eq!(arena.get(after_large), b"xy");
        arena.trim(u64::MAX);
        assert!(arena.chunks.is_empty());
        let next = arena.push(per_chunk + 4, b"z");
        assert_eq!(arena.get(next), b"z", "ids go on after the arena emptied");
    }
}
