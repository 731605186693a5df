//! The write-log format: encoding and a zero-copy, never-panicking decoder.
//!
//! Pure: no I/O, no allocation driven by a length read from the input. The byte-by-byte
//! layout is in `docs/FORMAT.md`; a snapshot test pins it.
//!
//! A log is a [`LOG_HEADER_LEN`]-byte file header followed by blocks. Every block is one
//! record (an append or a delete) and carries its own CRC-64/XZ. Records written by one
//! request form a *batch*: consecutive seqs, the first block flagged as the batch's start,
//! and each block saying how many blocks of its batch follow it (`batch_left`), so a
//! reader can tell a whole batch from a cut one — even when it resynchronises after
//! damage in the middle of a batch — and drop a cut one whole.

/// Magic bytes at the start of every log file.
pub const LOG_MAGIC: [u8; 8] = *b"WRITELOG";
/// The log format version this code writes and reads.
pub const LOG_VERSION: u32 = 1;
/// Length of the log file header: magic, version, reserved.
pub const LOG_HEADER_LEN: usize = 16;
/// Magic number at the start of every block (`"WBLK"` as little-endian bytes).
pub const BLOCK_MAGIC: u32 = u32::from_le_bytes(*b"WBLK");
/// Length of a block header, before the key and the payload.
pub const BLOCK_HEADER_LEN: usize = 32;
/// Block flag: the block starts its batch.
const FLAG_BATCH_FIRST: u8 = 1;
/// Offset of the first byte the block CRC covers (everything after magic and CRC).
const BLOCK_CRC_START: usize = 12;
/// The largest key the format can carry (its length is a `u16`).
pub const FORMAT_KEY_LEN_MAX: usize = u16::MAX as usize;
/// The largest payload the format can carry (its length is a `u32`).
pub const FORMAT_PAYLOAD_LEN_MAX: usize = u32::MAX as usize;

/// CRC-64/XZ of `bytes`, the checksum of every block and key-file record.
pub fn crc64(bytes: &[u8]) -> u64 {
    let mut digest = crc64fast::Digest::new();
    digest.write(bytes);
    digest.sum64()
}

/// What a record does to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Append the payload to the key's records.
    Append,
    /// Remove the key and all its records; a later append starts it afresh.
    Delete,
    /// Drop the key's records older than a seq (the payload: [`TRUNCATE_PAYLOAD_LEN`]
    /// bytes, the seq little-endian); see [`truncate_floor`].
    Truncate,
}

/// Length of a truncate's payload: the seq below which records go, little-endian.
pub const TRUNCATE_PAYLOAD_LEN: usize = 8;

/// The payload of a truncate that drops the records below `before`.
pub fn truncate_payload(before: u64) -> Vec<u8> {
    before.to_le_bytes().to_vec()
}

/// The floor a truncate at `seq` with `payload` sets: its key's records below it are
/// gone. It never passes the truncate itself: a record appended after the truncate is
/// kept whatever `before` said. `None` for a payload that is not a truncate's.
pub fn truncate_floor(seq: u64, payload: &[u8]) -> Option<u64> {
    let before: [u8; TRUNCATE_PAYLOAD_LEN] = payload.try_into().ok()?;
    Some(u64::from_le_bytes(before).min(seq))
}

impl Kind {
    /// Whether a payload of `len` bytes is one this kind can carry: any for an append,
    /// none for a delete, a seq for a truncate.
    pub fn payload_fits(kind: Kind, len: usize) -> bool {
        match kind {
            Kind::Append => true,
            Kind::Delete => len == 0,
            Kind::Truncate => len == TRUNCATE_PAYLOAD_LEN,
        }
    }

    fn to_byte(self) -> u8 {
        match self {
            Kind::Append => 1,
            Kind::Delete => 2,
            Kind::Truncate => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::Append),
            2 => Some(Kind::Delete),
            3 => Some(Kind::Truncate),
            _ => None,
        }
    }
}

