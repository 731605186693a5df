//! The byte layout of a segment, pure: its header, and the runs appended to it, each a
//! run header, a run index and the groups it describes (`docs/FORMAT.md`).
//!
//! ```text
//! segment  = header(32) run*
//! run      = run header(48) run index(index_len) group*
//! group    = group header(36) [body crc64(8)] record*   (one key's records, seq order)
//! record   = crc64(8) seq(8) payload_len(4) payload
//! ```
//!
//! Every part carries a CRC-64/XZ: the segment and run headers over their own bytes, the
//! run index over its entries, a group header and each record over the key's bytes
//! followed by their own (the key is not stored again in the group, but a group or record
//! read under the wrong key fails its check). A sealed group (written by compaction) also
//! carries one CRC over all of its records, so that a read checks a long group at the
//! speed of one checksum over its bytes instead of one per record; the records' own
//! checksums then only locate damage. Decoders never panic, never loop without consuming
//! input and never allocate from a length they have not checked against the input.

use crate::format::{crc64, BadReason, FORMAT_KEY_LEN_MAX};
use crate::keystore::varint;

/// Magic at the start of every segment.
pub const SEGMENT_MAGIC: [u8; 8] = *b"WLSEGMT1";
/// The segment format version.
pub const SEGMENT_VERSION: u32 = 1;
/// Length of a segment header.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Magic at the start of every run (`"WRUN"` little-endian).
pub const RUN_MAGIC: u32 = u32::from_le_bytes(*b"WRUN");
/// Length of a run header.
pub const RUN_HEADER_LEN: usize = 48;
/// Length of a plain group's header.
pub const GROUP_HEADER_LEN: usize = 36;
/// Length of a sealed group's header: the plain header, then the CRC of its records.
pub const SEALED_GROUP_HEADER_LEN: usize = GROUP_HEADER_LEN + 8;
/// The bit of a group header's `count` field that marks the group sealed.
const GROUP_SEALED_BIT: u32 = 1 << 31;
/// Length of a record header (before its payload).
pub const RECORD_HEADER_LEN: usize = 20;
/// A committer starts a new group for a key once its group holds this many bytes, so that
/// a read never loads much more than the records it wants.
pub const GROUP_BYTES_TARGET: usize = 64 << 10;
/// `prev_segment` of a group that has no earlier group.
const NO_SEGMENT: u32 = u32::MAX;

/// CRC-64/XZ of `key` followed by `bytes`: the check of group headers and records.
pub fn keyed_crc(key: &[u8], bytes: &[u8]) -> u64 {
    let mut digest = crc64fast::Digest::new();
    digest.write(key);
    digest.write(bytes);
    digest.sum64()
}

#[inline]
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from(le_u32(b, at)) | (u64::from(le_u32(b, at + 4)) << 32)
}

/// Appends a segment header.
pub fn encode_segment_header(out: &mut Vec<u8>, partition: u32, segment: u32) {
    let start = out.len();
    out.extend_from_slice(&SEGMENT_MAGIC);
    out.extend_from_slice(&SEGMENT_VERSION.to_le_bytes());
    out.extend_from_slice(&partition.to_le_bytes());
    out.extend_from_slice(&u64::from(segment).to_le_bytes());
    let crc = crc64(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, SEGMENT_HEADER_LEN);
}

/// Checks a segment header: it must name `partition` and `segment`.
pub fn check_segment_header(bytes: &[u8], partition: u32, segment: u32) -> Result<(), BadReason> {
    if bytes.len() < SEGMENT_HEADER_LEN {
        return Err(BadReason::HeaderTruncated);
    }
    if bytes[..8] != SEGMENT_MAGIC {
        return Err(BadReason::BadFileMagic);
    }
    if crc64(&bytes[..24]) != le_u64(bytes, 24) {
        return Err(BadReason::BadChecksum);
    }
    let version = le_u32(bytes, 8);
    if version != SEGMENT_VERSION {
        return Err(BadReason::UnsupportedVersion(version));
    }
    if le_u32(bytes, 12) != partition || le_u64(bytes, 16) != u64::from(segment) {
        return Err(BadReason::BadField);
    }
    Ok(())
}

