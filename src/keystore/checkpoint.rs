//! An index checkpoint: one partition's index entries as of a point in its segments, in a
//! file of its own (`keys/p{NNN}/index-{n}.idx`), sorted by key in checksummed blocks of
//! about [`BLOCK_BYTES_TARGET`], with a directory of the blocks' first keys at its end.
//!
//! ```text
//! block*      crc64(8) count u32 body_len u32 body   (body: count entries)
//! entry       varint key_len, key, flags u8 (bit 0: a head), [head: varint segment,
//!             offset, len, last_seq], varint last_seq, varint floor
//! directory   per block: varint first_key_len, first_key, varint offset, varint len;
//!             then crc64 over it
//! trailer(32) magic "WLIDXFT1"(8) directory_offset u64 directory_len u32 blocks u32
//!             crc64 over the 24 bytes before it
//! ```
//!
//! Only the directory is held in memory (about one key per block), so the index's memory
//! is bounded: a lookup that misses the in-memory entries reads one block. The MANIFEST
//! names each partition's checkpoint and the position in its segments it covers; opening
//! reads only the runs after that position.

use std::path::PathBuf;

use super::segment::GroupRef;
use super::{partition_dir, varint, KeyEntry};
use crate::error::{Error, IoContext, Result};
use crate::format::{crc64, BadReason, FORMAT_KEY_LEN_MAX};
use crate::fs::{Fs, FsFile};

/// A block is closed once it holds this many bytes.
pub const BLOCK_BYTES_TARGET: usize = 4096;
/// Length of a block's header.
pub const BLOCK_HEADER_LEN: usize = 16;
/// Magic of a checkpoint's trailer.
pub const TRAILER_MAGIC: [u8; 8] = *b"WLIDXFT1";
/// Length of a checkpoint's trailer.
pub const TRAILER_LEN: usize = 32;

/// A block's entries, in key order.
pub type Entries = Vec<(Vec<u8>, KeyEntry)>;
/// Damage met in a checkpoint: the file, the offset and what.
pub type Damage = (PathBuf, u64, BadReason);

/// The path of checkpoint `number` of `partition`.
pub fn checkpoint_path(partition: u32, number: u32) -> PathBuf {
    partition_dir(partition).join(checkpoint_file_name(number))
}

/// A checkpoint's file name: `index-{n:08}.idx`.
pub fn checkpoint_file_name(number: u32) -> String {
    format!("index-{number:08}.idx")
}

/// The number of a checkpoint's file name, or `None` for a name that is not one.
pub fn parse_checkpoint_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("index-")?.strip_suffix(".idx")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One block as the directory knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockRef {
    /// The first key in the block.
    pub first_key: Vec<u8>,
    /// Where the block starts.
    pub offset: u64,
    /// Its length, header included.
    pub len: u32,
}

/// A loaded checkpoint: which file it is and its directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its number in the partition.
    pub number: u32,
    /// Its blocks, in key order.
    pub blocks: Vec<BlockRef>,
    /// The file's length.
    pub file_len: u64,
}

impl Checkpoint {
    /// Memory the directory is counted for.
    pub fn bytes(&self) -> u64 {
        self.blocks
            .iter()
            .map(|b| b.first_key.len() as u64 + 48)
            .sum()
    }

    /// The block that would hold `key`, if any.
    pub fn block_for(&self, key: &[u8]) -> Option<&BlockRef> {
        let after = self
            .blocks
            .partition_point(|b| b.first_key.as_slice() <= key);
        after.checked_sub(1).map(|at| &self.blocks[at])
    }
}

fn put_entry(out: &mut Vec<u8>, key: &[u8], entry: &KeyEntry) {
    varint::put(out, key.len() as u64);
    out.extend_from_slice(key);
    match entry.head {
        Some(head) => {
            out.push(1);
            varint::put(out, u64::from(head.segment));
            varint::put(out, head.offset);
            varint::put(out, u64::from(head.len));
            varint::put(out, head.last_seq);
        }
        None => out.push(0),
    }
    varint::put(out, entry.last_seq);
    varint::put(out, entry.floor);
}