/// One decoded block, borrowing key and payload from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block<'a> {
    /// The record's store-wide sequence number.
    pub seq: u64,
    /// Append, delete or truncate.
    pub kind: Kind,
    /// Whether this block starts its batch.
    pub batch_first: bool,
    /// How many blocks of the same batch follow this one; 0 ends the batch.
    pub batch_left: u32,
    /// The key, never empty.
    pub key: &'a [u8],
    /// The payload; empty for a delete.
    pub payload: &'a [u8],
}

/// Bounds a decoder enforces before it trusts a length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest key length accepted.
    pub key_len_max: usize,
    /// Largest payload length accepted.
    pub payload_len_max: usize,
}

impl Default for DecodeLimits {
    /// The format's own maxima: anything the format can express is accepted.
    fn default() -> Self {
        DecodeLimits {
            key_len_max: FORMAT_KEY_LEN_MAX,
            payload_len_max: FORMAT_PAYLOAD_LEN_MAX,
        }
    }
}

/// The encoded length of one block.
pub fn block_len(key_len: usize, payload_len: usize) -> usize {
    BLOCK_HEADER_LEN + key_len + payload_len
}

/// Appends the log file header to `out`.
pub fn encode_log_header(out: &mut Vec<u8>) {
    out.extend_from_slice(&LOG_MAGIC);
    out.extend_from_slice(&LOG_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
}

/// Appends one block to `out`.
///
/// The caller guarantees the limits (non-empty key within [`FORMAT_KEY_LEN_MAX`],
/// payload within [`FORMAT_PAYLOAD_LEN_MAX`], a payload its kind carries); they are
/// asserted because a block that breaks them could never be read back.
pub fn encode_block(out: &mut Vec<u8>, block: &Block<'_>) {
    assert!(!block.key.is_empty(), "a block's key is never empty");
    assert!(
        block.key.len() <= FORMAT_KEY_LEN_MAX,
        "key too long for the format"
    );
    assert!(
        block.payload.len() <= FORMAT_PAYLOAD_LEN_MAX,
        "payload too long for the format"
    );
    assert!(
        Kind::payload_fits(block.kind, block.payload.len()),
        "a delete carries no payload, a truncate its seq"
    );
    let start = out.len();
    out.reserve(block_len(block.key.len(), block.payload.len()));
    out.extend_from_slice(&BLOCK_MAGIC.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes()); // CRC, filled in below
    out.extend_from_slice(&block.seq.to_le_bytes());
    out.push(block.kind.to_byte());
    out.push(if block.batch_first {
        FLAG_BATCH_FIRST
    } else {
        0
    });
    out.extend_from_slice(&(block.key.len() as u16).to_le_bytes());
    out.extend_from_slice(&block.batch_left.to_le_bytes());
    out.extend_from_slice(&(block.payload.len() as u32).to_le_bytes());
    out.extend_from_slice(block.key);
    out.extend_from_slice(block.payload);
    let crc = crc64(&out[start + BLOCK_CRC_START..]);
    out[start + 4..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// Why bytes at some offset are not a good block (or not a good batch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadReason {
    /// The file is shorter than its header.
    HeaderTruncated,
    /// The file does not start with the log magic.
    BadFileMagic,
    /// The file header names a version this code cannot read.
    UnsupportedVersion(u32),
    /// A block runs past the end of the input.
    Truncated,
    /// Only zero bytes from here to the end of the input.
    ZeroFilled,
    /// The bytes here do not start with the block magic.
    BadMagic,
    /// A header field holds a value no encoder writes.
    BadField,
    /// A length field exceeds the decoder's limits.
    OverLimit,
    /// The block's CRC does not match its bytes.
    BadChecksum,
    /// The block's seq is not greater than the one before it: a stale or misplaced block.
    SeqNotIncreasing,
    /// A batch is interrupted or never ends; it is dropped whole.
    BrokenBatch,
    /// A file the store's records say exists is missing or shorter than they say.
    Missing,
}

impl std::fmt::Display for BadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = match self {
            BadReason::HeaderTruncated => "file header is truncated",
            BadReason::BadFileMagic => "not a writelog log (bad file magic)",
            BadReason::UnsupportedVersion(version) => {
                return write!(f, "unsupported log format version {version}")
            }
            BadReason::Truncated => "block is truncated",
            BadReason::ZeroFilled => "zero-filled tail",
            BadReason::BadMagic => "bad block magic",
            BadReason::BadField => "invalid block header field",
            BadReason::OverLimit => "length field over the limit",
            BadReason::BadChecksum => "checksum mismatch",
            BadReason::SeqNotIncreasing => "seq does not increase",
            BadReason::BrokenBatch => "batch is incomplete",
            BadReason::Missing => "file is missing or shorter than recorded",
        };
        f.write_str(reason)
    }
}