/// A run's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunHeader {
    /// Bytes of the run index, its CRC included.
    pub index_len: u32,
    /// Bytes of the whole run: header, index and groups.
    pub run_len: u64,
    /// The lowest seq of any operation in the run.
    pub first_seq: u64,
    /// The highest seq of any operation in the run.
    pub last_seq: u64,
    /// Entries in the run index.
    pub entries: u32,
    /// Written by compaction: its groups are in key order, not seq order, and its seq
    /// range may overlap the other compacted runs of the same segment. Only the
    /// compacted runs at the start of a partition's first segment may be.
    pub compacted: bool,
}

/// The run header's flag for a compacted run.
const RUN_FLAG_COMPACTED: u32 = 1;

/// Appends a run header.
pub fn encode_run_header(out: &mut Vec<u8>, header: &RunHeader) {
    let start = out.len();
    out.extend_from_slice(&RUN_MAGIC.to_le_bytes());
    out.extend_from_slice(&header.index_len.to_le_bytes());
    out.extend_from_slice(&header.run_len.to_le_bytes());
    out.extend_from_slice(&header.first_seq.to_le_bytes());
    out.extend_from_slice(&header.last_seq.to_le_bytes());
    out.extend_from_slice(&header.entries.to_le_bytes());
    let flags = if header.compacted {
        RUN_FLAG_COMPACTED
    } else {
        0
    };
    out.extend_from_slice(&flags.to_le_bytes());
    let crc = crc64(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(out.len() - start, RUN_HEADER_LEN);
}

/// Decodes a run header; `room` is how many bytes of the segment remain from its start,
/// which the run must fit in.
pub fn decode_run_header(bytes: &[u8], room: u64) -> Result<RunHeader, BadReason> {
    if bytes.len() < RUN_HEADER_LEN {
        return Err(if bytes.iter().all(|&b| b == 0) {
            BadReason::ZeroFilled
        } else {
            BadReason::Truncated
        });
    }
    if le_u32(bytes, 0) != RUN_MAGIC {
        return Err(BadReason::BadMagic);
    }
    if crc64(&bytes[..40]) != le_u64(bytes, 40) {
        return Err(BadReason::BadChecksum);
    }
    let header = RunHeader {
        index_len: le_u32(bytes, 4),
        run_len: le_u64(bytes, 8),
        first_seq: le_u64(bytes, 16),
        last_seq: le_u64(bytes, 24),
        entries: le_u32(bytes, 32),
        compacted: le_u32(bytes, 36) == RUN_FLAG_COMPACTED,
    };
    let fixed = RUN_HEADER_LEN as u64 + u64::from(header.index_len);
    if le_u32(bytes, 36) & !RUN_FLAG_COMPACTED != 0
        || header.first_seq > header.last_seq
        || header.entries == 0
        || (header.index_len as usize) < 8
        || header.run_len < fixed
    {
        return Err(BadReason::BadField);
    }
    if header.run_len > room {
        return Err(BadReason::OverLimit);
    }
    Ok(header)
}

/// Which run may come next in a partition, walking its runs in order: compacted runs
/// only before every other run, each with keys above those of the compacted run before
/// it (compaction writes keys in order, a key's records in one run; their seq ranges may
/// overlap), and each other run only with seqs above all before it. So a stale run,
/// intact but out of place, is damage, compacted or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOrder {
    /// The highest seq of the runs so far.
    pub last_seq: u64,
    /// Whether every run so far was compacted.
    only_compacted: bool,
    /// The last key of the last compacted run.
    last_compacted_key: Option<Vec<u8>>,
}

impl Default for RunOrder {
    fn default() -> Self {
        RunOrder {
            last_seq: 0,
            only_compacted: true,
            last_compacted_key: None,
        }
    }
}

