//! The pending index's small payloads, kept in seq order in large chunks: such a payload
//! costs no allocation of its own, and trimming frees whole chunks.
//!
//! A payload allocated per operation by the appending threads and freed seconds later by
//! the dispatcher (another thread, another allocator arena) was the costliest part of an
//! append without durability: storing no payload at all took `Durability::None` from
//! 273,000–330,000 to 339,000–486,000 appends/s in the same minutes.

use std::collections::VecDeque;

/// Bytes of a chunk.
const CHUNK_BYTES: usize = 1 << 20;

/// Payloads longer than this (or empty) are kept on their own, so that the room a chunk
/// leaves unused when the next payload does not fit stays under 1/256 of it.
const SHARED_PAYLOAD_MAX: usize = CHUNK_BYTES / 256;

/// A stored payload: in a chunk of the arena, or on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Payload {
    /// Bytes `start..start + len` of chunk `chunk`.
    Shared {
        chunk: u64,
        start: usize,
        len: usize,
    },
    /// A payload too large to share a chunk, or empty (which allocates nothing).
    Own(Box<[u8]>),
}

impl Payload {
    /// The payload's length.
    pub(super) fn len(&self) -> usize {
        match self {
            Payload::Shared { len, .. } => *len,
            Payload::Own(bytes) => bytes.len(),
        }
    }
}

/// Small payloads in seq order.
#[derive(Debug, Default)]
pub(super) struct PayloadArena {
    /// Oldest first. Invariant: chunk ids are consecutive from `first_id`, and only the
    /// last chunk takes new payloads, so every chunk but the last leaves under
    /// `SHARED_PAYLOAD_MAX` bytes unused.
    chunks: VecDeque<Chunk>,
    first_id: u64,
}

#[derive(Debug)]
struct Chunk {
    bytes: Vec<u8>,
    /// The highest seq whose payload is here: once the watermark passes it, nothing
    /// pending points into the chunk.
    last_seq: u64,
}

impl PayloadArena {
    /// Stores the payload of the operation `seq`. Seqs arrive in increasing order.
    pub(super) fn push(&mut self, seq: u64, payload: &[u8]) -> Payload {
        if payload.is_empty() || payload.len() > SHARED_PAYLOAD_MAX {
            return Payload::Own(payload.into());
        }
        let has_room = self
            .chunks
            .back()
            .is_some_and(|chunk| chunk.bytes.len() + payload.len() <= CHUNK_BYTES);
        if !has_room {
            self.chunks.push_back(Chunk {
                bytes: Vec::with_capacity(CHUNK_BYTES),
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
        Payload::Shared {
            chunk: chunk_id,
            start,
            len: payload.len(),
        }
    }

    /// The bytes of `payload`, which a pending operation holds (its chunk is still here).
    pub(super) fn get<'a>(&'a self, payload: &'a Payload) -> &'a [u8] {
        match payload {
            Payload::Own(bytes) => bytes,
            Payload::Shared { chunk, start, len } => {
                let index = chunk
                    .checked_sub(self.first_id)
                    .expect("a pending payload's chunk is not trimmed");
                &self.chunks[index as usize].bytes[*start..start + len]
            }
        }
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

    /// The memory bound counts payloads at their length: the arena may hold more only by
    /// the documented slack, under 1/256 of its chunks plus the last chunk.
    #[test]
    fn the_room_the_arena_holds_stays_within_its_stated_slack() {
        let mut arena = PayloadArena::default();
        let mut stored = 0usize;
        let mut seq = 0;
        // Lengths that leave awkward tails in a chunk, up to the largest shared payload,
        // and among them some kept on their own.
        for round in 0..20_000usize {
            let len = match round % 7 {
                6 => SHARED_PAYLOAD_MAX + 1 + round,
                r => 1 + (round * 977 + r * 131) % SHARED_PAYLOAD_MAX,
            };
            seq += 1;
            if let Payload::Shared { .. } = arena.push(seq, &vec![0u8; len]) {
                stored += len;
            }
        }
        let held: usize = arena.chunks.iter().map(|c| c.bytes.capacity()).sum();
        assert!(
            held <= stored + held / 256 + CHUNK_BYTES,
            "held {held} for {stored} stored"
        );
    }

    #[test]
    fn small_payloads_share_chunks_large_ones_stay_apart_and_trim_frees_whole_chunks() {
        let mut arena = PayloadArena::default();
        let small = vec![1u8; SHARED_PAYLOAD_MAX];
        let per_chunk = (CHUNK_BYTES / small.len()) as u64;
        let ats: Vec<Payload> = (1..=per_chunk + 1)
            .map(|seq| arena.push(seq, &small))
            .collect();
        assert_eq!(
            arena.chunks.len(),
            2,
            "the first chunk filled, then a second"
        );
        let large = vec![2u8; SHARED_PAYLOAD_MAX + 1];
        let large_at = arena.push(per_chunk + 2, &large);
        assert_eq!(large_at, Payload::Own(large.clone().into()));
        let after_large = arena.push(per_chunk + 3, b"xy");
        assert_eq!(arena.chunks.len(), 2, "the second chunk goes on filling");
        assert_eq!(arena.push(per_chunk + 4, b""), Payload::Own(Box::default()));

        arena.trim(per_chunk - 1);
        assert_eq!(
            arena.chunks.len(),
            2,
            "the first chunk still holds seq {per_chunk}"
        );
        arena.trim(per_chunk);
        assert_eq!(arena.chunks.len(), 1);
        assert_eq!(arena.get(&ats[per_chunk as usize]), &small[..]);
        assert_eq!(arena.get(&large_at), &large[..]);
        assert_eq!(arena.get(&after_large), b"xy");
        arena.trim(u64::MAX);
        assert!(arena.chunks.is_empty());
        let next = arena.push(per_chunk + 5, b"z");
        assert_eq!(arena.get(&next), b"z", "ids go on after the arena emptied");
    }
}