impl std::error::Error for BadReason {}

/// Decodes one block at the start of `input`. Returns the block and its encoded length.
///
/// Never panics and never allocates; every length is checked against `limits` and
/// against the input before it is used.
pub fn decode_block<'a>(
    input: &'a [u8],
    limits: &DecodeLimits,
) -> Result<(Block<'a>, usize), BadReason> {
    if input.len() < BLOCK_HEADER_LEN {
        return Err(if is_all_zero(input) {
            BadReason::ZeroFilled
        } else {
            BadReason::Truncated
        });
    }
    if read_u32(input, 0) != BLOCK_MAGIC {
        return Err(if is_all_zero(input) {
            BadReason::ZeroFilled
        } else {
            BadReason::BadMagic
        });
    }
    let stored_crc = read_u64(input, 4);
    let seq = read_u64(input, 12);
    let kind = Kind::from_byte(input[20]).ok_or(BadReason::BadField)?;
    let flags = input[21];
    if flags & !FLAG_BATCH_FIRST != 0 {
        return Err(BadReason::BadField);
    }
    let key_len = usize::from(read_u16(input, 22));
    let batch_left = read_u32(input, 24);
    let payload_len = read_u32(input, 28) as usize;
    if key_len == 0 || !Kind::payload_fits(kind, payload_len) {
        return Err(BadReason::BadField);
    }
    if key_len > limits.key_len_max || payload_len > limits.payload_len_max {
        return Err(BadReason::OverLimit);
    }
    let total = BLOCK_HEADER_LEN
        .checked_add(key_len)
        .and_then(|n| n.checked_add(payload_len))
        .ok_or(BadReason::OverLimit)?;
    if total > input.len() {
        return Err(BadReason::Truncated);
    }
    if crc64(&input[BLOCK_CRC_START..total]) != stored_crc {
        return Err(BadReason::BadChecksum);
    }
    let key_end = BLOCK_HEADER_LEN + key_len;
    let block = Block {
        seq,
        kind,
        batch_first: flags & FLAG_BATCH_FIRST != 0,
        batch_left,
        key: &input[BLOCK_HEADER_LEN..key_end],
        payload: &input[key_end..total],
    };
    Ok((block, total))
}

/// Checks the log file header at the start of `input`.
pub fn decode_log_header(input: &[u8]) -> Result<(), BadReason> {
    if input.len() < LOG_HEADER_LEN {
        return Err(BadReason::HeaderTruncated);
    }
    if input[..8] != LOG_MAGIC {
        return Err(BadReason::BadFileMagic);
    }
    let version = read_u32(input, 8);
    if version != LOG_VERSION {
        return Err(BadReason::UnsupportedVersion(version));
    }
    Ok(())
}

/// A whole batch: one request's records, consecutive seqs, all blocks intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<'a> {
    /// Offset of the batch's first block in the file.
    pub offset: u64,
    /// Offset just past the batch's last block.
    pub end: u64,
    /// The batch's blocks in order; never empty.
    pub blocks: Vec<Block<'a>>,
}

/// A damaged region of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Where the damage begins: the start of the batch it breaks, so a reader that stops
    /// here keeps exactly the whole batches before it.
    pub offset: u64,
    /// Where the bad bytes themselves were found (at or after `offset`).
    pub bad_at: u64,
    /// What was wrong there.
    pub reason: BadReason,
    /// The next intact block after the damage, where decoding goes on; `None` when the
    /// damage runs to the end of the input (a torn or zero-filled tail).
    pub resumes_at: Option<u64>,
}