impl RunOrder {
    /// The order after the runs an index checkpoint covers: a checkpoint covers a whole
    /// compaction (it is written with it), so no compacted run may follow.
    pub fn after_checkpoint() -> Self {
        RunOrder {
            only_compacted: false,
            ..RunOrder::default()
        }
    }

    /// Whether the run `header` may come next, by its header alone.
    pub fn admits(&self, header: &RunHeader) -> bool {
        if header.compacted {
            self.only_compacted
        } else {
            header.first_seq > self.last_seq
        }
    }

    /// Whether the run `header` with index `entries` may come next.
    pub fn admits_run(&self, header: &RunHeader, entries: &[RunEntry]) -> bool {
        let keys_follow = !header.compacted
            || match (&self.last_compacted_key, entries.first()) {
                (Some(last), Some(first)) => first.key > *last,
                _ => true,
            };
        self.admits(header) && keys_follow
    }

    /// Moves past the run `header` with index `entries` (which it admits).
    pub fn pass(&mut self, header: &RunHeader, entries: &[RunEntry]) {
        debug_assert!(
            self.admits_run(header, entries),
            "only an admitted run is passed"
        );
        self.last_seq = self.last_seq.max(header.last_seq);
        self.only_compacted &= header.compacted;
        if header.compacted {
            self.last_compacted_key = entries.last().map(|e| e.key.clone());
        }
    }
}

/// One entry of a run index: one group of one key (a key whose records in the run fill
/// more than one group has an entry per group, in seq order), or, with no records, one
/// key's delete or truncate alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunEntry {
    /// The key.
    pub key: Vec<u8>,
    /// Bytes of the group (0 when `count` is 0: no group).
    pub group_len: u32,
    /// Records in the group.
    pub count: u32,
    /// The seq of the group's first record (with no records: `op_last`).
    pub first_seq: u64,
    /// The seq of the group's last record (with no records: `op_last`).
    pub last_seq: u64,
    /// The highest seq of any operation on the key in the run, deletes and truncates
    /// included: what the key holds once the run is applied.
    pub op_last: u64,
    /// Records of the key below this seq are gone (a delete or truncate in the run); 0
    /// when the run moved no floor.
    pub floor: u64,
}

/// The run index entries of one key: one per group (`groups`, each its records as
/// `(seq, payload)`, in seq order), or, with no group, one for its operation alone. Every
/// entry carries what the key holds once the run is applied: `op_last`, and the `floor`
/// the run moved it to (0: unmoved).
pub fn key_entries<'g, 'p: 'g>(
    key: &[u8],
    groups: impl IntoIterator<Item = &'g [(u64, &'p [u8])]>,
    form: GroupForm,
    (op_last, floor): (u64, u64),
) -> Vec<RunEntry> {
    let mut entries: Vec<RunEntry> = groups
        .into_iter()
        .map(|group| RunEntry {
            key: key.to_vec(),
            group_len: group_len(form, group.iter().map(|r| r.1.len())) as u32,
            count: group.len() as u32,
            first_seq: group[0].0,
            last_seq: group[group.len() - 1].0,
            op_last,
            floor,
        })
        .collect();
    if entries.is_empty() {
        entries.push(RunEntry {
            key: key.to_vec(),
            group_len: 0,
            count: 0,
            first_seq: op_last,
            last_seq: op_last,
            op_last,
            floor,
        });
    }
    entries
}