fn get_entry(body: &[u8], pos: &mut usize) -> Option<(Vec<u8>, KeyEntry)> {
    let key_len = usize::try_from(varint::get(body, pos)?).ok()?;
    if key_len == 0 || key_len > FORMAT_KEY_LEN_MAX || body.len().saturating_sub(*pos) < key_len {
        return None;
    }
    let key = body[*pos..*pos + key_len].to_vec();
    *pos += key_len;
    let flags = *body.get(*pos)?;
    *pos += 1;
    let head = match flags {
        0 => None,
        1 => Some(GroupRef {
            segment: u32::try_from(varint::get(body, pos)?).ok()?,
            offset: varint::get(body, pos)?,
            len: u32::try_from(varint::get(body, pos)?).ok()?,
            last_seq: varint::get(body, pos)?,
        }),
        _ => return None,
    };
    let last_seq = varint::get(body, pos)?;
    let floor = varint::get(body, pos)?;
    Some((
        key,
        KeyEntry {
            head,
            last_seq,
            floor,
        },
    ))
}

/// Decodes one block (`bytes` is exactly the block): its entries, in key order.
pub fn decode_block(bytes: &[u8]) -> Result<Entries, BadReason> {
    if bytes.len() < BLOCK_HEADER_LEN {
        return Err(BadReason::Truncated);
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let crc = u64::from(word(0)) | (u64::from(word(4)) << 32);
    let (count, body_len) = (word(8) as usize, word(12) as usize);
    if BLOCK_HEADER_LEN + body_len != bytes.len() {
        return Err(BadReason::BadField);
    }
    if crc64(&bytes[8..]) != crc {
        return Err(BadReason::BadChecksum);
    }
    let body = &bytes[BLOCK_HEADER_LEN..];
    if count > body.len() / 4 {
        return Err(BadReason::BadField);
    }
    let mut entries: Vec<(Vec<u8>, KeyEntry)> = Vec::with_capacity(count);
    let mut pos = 0;
    for _ in 0..count {
        let entry = get_entry(body, &mut pos).ok_or(BadReason::BadField)?;
        if entries.last().is_some_and(|(before, _)| *before >= entry.0) {
            return Err(BadReason::SeqNotIncreasing);
        }
        entries.push(entry);
    }
    if pos != body.len() {
        return Err(BadReason::BadField);
    }
    Ok(entries)
}

/// Decodes a checkpoint's trailer and directory from the file's `len` and its last bytes.
fn decode_directory(bytes: &[u8], file_len: u64) -> Result<Vec<BlockRef>, BadReason> {
    if bytes.len() < TRAILER_LEN {
        return Err(BadReason::Truncated);
    }
    let trailer = &bytes[bytes.len() - TRAILER_LEN..];
    let le64 = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    if trailer[..8] != TRAILER_MAGIC {
        return Err(BadReason::BadMagic);
    }
    if crc64(&trailer[..24]) != le64(&trailer[24..32]) {
        return Err(BadReason::BadChecksum);
    }
    let dir_offset = le64(&trailer[8..16]);
    let dir_len = u32::from_le_bytes(trailer[16..20].try_into().expect("4 bytes")) as u64;
    let blocks = u32::from_le_bytes(trailer[20..24].try_into().expect("4 bytes")) as usize;
    if dir_offset + dir_len + TRAILER_LEN as u64 != file_len || dir_len < 8 {
        return Err(BadReason::BadField);
    }
    let start = bytes.len() - TRAILER_LEN - dir_len as usize;
    let directory = &bytes[start..bytes.len() - TRAILER_LEN];
    let (body, crc) = directory.split_at(directory.len() - 8);
    if crc64(body) != le64(crc) {
        return Err(BadReason::BadChecksum);
    }
    if blocks > body.len() / 3 {
        return Err(BadReason::BadField);
    }
    let mut refs: Vec<BlockRef> = Vec::with_capacity(blocks);
    let mut pos = 0;
    for _ in 0..blocks {
        let block = (|| {
            let key_len = usize::try_from(varint::get(body, &mut pos)?).ok()?;
            let first_key = body.get(pos..pos.checked_add(key_len)?)?.to_vec();
            pos += key_len;
            let offset = varint::get(body, &mut pos)?;
            let len = u32::try_from(varint::get(body, &mut pos)?).ok()?;
            Some(BlockRef {
                first_key,
                offset,
                len,
            })
        })()
        .ok_or(BadReason::BadField)?;
        let expected = refs.last().map_or(0, |b| b.offset + u64::from(b.len));
        if block.offset != expected || refs.last().is_some_and(|b| b.first_key >= block.first_key) {
            return Err(BadReason::BadField);
        }
        refs.push(block);
    }
    let end = refs.last().map_or(0, |b| b.offset + u64::from(b.len));
    if pos != body.len() || end != dir_offset {
        return Err(BadReason::BadField);
    }
    Ok(refs)
}

/// Loads checkpoint `number` of `partition`: reads its trailer and directory. The inner
/// `Err` is damage (with its offset).
pub fn load<F: Fs>(
    fs: &F,
    partition: u32,
    number: u32,
) -> Result<Result<Checkpoint, (u64, BadReason)>> {
    let path = checkpoint_path(partition, number);
    let Some(len) = fs.len(&path).io("inspecting", &path)? else {
        return Ok(Err((0, BadReason::Missing)));
    };
    if len < TRAILER_LEN as u64 {
        return Ok(Err((0, BadReason::Truncated)));
    }
    let trailer = fs
        .read_at(&path, len - TRAILER_LEN as u64, TRAILER_LEN)
        .io("reading", &path)?;
    let dir_len = u32::from_le_bytes(trailer[16..20].try_into().expect("4 bytes")) as u64;
    let tail_len = (dir_len + TRAILER_LEN as u64).min(len);
    let tail = fs
        .read_at(&path, len - tail_len, tail_len as usize)
        .io("reading", &path)?;
    Ok(decode_directory(&tail, len)
        .map(|blocks| Checkpoint {
            number,
            blocks,
            file_len: len,
        })
        .map_err(|reason| (len - tail_len, reason)))
}

/// Reads the block of `checkpoint` at `block`. The inner `Err` is damage.
pub fn read_block<F: Fs>(
    fs: &F,
    partition: u32,
    checkpoint: &Checkpoint,
    block: &BlockRef,
) -> Result<Result<Entries, Damage>> {
    let path = checkpoint_path(partition, checkpoint.number);
    let bytes = fs
        .read_at(&path, block.offset, block.len as usize)
        .io("reading", &path)?;
    Ok(decode_block(&bytes).map_err(|reason| (path, block.offset, reason)))
}

/// Appends the block of `body` (`count` entries from `first_key`) to `out`, whose first byte
/// is at `written` in the file, and adds it to `blocks`.
fn close_block(
    body: &mut Vec<u8>,
    count: &mut u32,
    first_key: &mut Vec<u8>,
    out: &mut Vec<u8>,
    written: u64,
    blocks: &mut Vec<BlockRef>,
) {
    let offset = written + out.len() as u64;
    let start = out.len();
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    let crc = crc64(&out[start + 8..]);
    out[start..start + 8].copy_from_slice(&crc.to_le_bytes());
    let len = (out.len() - start) as u32;
    blocks.push(BlockRef {
        first_key: std::mem::take(first_key),
        offset,
        len,
    });
    body.clear();
    *count = 0;
}

/// Writes a checkpoint of `entries` (sorted by key, each once) as checkpoint `number` of
/// `partition`, makes it durable (file, then its directory entry), and returns it.
pub fn write<F: Fs>(
    fs: &F,
    partition: u32,
    number: u32,
    entries: impl Iterator<Item = (Vec<u8>, KeyEntry)>,
) -> Result<Checkpoint> {
    let mut writer = CheckpointWriter::new(fs, partition, number)?;
    for (key, entry) in entries {
        writer.push(&key, &entry)?;
    }
    writer.finish(fs)
}

/// A checkpoint being written, entry by entry in key order (what [`write`] does, for a
/// caller that produces its entries as it goes: compaction).
pub struct CheckpointWriter<F: Fs> {
    partition: u32,
    number: u32,
    path: PathBuf,
    file: F::File,
    /// Encoded bytes not yet appended to the file.
    out: Vec<u8>,
    blocks: Vec<BlockRef>,
    /// The open block's entries.
    body: Vec<u8>,
    count: u32,
    first_key: Vec<u8>,
    /// Bytes appended to the file so far.
    written: u64,
    last_key: Option<Vec<u8>>,
}

impl<F: Fs> CheckpointWriter<F> {
    /// Creates checkpoint `number` of `partition`; there must be none of that number.
    pub fn new(fs: &F, partition: u32, number: u32) -> Result<Self> {
        let path = checkpoint_path(partition, number);
        // Opening removed every checkpoint the MANIFEST does not name, and a named one's
        // number is never reused: none is here, and none is ever written over.
        if fs.len(&path).io("inspecting", &path)?.is_some() {
            return Err(Error::CommitFailed(crate::Failure::without_cause(format!(
                "{} exists, yet the key store does not name it",
                path.display()
            ))));
        }
        let file = fs.create(&path).io("creating", &path)?;
        Ok(CheckpointWriter {
            partition,
            number,
            path,
            file,
            out: Vec::with_capacity(1 << 20),
            blocks: Vec::new(),
            body: Vec::with_capacity(BLOCK_BYTES_TARGET * 2),
            count: 0,
            first_key: Vec::new(),
            written: 0,
            last_key: None,
        })
    }

    /// Adds the entry of `key`, which sorts after every key added before.
    pub fn push(&mut self, key: &[u8], entry: &KeyEntry) -> Result<()> {
        assert!(
            self.last_key.as_deref().is_none_or(|last| last < key),
            "a checkpoint's keys are sorted, each once"
        );
        if self.count == 0 {
            self.first_key = key.to_vec();
        }
        put_entry(&mut self.body, key, entry);
        self.count += 1;
        self.last_key = Some(key.to_vec());
        if self.body.len() >= BLOCK_BYTES_TARGET {
            self.close_block();
        }
        if self.out.len() >= 1 << 20 {
            self.file.append(&self.out).io("writing", &self.path)?;
            self.written += self.out.len() as u64;
            self.out.clear();
        }
        Ok(())
    }

    fn close_block(&mut self) {
        close_block(
            &mut self.body,
            &mut self.count,
            &mut self.first_key,
            &mut self.out,
            self.written,
            &mut self.blocks,
        );
    }

    /// Writes the directory and trailer and makes the checkpoint durable (file, then its
    /// directory entry).
    pub fn finish(mut self, fs: &F) -> Result<Checkpoint> {
        if self.count > 0 {
            self.close_block();
        }
        let out = &mut self.out;
        let dir_offset = self.written + out.len() as u64;
        let dir_start = out.len();
        for block in &self.blocks {
            varint::put(out, block.first_key.len() as u64);
            out.extend_from_slice(&block.first_key);
            varint::put(out, block.offset);
            varint::put(out, u64::from(block.len));
        }
        let crc = crc64(&out[dir_start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        let dir_len = (out.len() - dir_start) as u32;
        let trailer_start = out.len();
        out.extend_from_slice(&TRAILER_MAGIC);
        out.extend_from_slice(&dir_offset.to_le_bytes());
        out.extend_from_slice(&dir_len.to_le_bytes());
        out.extend_from_slice(&(self.blocks.len() as u32).to_le_bytes());
        let crc = crc64(&out[trailer_start..]);
        out.extend_from_slice(&crc.to_le_bytes());
        self.file.append(out).io("writing", &self.path)?;
        self.file.sync_data().io("syncing", &self.path)?;
        let dir = partition_dir(self.partition);
        fs.sync_dir(&dir).io("fsyncing", &dir)?;
        let file_len = self.written + out.len() as u64;
        Ok(Checkpoint {
            number: self.number,
            blocks: self.blocks,
            file_len,
        })
    }
}

/// Every entry of `checkpoint`, block by block, in key order.
pub fn for_each<F: Fs>(
    fs: &F,
    partition: u32,
    checkpoint: &Checkpoint,
    mut each: impl FnMut(Vec<u8>, KeyEntry) -> Result<()>,
) -> Result<Result<(), Damage>> {
    for block in &checkpoint.blocks {
        match read_block(fs, partition, checkpoint, block)? {
            Ok(entries) => {
                for (key, entry) in entries {
                    each(key, entry)?;
                }
            }
            Err(damage) => return Ok(Err(damage)),
        }
    }
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    fn entry(n: u64) -> KeyEntry {
        KeyEntry {
            head: (!n.is_multiple_of(3)).then_some(GroupRef {
                segment: n as u32 % 4,
                offset: n * 100,
                len: 60,
                last_seq: n,
            }),
            last_seq: n + 1,
            floor: n % 5,
        }
    }

    #[test]
    fn a_checkpoint_round_trips_and_finds_every_key() {
        let fs = MemFs::new();
        fs.create_dir_all(&partition_dir(2)).unwrap();
        let entries: Vec<(Vec<u8>, KeyEntry)> = (0..3000u64)
            .map(|n| (format!("key-{n:06}").into_bytes(), entry(n)))
            .collect();
        let written = write(&fs, 2, 7, entries.clone().into_iter()).unwrap();
        assert!(written.blocks.len() > 10, "{} blocks", written.blocks.len());
        let loaded = load(&fs, 2, 7).unwrap().unwrap();
        assert_eq!(loaded, written);
        for (key, expected) in entries.iter().step_by(97) {
            let block = loaded.block_for(key).unwrap();
            let found = read_block(&fs, 2, &loaded, block).unwrap().unwrap();
            assert_eq!(
                found.iter().find(|(k, _)| k == key).map(|(_, e)| e),
                Some(expected)
            );
        }
        assert!(loaded.block_for(b"a").is_none(), "before the first key");
        let mut all = Vec::new();
        for_each(&fs, 2, &loaded, |k, e| {
            all.push((k, e));
            Ok(())
        })
        .unwrap()
        .unwrap();
        assert_eq!(all, entries);
        // Damage anywhere in the file is found: in the directory by load, in a block by
        // the read of that block.
        let path = checkpoint_path(2, 7);
        let bytes = fs.read(&path).unwrap();
        for at in (0..bytes.len()).step_by(211) {
            let mut rotten = bytes.clone();
            rotten[at] ^= 0x04;
            fs.put(&path, &rotten).unwrap();
            let found = match load(&fs, 2, 7).unwrap() {
                Err(_) => true,
                Ok(dir) => dir
                    .blocks
                    .iter()
                    .any(|b| read_block(&fs, 2, &dir, b).unwrap().is_err()),
            };
            assert!(found, "a flip at {at} is found");
        }
    }

    #[test]
    fn an_empty_checkpoint_is_valid() {
        let fs = MemFs::new();
        fs.create_dir_all(&partition_dir(0)).unwrap();
        let written = write(&fs, 0, 0, std::iter::empty()).unwrap();
        assert_eq!(load(&fs, 0, 0).unwrap().unwrap(), written);
        assert!(written.blocks.is_empty());
    }
}