impl Damage {
    /// True when the damage runs to the end of the input: what a crash leaves behind.
    pub fn is_tail(&self) -> bool {
        self.resumes_at.is_none()
    }
}

/// Walks a whole log held in memory, yielding complete batches and damaged regions.
///
/// The decoder checks the file header first; a bad header is one `Damage` at offset 0
/// that ends the walk. After damage it resynchronises at the next intact block, so a
/// caller may stop at the first damage (strict, point-in-time, crash recovery) or go on
/// (skip-corrupt). Seqs must strictly increase through the log; a block that breaks
/// that order is damage even when its checksum holds. Every step advances, so the walk
/// ends after at most one item per input byte.
pub struct LogDecoder<'a> {
    input: &'a [u8],
    limits: DecodeLimits,
    pos: usize,
    started: bool,
    finished: bool,
    last_seq: Option<u64>,
    /// The highest seq any intact block's batch claims (its seq plus the blocks it says
    /// follow it in the batch).
    claimed_upto: u64,
    pending: Vec<Block<'a>>,
    pending_start: usize,
    valid_prefix: usize,
}

impl<'a> LogDecoder<'a> {
    /// A decoder over a whole log file's bytes.
    pub fn new(input: &'a [u8], limits: DecodeLimits) -> Self {
        LogDecoder {
            input,
            limits,
            pos: 0,
            started: false,
            finished: false,
            last_seq: None,
            claimed_upto: 0,
            pending: Vec::new(),
            pending_start: LOG_HEADER_LEN,
            valid_prefix: 0,
        }
    }

    /// Length of the longest prefix that holds a good header and only whole, intact
    /// batches, as far as the walk has gone: where recovery cuts a crashed log.
    pub fn valid_prefix_len(&self) -> u64 {
        self.valid_prefix as u64
    }

    /// The highest seq of any intact block seen so far, in or out of a whole batch.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The highest seq that any intact block seen so far, or the batch it is part of,
    /// holds: with damage, the seqs of a damaged batch past its last intact block too (a
    /// block says how many blocks of its batch follow it). At least [`Self::last_seq`].
    pub fn claimed_upto(&self) -> u64 {
        self.claimed_upto
    }

    fn damage_here(&mut self, reason: BadReason, skip: usize) -> Damage {
        let bad_at = self.pos;
        let offset = if self.pending.is_empty() {
            bad_at
        } else {
            self.pending_start
        };
        self.pending.clear();
        let resumes_at = self.find_next_block(bad_at.saturating_add(skip.max(1)));
        let reason = match (reason, resumes_at) {
            (BadReason::BadMagic | BadReason::Truncated, None)
                if is_all_zero(&self.input[bad_at..]) =>
            {
                BadReason::ZeroFilled
            }
            (reason, _) => reason,
        };
        match resumes_at {
            Some(next) => self.pos = next,
            None => {
                self.pos = self.input.len();
                self.finished = true;
            }
        }
        Damage {
            offset: offset as u64,
            bad_at: bad_at as u64,
            reason,
            resumes_at: resumes_at.map(|p| p as u64),
        }
    }

    fn find_next_block(&self, from: usize) -> Option<usize> {
        let magic = BLOCK_MAGIC.to_le_bytes();
        let mut at = from;
        while at.checked_add(BLOCK_HEADER_LEN)? <= self.input.len() {
            if self.input[at..at + 4] == magic
                && decode_block(&self.input[at..], &self.limits).is_ok()
            {
                return Some(at);
            }
            at += 1;
        }
        None
    }
}