/// The start of a run of `entries` (sorted by key, then seq; not empty): its header and
/// index, in a buffer with room for the groups that follow (the caller appends them, in
/// the order of the entries). Its seq range is the entries'. Returns the bytes and the
/// header.
pub fn encode_run_start(entries: &[RunEntry], compacted: bool) -> (Vec<u8>, RunHeader) {
    let first_seq = entries.iter().map(|e| e.first_seq).min();
    let last_seq = entries.iter().map(|e| e.op_last).max();
    let (Some(first_seq), Some(last_seq)) = (first_seq, last_seq) else {
        panic!("a run has entries");
    };
    let mut index = Vec::new();
    encode_run_index(&mut index, first_seq, entries);
    let groups_len: u64 = entries.iter().map(|e| u64::from(e.group_len)).sum();
    let header = RunHeader {
        index_len: index.len() as u32,
        run_len: (RUN_HEADER_LEN + index.len()) as u64 + groups_len,
        first_seq,
        last_seq,
        entries: entries.len() as u32,
        compacted,
    };
    let mut bytes = Vec::with_capacity(header.run_len as usize);
    encode_run_header(&mut bytes, &header);
    bytes.extend_from_slice(&index);
    (bytes, header)
}

/// Encodes a run index (its entries, then their CRC).
pub fn encode_run_index(out: &mut Vec<u8>, run_first_seq: u64, entries: &[RunEntry]) {
    let start = out.len();
    for entry in entries {
        assert!(
            !entry.key.is_empty() && entry.key.len() <= FORMAT_KEY_LEN_MAX,
            "key length checked on submit"
        );
        assert!(entry.first_seq >= run_first_seq && entry.first_seq <= entry.last_seq);
        assert!(entry.last_seq <= entry.op_last);
        assert_eq!(
            entry.count == 0,
            entry.group_len == 0,
            "a group holds records"
        );
        varint::put(out, entry.key.len() as u64);
        out.extend_from_slice(&entry.key);
        varint::put(out, u64::from(entry.group_len));
        varint::put(out, u64::from(entry.count));
        varint::put(out, entry.first_seq - run_first_seq);
        varint::put(out, entry.last_seq - entry.first_seq);
        varint::put(out, entry.op_last - entry.last_seq);
        varint::put(out, entry.floor);
    }
    let crc = crc64(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Decodes the run index of a run whose header is `header` (`bytes` is exactly its
/// index). Checks that the entries are sorted by key (then seq), that their seqs lie in
/// the run's range, and that their groups exactly fill the run.
pub fn decode_run_index(bytes: &[u8], header: &RunHeader) -> Result<Vec<RunEntry>, BadReason> {
    if bytes.len() != header.index_len as usize || bytes.len() < 8 {
        return Err(BadReason::Truncated);
    }
    let (body, crc) = bytes.split_at(bytes.len() - 8);
    if crc64(body) != le_u64(crc, 0) {
        return Err(BadReason::BadChecksum);
    }
    // Each entry takes at least eight bytes: no allocation beyond what the input holds.
    if header.entries as usize > body.len() / 8 {
        return Err(BadReason::BadField);
    }
    let mut entries: Vec<RunEntry> = Vec::with_capacity(header.entries as usize);
    let mut pos = 0;
    let mut groups_len = 0u64;
    for _ in 0..header.entries {
        let entry = decode_entry(body, &mut pos, header).ok_or(BadReason::BadField)?;
        if let Some(before) = entries.last() {
            let ordered = before.key < entry.key
                || (before.key == entry.key && before.last_seq < entry.first_seq);
            if !ordered {
                return Err(BadReason::SeqNotIncreasing);
            }
        }
        groups_len += u64::from(entry.group_len);
        entries.push(entry);
    }
    let fixed = RUN_HEADER_LEN as u64 + u64::from(header.index_len);
    if pos != body.len() || fixed + groups_len != header.run_len {
        return Err(BadReason::BadField);
    }
    Ok(entries)
}

fn decode_entry(body: &[u8], pos: &mut usize, header: &RunHeader) -> Option<RunEntry> {
    let key_len = usize::try_from(varint::get(body, pos)?).ok()?;
    if key_len == 0 || key_len > FORMAT_KEY_LEN_MAX || body.len() - *pos < key_len {
        return None;
    }
    let key = body[*pos..*pos + key_len].to_vec();
    *pos += key_len;
    let group_len = u32::try_from(varint::get(body, pos)?).ok()?;
    let count = u32::try_from(varint::get(body, pos)?).ok()?;
    let first_seq = header.first_seq.checked_add(varint::get(body, pos)?)?;
    let last_seq = first_seq.checked_add(varint::get(body, pos)?)?;
    let op_last = last_seq.checked_add(varint::get(body, pos)?)?;
    let floor = varint::get(body, pos)?;
    let group_room =
        u64::from(count).checked_mul(RECORD_HEADER_LEN as u64)? + GROUP_HEADER_LEN as u64;
    let shape_ok = if count == 0 {
        group_len == 0 && first_seq == op_last
    } else {
        u64::from(group_len) >= group_room && u64::from(count) <= last_seq - first_seq + 1
    };
    (shape_ok && op_last <= header.last_seq && floor <= op_last + 1).then_some(RunEntry {
        key,
        group_len,
        count,
        first_seq,
        last_seq,
        op_last,
        floor,
    })
}

/// Where a group is: its segment, offset and length, and the seq of its last record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupRef {
    /// The segment's number within its partition.
    pub segment: u32,
    /// The group's offset in the segment.
    pub offset: u64,
    /// The group's length.
    pub len: u32,
    /// The seq of its last record.
    pub last_seq: u64,
}

/// How a group is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupForm {
    /// Its header and each record carry their own CRC (a committer's groups: mostly a
    /// record or two of a key per pass).
    Plain,
    /// As plain, and the header also carries one CRC of all the records, which a read
    /// checks instead of each record's (compaction's groups: up to 64 KiB of one key).
    Sealed,
}

impl GroupForm {
    /// The length of its header.
    pub fn header_len(self) -> usize {
        match self {
            GroupForm::Plain => GROUP_HEADER_LEN,
            GroupForm::Sealed => SEALED_GROUP_HEADER_LEN,
        }
    }
}

/// The length of a group of this form holding records with these payload lengths.
pub fn group_len(form: GroupForm, payload_lens: impl IntoIterator<Item = usize>) -> usize {
    form.header_len()
        + payload_lens
            .into_iter()
            .map(|len| RECORD_HEADER_LEN + len)
            .sum::<usize>()
}

/// Appends a group of `key`'s `records` (seqs strictly increasing), linked to the key's
/// previous group `prev`, checked as `form` says.
pub fn encode_group(
    out: &mut Vec<u8>,
    key: &[u8],
    prev: Option<GroupRef>,
    records: &[(u64, &[u8])],
    form: GroupForm,
) {
    assert!(!records.is_empty(), "a group holds records");
    assert!(
        records.len() < GROUP_SEALED_BIT as usize,
        "a group's count fits"
    );
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    let prev_ref = prev.unwrap_or(GroupRef {
        segment: NO_SEGMENT,
        offset: 0,
        len: 0,
        last_seq: 0,
    });
    out.extend_from_slice(&prev_ref.segment.to_le_bytes());
    out.extend_from_slice(&prev_ref.len.to_le_bytes());
    out.extend_from_slice(&prev_ref.offset.to_le_bytes());
    out.extend_from_slice(&prev_ref.last_seq.to_le_bytes());
    let sealed_bit = match form {
        GroupForm::Plain => 0,
        GroupForm::Sealed => GROUP_SEALED_BIT,
    };
    out.extend_from_slice(&(records.len() as u32 | sealed_bit).to_le_bytes());
    // A sealed header's body CRC is filled in once the records are written.
    out.resize(start + form.header_len(), 0);
    let body = out.len();
    let mut last = 0;
    for &(seq, payload) in records {
        assert!(seq > last, "a group's records are in seq order");
        last = seq;
        let at = out.len();
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(payload);
        let crc = keyed_crc(key, &out[at + 8..]);
        out[at..at + 8].copy_from_slice(&crc.to_le_bytes());
    }
    if form == GroupForm::Sealed {
        let crc = keyed_crc(key, &out[body..]);
        out[body - 8..body].copy_from_slice(&crc.to_le_bytes());
    }
    let crc = keyed_crc(key, &out[start + 8..body]);
    out[start..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded group: its link to the key's previous group and its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group<'a> {
    /// The key's previous group, if any.
    pub prev: Option<GroupRef>,
    /// The records decoded, in seq order, up to any damage.
    pub records: Vec<(u64, &'a [u8])>,
    /// The first damage, as (offset within the group, reason): the records after it are
    /// not returned.
    pub damage: Option<(usize, BadReason)>,
}

/// Where a decoded record's payload lies in its group's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordPlace {
    /// The record's seq.
    pub seq: u64,
    /// Where its payload starts in the group's bytes.
    pub start: usize,
    /// The payload's length.
    pub len: usize,
}

/// A decoded group as [`Group`], its records given by where they lie (what a read keeps
/// when it leaves the payloads in the bytes it read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupPlaces {
    /// The key's previous group, if any.
    pub prev: Option<GroupRef>,
    /// The records decoded, in seq order, up to any damage.
    pub records: Vec<RecordPlace>,
    /// The first damage, as in [`Group::damage`].
    pub damage: Option<(usize, BadReason)>,
}

/// Decodes a group of `key` (`bytes` is exactly the group). A damaged header is `Err`
/// (nothing in the group, its link included, can be trusted); a damaged record ends the
/// group there, reported in `damage`. A sealed group whose body CRC holds is read without
/// checking each record's; one whose body CRC fails is read record by record, to find
/// where the damage is (and if every record holds, the damage is reported at the body's
/// start and none of its records are returned).
pub fn decode_group<'a>(key: &[u8], bytes: &'a [u8]) -> Result<Group<'a>, BadReason> {
    let places = decode_group_places(key, bytes)?;
    Ok(Group {
        prev: places.prev,
        records: places
            .records
            .iter()
            .map(|r| (r.seq, &bytes[r.start..r.start + r.len]))
            .collect(),
        damage: places.damage,
    })
}

/// Decodes a group as [`decode_group`] does, giving where its records lie.
pub fn decode_group_places(key: &[u8], bytes: &[u8]) -> Result<GroupPlaces, BadReason> {
    if bytes.len() < GROUP_HEADER_LEN {
        return Err(BadReason::Truncated);
    }
    let raw_count = le_u32(bytes, 32);
    let form = if raw_count & GROUP_SEALED_BIT == 0 {
        GroupForm::Plain
    } else {
        GroupForm::Sealed
    };
    let header_len = form.header_len();
    if bytes.len() < header_len {
        return Err(BadReason::Truncated);
    }
    if keyed_crc(key, &bytes[8..header_len]) != le_u64(bytes, 0) {
        return Err(BadReason::BadChecksum);
    }
    let count = raw_count & !GROUP_SEALED_BIT;
    if count == 0 {
        return Err(BadReason::BadField);
    }
    let body_holds = form == GroupForm::Sealed
        && keyed_crc(key, &bytes[header_len..]) == le_u64(bytes, GROUP_HEADER_LEN);
    let prev = (le_u32(bytes, 8) != NO_SEGMENT).then(|| GroupRef {
        segment: le_u32(bytes, 8),
        len: le_u32(bytes, 12),
        offset: le_u64(bytes, 16),
        last_seq: le_u64(bytes, 24),
    });
    let mut group = GroupPlaces {
        prev,
        records: Vec::with_capacity((count as usize).min(bytes.len() / RECORD_HEADER_LEN)),
        damage: None,
    };
    let check = if body_holds {
        RecordCheck::Shape
    } else {
        RecordCheck::Crc
    };
    let mut pos = header_len;
    for _ in 0..count {
        match decode_record(key, &bytes[pos..], check) {
            Ok((seq, len)) if group.records.last().is_none_or(|r| r.seq < seq) => {
                group.records.push(RecordPlace {
                    seq,
                    start: pos + RECORD_HEADER_LEN,
                    len: len - RECORD_HEADER_LEN,
                });
                pos += len;
            }
            Ok(_) => {
                group.damage = Some((pos, BadReason::SeqNotIncreasing));
                return Ok(group);
            }
            Err(reason) => {
                group.damage = Some((pos, reason));
                return Ok(group);
            }
        }
    }
    if pos != bytes.len() {
        group.damage = Some((pos, BadReason::BadField));
    } else if form == GroupForm::Sealed && !body_holds {
        // Every record holds its own check but the body's fails: damage all the same.
        group.records.clear();
        group.damage = Some((header_len, BadReason::BadChecksum));
    }
    Ok(group)
}