impl<'a> Iterator for LogDecoder<'a> {
    type Item = Result<Batch<'a>, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if !self.started {
            self.started = true;
            if let Err(reason) = decode_log_header(self.input) {
                self.finished = true;
                return Some(Err(Damage {
                    offset: 0,
                    bad_at: 0,
                    reason,
                    resumes_at: None,
                }));
            }
            self.pos = LOG_HEADER_LEN;
            self.valid_prefix = LOG_HEADER_LEN;
        }
        loop {
            if self.pos >= self.input.len() {
                self.finished = true;
                if self.pending.is_empty() {
                    return None;
                }
                let offset = self.pending_start as u64;
                self.pending.clear();
                return Some(Err(Damage {
                    offset,
                    bad_at: self.input.len() as u64,
                    reason: BadReason::BrokenBatch,
                    resumes_at: None,
                }));
            }
            let (block, len) = match decode_block(&self.input[self.pos..], &self.limits) {
                Ok(decoded) => decoded,
                Err(reason) => return Some(Err(self.damage_here(reason, 1))),
            };
            if self.last_seq.is_some_and(|last| block.seq <= last) {
                return Some(Err(self.damage_here(BadReason::SeqNotIncreasing, len)));
            }
            if self.pending.is_empty() && !block.batch_first {
                // An orphan: the tail of a batch whose start was lost to damage. It is
                // intact, so its seq counts: a seq once written is never handed out again.
                self.last_seq = Some(block.seq);
                self.claimed_upto = self
                    .claimed_upto
                    .max(block.seq.saturating_add(u64::from(block.batch_left)));
                return Some(Err(self.damage_here(BadReason::BrokenBatch, len)));
            }
            if let Some(prev) = self.pending.last() {
                let continues = !block.batch_first
                    && prev.seq.checked_add(1) == Some(block.seq)
                    && block.batch_left.checked_add(1) == Some(prev.batch_left);
                if !continues {
                    // The pending batch never reached its end: drop it whole and decode
                    // this block again as the start of a new batch.
                    let damage = Damage {
                        offset: self.pending_start as u64,
                        bad_at: self.pos as u64,
                        reason: BadReason::BrokenBatch,
                        resumes_at: Some(self.pos as u64),
                    };
                    self.pending.clear();
                    return Some(Err(damage));
                }
            }
            if self.pending.is_empty() {
                self.pending_start = self.pos;
            }
            self.last_seq = Some(block.seq);
            self.claimed_upto = self
                .claimed_upto
                .max(block.seq.saturating_add(u64::from(block.batch_left)));
            self.pending.push(block);
            self.pos += len;
            if block.batch_left == 0 {
                let offset = self.pending_start as u64;
                if self.valid_prefix == self.pending_start {
                    self.valid_prefix = self.pos;
                }
                return Some(Ok(Batch {
                    offset,
                    end: self.pos as u64,
                    blocks: std::mem::take(&mut self.pending),
                }));
            }
        }
    }
}