/// What decoding a record checks besides its shape.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RecordCheck {
    /// Its own CRC too.
    Crc,
    /// Only its shape: the CRC of the sealed group's body it lies in held.
    Shape,
}

/// The record at the start of `input`: its seq and its whole length (header and payload).
#[inline]
fn decode_record(key: &[u8], input: &[u8], check: RecordCheck) -> Result<(u64, usize), BadReason> {
    if input.len() < RECORD_HEADER_LEN {
        return Err(BadReason::Truncated);
    }
    let total = RECORD_HEADER_LEN + le_u32(input, 16) as usize;
    if total > input.len() {
        return Err(BadReason::Truncated);
    }
    if check == RecordCheck::Crc && keyed_crc(key, &input[8..total]) != le_u64(input, 0) {
        return Err(BadReason::BadChecksum);
    }
    Ok((le_u64(input, 8), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, group_len: u32, count: u32, seqs: (u64, u64, u64), floor: u64) -> RunEntry {
        RunEntry {
            key: key.as_bytes().to_vec(),
            group_len,
            count,
            first_seq: seqs.0,
            last_seq: seqs.1,
            op_last: seqs.2,
            floor,
        }
    }

    #[test]
    fn a_segment_header_names_its_partition_and_number() {
        let mut bytes = Vec::new();
        encode_segment_header(&mut bytes, 3, 7);
        assert_eq!(check_segment_header(&bytes, 3, 7), Ok(()));
        assert_eq!(check_segment_header(&bytes, 3, 8), Err(BadReason::BadField));
        bytes[13] ^= 1;
        assert_eq!(
            check_segment_header(&bytes, 3, 7),
            Err(BadReason::BadChecksum)
        );
    }

    #[test]
    fn a_run_index_round_trips_and_refuses_disorder() {
        let len = group_len(GroupForm::Plain, [3]) as u32;
        let entries = vec![
            entry("a", len, 1, (10, 10, 10), 0),
            entry("a", len, 1, (11, 11, 12), 0),
            entry("b", 0, 0, (13, 13, 13), 14),
        ];
        let mut index = Vec::new();
        encode_run_index(&mut index, 10, &entries);
        let header = RunHeader {
            index_len: index.len() as u32,
            run_len: (RUN_HEADER_LEN + index.len()) as u64 + 2 * u64::from(len),
            first_seq: 10,
            last_seq: 13,
            entries: 3,
            compacted: false,
        };
        assert_eq!(decode_run_index(&index, &header).unwrap(), entries);
        let mut header_bytes = Vec::new();
        encode_run_header(&mut header_bytes, &header);
        assert_eq!(decode_run_header(&header_bytes, header.run_len), Ok(header));
        let compacted = RunHeader {
            compacted: true,
            ..header
        };
        let mut compacted_bytes = Vec::new();
        encode_run_header(&mut compacted_bytes, &compacted);
        assert_eq!(
            decode_run_header(&compacted_bytes, header.run_len),
            Ok(compacted)
        );
        assert_eq!(
            decode_run_header(&header_bytes, header.run_len - 1),
            Err(BadReason::OverLimit)
        );
        let short = RunHeader {
            run_len: header.run_len - 1,
            ..header
        };
        assert_eq!(decode_run_index(&index, &short), Err(BadReason::BadField));
        let mut swapped = entries.clone();
        swapped.swap(0, 1);
        let mut index = Vec::new();
        encode_run_index(&mut index, 10, &swapped);
        assert_eq!(
            decode_run_index(&index, &header),
            Err(BadReason::SeqNotIncreasing)
        );
    }

    #[test]
    fn a_group_checks_its_key_and_every_record() {
        let prev = GroupRef {
            segment: 1,
            offset: 99,
            len: 40,
            last_seq: 4,
        };
        let mut bytes = Vec::new();
        let records: &[(u64, &[u8])] = &[(5, b"five"), (6, b"six")];
        encode_group(&mut bytes, b"k", Some(prev), records, GroupForm::Plain);
        assert_eq!(bytes.len(), group_len(GroupForm::Plain, [4, 3]));
        let group = decode_group(b"k", &bytes).unwrap();
        assert_eq!(group.prev, Some(prev));
        assert_eq!(group.records, vec![(5, &b"five"[..]), (6, &b"six"[..])]);
        assert_eq!(group.damage, None);
        assert_eq!(decode_group(b"other", &bytes), Err(BadReason::BadChecksum));
        let mut rotten = bytes.clone();
        *rotten.last_mut().unwrap() ^= 1;
        let group = decode_group(b"k", &rotten).unwrap();
        assert_eq!(group.records.len(), 1);
        assert_eq!(
            group.damage,
            Some((
                GROUP_HEADER_LEN + RECORD_HEADER_LEN + 4,
                BadReason::BadChecksum
            ))
        );
    }

    #[test]
    fn a_sealed_group_checks_its_body_once_and_still_finds_where_damage_is() {
        let records: Vec<(u64, Vec<u8>)> = (1..=50).map(|seq| (seq, vec![seq as u8; 90])).collect();
        let pairs: Vec<(u64, &[u8])> = records.iter().map(|(s, p)| (*s, p.as_slice())).collect();
        let mut bytes = Vec::new();
        encode_group(&mut bytes, b"k", None, &pairs, GroupForm::Sealed);
        assert_eq!(bytes.len(), group_len(GroupForm::Sealed, [90; 50]));
        let group = decode_group(b"k", &bytes).unwrap();
        assert_eq!(group.records, pairs);
        assert_eq!((group.prev, group.damage), (None, None));
        assert_eq!(decode_group(b"j", &bytes), Err(BadReason::BadChecksum));
        // Rot in the tenth record: the nine before it are returned, the damage located.
        let tenth = SEALED_GROUP_HEADER_LEN + 9 * (RECORD_HEADER_LEN + 90);
        let mut rotten = bytes.clone();
        rotten[tenth + RECORD_HEADER_LEN + 5] ^= 1;
        let group = decode_group(b"k", &rotten).unwrap();
        assert_eq!(group.records, pairs[..9]);
        assert_eq!(group.damage, Some((tenth, BadReason::BadChecksum)));
        // A record rewritten whole with its own CRC holding: only the body's CRC sees it.
        let mut forged = bytes.clone();
        forged[tenth + RECORD_HEADER_LEN] ^= 1;
        let crc = keyed_crc(b"k", &forged[tenth + 8..tenth + RECORD_HEADER_LEN + 90]);
        forged[tenth..tenth + 8].copy_from_slice(&crc.to_le_bytes());
        let group = decode_group(b"k", &forged).unwrap();
        assert!(group.records.is_empty());
        assert_eq!(
            group.damage,
            Some((SEALED_GROUP_HEADER_LEN, BadReason::BadChecksum))
        );
        // The sealed bit or the body CRC flipped: the header's own CRC refuses it.
        for at in [35, GROUP_HEADER_LEN + 2] {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x80;
            assert_eq!(decode_group(b"k", &flipped), Err(BadReason::BadChecksum));
        }
        // Cut inside the sealed header.
        assert_eq!(
            decode_group(b"k", &bytes[..GROUP_HEADER_LEN + 4]),
            Err(BadReason::Truncated)
        );
    }
}