fn is_all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    let mut buf = [0u8; 4];
    buf.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(buf)
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut buf = [0u8; 8];
    buf.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(blocks: &[Block<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_log_header(&mut out);
        for block in blocks {
            encode_block(&mut out, block);
        }
        out
    }

    /// A block; `first` marks the start of its batch.
    fn block(
        seq: u64,
        first: bool,
        batch_left: u32,
        key: &'static [u8],
        payload: &'static [u8],
    ) -> Block<'static> {
        Block {
            seq,
            kind: Kind::Append,
            batch_first: first,
            batch_left,
            key,
            payload,
        }
    }

    #[test]
    fn crc64_is_crc64_xz() {
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn a_cut_batch_is_dropped_whole_and_the_prefix_ends_before_it() {
        let bytes = log_of(&[
            block(1, true, 0, b"a", b"x"),
            block(2, true, 1, b"b", b"y"),
            block(3, false, 0, b"c", b"z"),
        ]);
        let cut = bytes.len() - 5;
        let mut decoder = LogDecoder::new(&bytes[..cut], DecodeLimits::default());
        let first = decoder.next().unwrap().unwrap();
        assert_eq!(first.blocks.len(), 1);
        let damage = decoder.next().unwrap().unwrap_err();
        assert_eq!(damage.offset, first.end, "damage starts at the cut batch");
        assert_eq!(damage.reason, BadReason::Truncated);
        assert!(damage.is_tail());
        assert_eq!(decoder.valid_prefix_len(), first.end);
        assert!(decoder.next().is_none());
    }

    #[test]
    fn a_zero_filled_tail_is_named_as_such() {
        let mut bytes = log_of(&[block(1, true, 0, b"a", b"x")]);
        bytes.extend_from_slice(&[0u8; 100]);
        let items: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default()).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].as_ref().unwrap_err().reason, BadReason::ZeroFilled);
    }

    #[test]
    fn a_hole_followed_by_intact_blocks_resumes_after_the_hole() {
        let mut bytes = log_of(&[
            block(1, true, 0, b"a", b"x"),
            block(2, true, 0, b"b", b"y"),
            block(3, true, 0, b"c", b"z"),
        ]);
        let second = LOG_HEADER_LEN + block_len(1, 1);
        for b in &mut bytes[second..second + block_len(1, 1)] {
            *b = 0;
        }
        let items: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default()).collect();
        assert_eq!(items.len(), 3);
        let damage = items[1].as_ref().unwrap_err();
        assert_eq!(damage.offset, second as u64);
        assert_eq!(damage.resumes_at, Some((second + block_len(1, 1)) as u64));
        assert_eq!(items[2].as_ref().unwrap().blocks[0].seq, 3);
    }

    #[test]
    fn a_block_whose_seq_goes_back_is_damage_even_with_a_good_checksum() {
        let bytes = log_of(&[
            block(5, true, 0, b"a", b"x"),
            block(4, true, 0, b"b", b"y"),
            block(6, true, 0, b"c", b"z"),
        ]);
        let items: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default()).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(
            items[1].as_ref().unwrap_err().reason,
            BadReason::SeqNotIncreasing
        );
        assert_eq!(items[2].as_ref().unwrap().blocks[0].seq, 6);
    }

    #[test]
    fn a_batch_interrupted_by_another_is_broken() {
        let bytes = log_of(&[
            block(1, true, 2, b"a", b"x"),
            block(2, false, 1, b"a", b"y"),
            block(5, true, 0, b"c", b"z"),
        ]);
        let items: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default()).collect();
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].as_ref().unwrap_err().reason,
            BadReason::BrokenBatch
        );
        assert_eq!(items[1].as_ref().unwrap().blocks[0].seq, 5);
    }

    #[test]
    fn the_tail_of_a_batch_whose_start_was_damaged_is_not_a_batch() {
        let mut bytes = log_of(&[
            block(1, true, 1, b"a", b"x"),
            block(2, false, 0, b"b", b"y"),
            block(3, true, 0, b"c", b"z"),
        ]);
        bytes[LOG_HEADER_LEN + 40] ^= 1;
        let batches: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default())
            .filter_map(Result::ok)
            .collect();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].blocks[0].seq, 3);
    }

    #[test]
    fn a_huge_claimed_length_is_refused_without_reading_it() {
        let mut bytes = log_of(&[block(1, true, 0, b"a", b"x")]);
        let at = LOG_HEADER_LEN + 28;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let limits = DecodeLimits {
            key_len_max: 1024,
            payload_len_max: 1 << 20,
        };
        assert_eq!(
            decode_block(&bytes[LOG_HEADER_LEN..], &limits),
            Err(BadReason::OverLimit)
        );
        let default = decode_block(&bytes[LOG_HEADER_LEN..], &DecodeLimits::default());
        assert_eq!(default, Err(BadReason::Truncated));
    }

    #[test]
    fn bad_file_headers_are_told_apart() {
        assert_eq!(decode_log_header(b"WRITE"), Err(BadReason::HeaderTruncated));
        assert_eq!(decode_log_header(&[7u8; 16]), Err(BadReason::BadFileMagic));
        let mut header = Vec::new();
        encode_log_header(&mut header);
        header[8] = 9;
        assert_eq!(
            decode_log_header(&header),
            Err(BadReason::UnsupportedVersion(9))
        );
    }
}
