//! The key store: one file per key under `keys/`, fanned out by a hash of the key, plus
//! the durable applied watermark `keys/WATERMARK`.
//!
//! A key never becomes a path: a key's file is `keys/{h:02x}/{hash:016x}.key` where `hash`
//! is [`key_hash`] and `h` its top byte; when two keys share a hash, the second takes
//! `{hash:016x}-1.key`, and so on. The full key is kept in the file's header, so the file
//! that belongs to a key is the first probe whose header names it.
//!
//! Key file: a header (magic, version, the key, a CRC-64 of the header) and records, each
//! with its own CRC-64 (`docs/FORMAT.md`). A record is an append or a tombstone; a key's
//! records are those after its last tombstone. A delete rewrites the file to its header
//! plus one tombstone, so the key's highest applied seq survives the delete and a replayed
//! older append is skipped rather than resurrecting the key. A torn tail (a crash during
//! an append) is ignored by readers and cut by the committer before it appends.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::format::{crc64, BadReason, FORMAT_KEY_LEN_MAX, FORMAT_PAYLOAD_LEN_MAX};
use crate::fs::Fs;
use crate::seq_file;

/// The key store's directory.
pub const KEYS_DIR: &str = "keys";
/// The durable applied watermark.
pub const WATERMARK_FILE: &str = "keys/WATERMARK";
const WATERMARK_TMP: &str = "keys/WATERMARK.tmp";
/// Magic bytes at the start of every key file.
pub const KEY_FILE_MAGIC: [u8; 8] = *b"WLKEYFIL";
/// The key file format version.
pub const KEY_FILE_VERSION: u32 = 1;
/// Magic number at the start of every key-file record (`"WREC"` little-endian).
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"WREC");
/// Length of a key-file record header.
pub const RECORD_HEADER_LEN: usize = 28;
const WATERMARK_MAGIC: [u8; 8] = *b"WLWATER1";
/// Probes tried for one hash before giving up (a hash collision this deep is an attack).
pub const PROBES_MAX: u32 = 64;

/// FNV-1a, 64-bit, over the key's bytes: the specified, stable hash that names key files
/// and picks a key's committer (`key_hash(key) % committers`). Test vectors: `""` →
/// `0xcbf29ce484222325`, `"a"` → `0xaf63dc4c8601ec8c`, `"foobar"` → `0x85944171f73967e8`.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in key {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The committer (of `committers`) that owns `key`.
pub fn committer_for(key: &[u8], committers: usize) -> usize {
    (key_hash(key) % committers.max(1) as u64) as usize
}

/// The fan-out directory of a hash: `keys/{top byte:02x}`.
pub fn fanout_dir(hash: u64) -> PathBuf {
    Path::new(KEYS_DIR).join(format!("{:02x}", hash >> 56))
}

/// The path of probe `probe` for `hash`.
pub fn key_file_path(hash: u64, probe: u32) -> PathBuf {
    let name = if probe == 0 {
        format!("{hash:016x}.key")
    } else {
        format!("{hash:016x}-{probe}.key")
    };
    fanout_dir(hash).join(name)
}

/// What a key-file record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A record of the key.
    Append,
    /// The key was deleted at this seq; records before it are gone.
    Tombstone,
}

/// One record of a key file, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The record's seq.
    pub seq: u64,
    /// Append or tombstone.
    pub kind: RecordKind,
    /// The payload; empty for a tombstone.
    pub payload: Vec<u8>,
}

/// Encodes a key file's header.
pub fn encode_key_header(out: &mut Vec<u8>, key: &[u8]) {
    assert!(
        !key.is_empty() && key.len() <= FORMAT_KEY_LEN_MAX,
        "key length checked on submit"
    );
    let start = out.len();
    out.extend_from_slice(&KEY_FILE_MAGIC);
    out.extend_from_slice(&KEY_FILE_VERSION.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(key);
    let crc = crc64(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The length of a key file's header for a key of `key_len` bytes.
pub fn key_header_len(key_len: usize) -> usize {
    16 + key_len + 8
}

/// Encodes one key-file record.
pub fn encode_key_record(out: &mut Vec<u8>, seq: u64, kind: RecordKind, payload: &[u8]) {
    assert!(
        payload.len() <= FORMAT_PAYLOAD_LEN_MAX,
        "payload length checked on submit"
    );
    assert!(
        kind == RecordKind::Append || payload.is_empty(),
        "a tombstone has no payload"
    );
    let start = out.len();
    out.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.push(match kind {
        RecordKind::Append => 1,
        RecordKind::Tombstone => 2,
    });
    out.extend_from_slice(&[0u8; 3]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc64(&out[start + 12..]);
    out[start + 4..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// A decoded key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFile {
    /// The key the header names.
    pub key: Vec<u8>,
    /// The key's live records (after the last tombstone), in seq order.
    pub records: Vec<KeyRecord>,
    /// The highest seq in the file, tombstones included: what the key already holds.
    pub last_seq: u64,
    /// Bytes of header and intact records; a committer cuts the file here.
    pub valid_len: u64,
    /// The first damage after the header, if any: where reading stopped.
    pub damage: Option<(u64, BadReason)>,
}

/// Decodes a key file. `Err` when the header itself is damaged (the file names no key).
/// Never panics, never allocates from an unchecked length.
pub fn decode_key_file(bytes: &[u8]) -> Result<KeyFile, BadReason> {
    if bytes.len() < 16 {
        return Err(BadReason::HeaderTruncated);
    }
    if bytes[..8] != KEY_FILE_MAGIC {
        return Err(BadReason::BadFileMagic);
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != KEY_FILE_VERSION {
        return Err(BadReason::UnsupportedVersion(version));
    }
    let key_len = usize::from(u16::from_le_bytes([bytes[12], bytes[13]]));
    if key_len == 0 || bytes[14..16] != [0, 0] {
        return Err(BadReason::BadField);
    }
    let header_len = key_header_len(key_len);
    if bytes.len() < header_len {
        return Err(BadReason::HeaderTruncated);
    }
    let stored = u64::from_le_bytes(
        bytes[header_len - 8..header_len]
            .try_into()
            .map_err(|_| BadReason::BadField)?,
    );
    if crc64(&bytes[..header_len - 8]) != stored {
        return Err(BadReason::BadChecksum);
    }
    let mut file = KeyFile {
        key: bytes[16..16 + key_len].to_vec(),
        records: Vec::new(),
        last_seq: 0,
        valid_len: header_len as u64,
        damage: None,
    };
    let mut pos = header_len;
    while pos < bytes.len() {
        match decode_key_record(&bytes[pos..]) {
            Ok((seq, kind, payload, len)) if seq > file.last_seq => {
                file.last_seq = seq;
                match kind {
                    RecordKind::Tombstone => file.records.clear(),
                    RecordKind::Append => file.records.push(KeyRecord {
                        seq,
                        kind,
                        payload: payload.to_vec(),
                    }),
                }
                pos += len;
                file.valid_len = pos as u64;
            }
            Ok(_) => {
                file.damage = Some((pos as u64, BadReason::SeqNotIncreasing));
                break;
            }
            Err(reason) => {
                file.damage = Some((pos as u64, reason));
                break;
            }
        }
    }
    Ok(file)
}

/// One record of a key file as `inspect` shows it: where it is and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileEntry {
    /// Offset of the record in the file.
    pub offset: u64,
    /// The record's seq.
    pub seq: u64,
    /// Append or tombstone.
    pub kind: RecordKind,
    /// Payload bytes.
    pub payload_len: u64,
}

/// Every record of a key file in file order (tombstoned ones too), and, when the file is
/// damaged, whether an intact record follows the damage (damage in the middle, which loses
/// records, rather than a torn tail, which a committer cuts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFileWalk {
    /// The file as `decode_key_file` reads it.
    pub file: KeyFile,
    /// Its records in file order, up to the first damage.
    pub entries: Vec<KeyFileEntry>,
    /// The offset of an intact record after the damage, if any.
    pub intact_after_damage: Option<u64>,
}

/// Walks a key file for inspection. `Err` when the header itself is damaged.
pub fn walk_key_file(bytes: &[u8]) -> Result<KeyFileWalk, BadReason> {
    let file = decode_key_file(bytes)?;
    let mut entries = Vec::new();
    let mut pos = key_header_len(file.key.len());
    while (pos as u64) < file.valid_len {
        let Ok((seq, kind, payload, len)) = decode_key_record(&bytes[pos..]) else {
            break;
        };
        entries.push(KeyFileEntry {
            offset: pos as u64,
            seq,
            kind,
            payload_len: payload.len() as u64,
        });
        pos += len;
    }
    // Look for an intact record after the damage at offsets that start with the record
    // magic, at most `RESYNC_CANDIDATES_MAX` of them: a hostile file full of magics that
    // claim long payloads would otherwise cost a checksum over the rest of the file at
    // each. Past the bound the answer is "maybe": reported as an intact record there.
    const RESYNC_CANDIDATES_MAX: usize = 1024;
    let magic = RECORD_MAGIC.to_le_bytes();
    let intact_after_damage = match file.damage {
        Some((at, _)) => (at as usize + 1..bytes.len())
            .filter(|&from| bytes[from..].starts_with(&magic))
            .take(RESYNC_CANDIDATES_MAX + 1)
            .enumerate()
            .find(|&(i, from)| {
                i == RESYNC_CANDIDATES_MAX || decode_key_record(&bytes[from..]).is_ok()
            })
            .map(|(_, from)| from as u64),
        None => None,
    };
    Ok(KeyFileWalk {
        file,
        entries,
        intact_after_damage,
    })
}

fn decode_key_record(input: &[u8]) -> Result<(u64, RecordKind, &[u8], usize), BadReason> {
    if input.len() < RECORD_HEADER_LEN {
        return Err(if input.iter().all(|&b| b == 0) {
            BadReason::ZeroFilled
        } else {
            BadReason::Truncated
        });
    }
    let word =
        |at: usize| u32::from_le_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]]);
    let dword = |at: usize| u64::from(word(at)) | (u64::from(word(at + 4)) << 32);
    if word(0) != RECORD_MAGIC {
        return Err(BadReason::BadMagic);
    }
    let kind = match input[20] {
        1 => RecordKind::Append,
        2 => RecordKind::Tombstone,
        _ => return Err(BadReason::BadField),
    };
    let payload_len = word(24) as usize;
    if input[21..24] != [0, 0, 0] || (kind == RecordKind::Tombstone && payload_len != 0) {
        return Err(BadReason::BadField);
    }
    let total = RECORD_HEADER_LEN
        .checked_add(payload_len)
        .ok_or(BadReason::OverLimit)?;
    if total > input.len() {
        return Err(BadReason::Truncated);
    }
    if crc64(&input[12..total]) != dword(4) {
        return Err(BadReason::BadChecksum);
    }
    Ok((dword(12), kind, &input[RECORD_HEADER_LEN..total], total))
}

/// Where a key's file is, and what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The key's file path (existing or the free slot it would take).
    pub path: PathBuf,
    /// The decoded file, or `None` when the key has no file yet.
    pub file: Option<KeyFile>,
}

/// Finds `key`'s file: the first probe whose header names the key, or the first free slot
/// (no file, or a file whose header is damaged: a crash during its creation, which a
/// committer rewrites).
pub fn locate<F: Fs>(fs: &F, key: &[u8]) -> Result<Located> {
    let hash = key_hash(key);
    for probe in 0..PROBES_MAX {
        let path = key_file_path(hash, probe);
        if fs.len(&path).io("inspecting", &path)?.is_none() {
            return Ok(Located { path, file: None });
        }
        let bytes = fs.read(&path).io("reading", &path)?;
        match decode_key_file(&bytes) {
            Ok(file) if file.key == key => {
                return Ok(Located {
                    path,
                    file: Some(file),
                })
            }
            Ok(_) => continue,
            Err(_) => return Ok(Located { path, file: None }),
        }
    }
    Err(crate::Error::Corrupt {
        path: key_file_path(hash, PROBES_MAX),
        offset: 0,
        reason: BadReason::OverLimit,
    })
}

/// Every key with a key file that holds live records, sorted. Reads every key file.
pub fn list_keys<F: Fs>(fs: &F) -> Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let root = Path::new(KEYS_DIR);
    for dir in fs.list(root).io("listing", root)? {
        if dir.len() != 2 || !dir.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let dir = root.join(dir);
        for name in fs.list(&dir).io("listing", &dir)? {
            if !name.ends_with(".key") {
                continue;
            }
            let path = dir.join(name);
            let bytes = fs.read(&path).io("reading", &path)?;
            if let Ok(file) = decode_key_file(&bytes) {
                if !file.records.is_empty() {
                    keys.push(file.key);
                }
            }
        }
    }
    keys.sort();
    Ok(keys)
}

/// Where the replacement of the key file `path` is written before it is renamed over it:
/// `path` with `.new` appended. Neither `locate` nor `list_keys` takes it for a key file.
pub fn replacement_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Creates `keys/` and its 256 fan-out directories, and makes them durable.
pub fn create_dirs<F: Fs>(fs: &F) -> Result<()> {
    let root = Path::new(KEYS_DIR);
    if fs
        .list(root)
        .map(|names| names.len() >= 256)
        .unwrap_or(false)
    {
        return Ok(());
    }
    for top in 0..=255u64 {
        let dir = fanout_dir(top << 56);
        fs.create_dir_all(&dir).io("creating", &dir)?;
    }
    fs.sync_dir(root).io("fsyncing", root)?;
    fs.sync_dir(Path::new("")).io("fsyncing", Path::new(""))
}

/// Reads the durable applied watermark (0 when there is none yet).
pub fn read_watermark<F: Fs>(fs: &F) -> Result<u64> {
    Ok(seq_file::read(fs, Path::new(WATERMARK_FILE), WATERMARK_MAGIC)?.unwrap_or(0))
}

/// Makes `seq` the durable applied watermark: write a temporary file, fdatasync it,
/// rename it over the old one, fsync `keys/`. A crash leaves the old or the new value.
pub fn write_watermark<F: Fs>(fs: &F, seq: u64) -> Result<()> {
    seq_file::write(
        fs,
        Path::new(WATERMARK_FILE),
        Path::new(WATERMARK_TMP),
        WATERMARK_MAGIC,
        seq,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    #[test]
    fn the_key_hash_is_fnv1a_64() {
        assert_eq!(key_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(key_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(key_hash(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(
            committer_for(b"foobar", 7),
            (0x8594_4171_f739_67e8u64 % 7) as usize
        );
    }

    #[test]
    fn the_walk_tells_a_torn_tail_from_damage_in_the_middle() {
        let mut bytes = Vec::new();
        encode_key_header(&mut bytes, b"k");
        for seq in 1..=3 {
            encode_key_record(&mut bytes, seq, RecordKind::Append, b"payload");
        }
        let second = key_header_len(1) + RECORD_HEADER_LEN + 7;
        let mut middle = bytes.clone();
        middle[second + RECORD_HEADER_LEN] ^= 1;
        let walk = walk_key_file(&middle).unwrap();
        assert_eq!(walk.entries.len(), 1);
        assert_eq!(
            walk.intact_after_damage,
            Some((second + RECORD_HEADER_LEN + 7) as u64)
        );
        let torn = &bytes[..bytes.len() - 3];
        let walk = walk_key_file(torn).unwrap();
        assert_eq!((walk.entries.len(), walk.intact_after_damage), (2, None));
    }

    #[test]
    fn a_hostile_tail_of_record_magics_is_walked_in_bounded_time() {
        // Thousands of record magics, each claiming a payload up to the end: the resync
        // gives up after a bounded number of candidates and says "maybe intact".
        let mut bytes = Vec::new();
        encode_key_header(&mut bytes, b"k");
        bytes.extend_from_slice(b"junk");
        for _ in 0..5000 {
            bytes.extend_from_slice(&RECORD_MAGIC.to_le_bytes());
            bytes.extend_from_slice(&[0; 16]);
            bytes.push(1);
            bytes.extend_from_slice(&[0; 3]);
            bytes.extend_from_slice(&4u32.to_le_bytes());
        }
        let walk = walk_key_file(&bytes).unwrap();
        assert!(walk.file.damage.is_some());
        assert!(walk.intact_after_damage.is_some());
    }

    #[test]
    fn a_key_never_becomes_a_path() {
        let long = vec![0xFFu8; 1024];
        let hostile: [&[u8]; 8] = [
            b"../../x",
            b"/",
            b".",
            b"..",
            b"a\0b",
            &[0xC3, 0x28, 0xFF],
            &long,
            b"keys/WATERMARK",
        ];
        for key in hostile {
            let path = key_file_path(key_hash(key), 3);
            let parts: Vec<_> = path.components().collect();
            assert_eq!(parts.len(), 3, "{path:?}");
            assert!(path.starts_with(KEYS_DIR));
            let name = path.file_name().unwrap().to_str().unwrap();
            let stem = name.strip_suffix(".key").unwrap();
            assert!(
                stem.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
                "{name}"
            );
        }
    }

    #[test]
    fn a_key_file_round_trips_and_a_tombstone_hides_what_precedes_it() {
        let mut bytes = Vec::new();
        encode_key_header(&mut bytes, b"k");
        encode_key_record(&mut bytes, 3, RecordKind::Append, b"old");
        encode_key_record(&mut bytes, 5, RecordKind::Tombstone, b"");
        encode_key_record(&mut bytes, 9, RecordKind::Append, b"new");
        let file = decode_key_file(&bytes).unwrap();
        assert_eq!(file.key, b"k");
        assert_eq!(file.last_seq, 9);
        assert_eq!(file.records.len(), 1);
        assert_eq!(file.records[0].payload, b"new");
        assert_eq!(file.valid_len, bytes.len() as u64);
        assert_eq!(file.damage, None);
    }

    #[test]
    fn a_torn_record_is_found_and_the_valid_length_excludes_it() {
        let mut bytes = Vec::new();
        encode_key_header(&mut bytes, b"k");
        encode_key_record(&mut bytes, 1, RecordKind::Append, b"kept");
        let valid = bytes.len();
        encode_key_record(&mut bytes, 2, RecordKind::Append, b"torn");
        for cut in valid + 1..bytes.len() {
            let file = decode_key_file(&bytes[..cut]).unwrap();
            assert_eq!(file.valid_len, valid as u64);
            assert_eq!(file.records.len(), 1);
            assert!(file.damage.is_some());
        }
    }

    #[test]
    fn a_damaged_header_names_no_key() {
        let mut bytes = Vec::new();
        encode_key_header(&mut bytes, b"key");
        for cut in 0..bytes.len() {
            assert!(decode_key_file(&bytes[..cut]).is_err());
        }
        bytes[17] ^= 1;
        assert_eq!(decode_key_file(&bytes), Err(BadReason::BadChecksum));
    }

    #[test]
    fn colliding_hashes_probe_to_the_next_slot() {
        let fs = MemFs::new();
        create_dirs(&fs).unwrap();
        let hash = key_hash(b"mine");
        let mut other = Vec::new();
        encode_key_header(&mut other, b"someone else");
        fs.put(&key_file_path(hash, 0), &other).unwrap();
        let located = locate(&fs, b"mine").unwrap();
        assert_eq!(located.path, key_file_path(hash, 1));
        assert_eq!(located.file, None);
    }

    #[test]
    fn the_watermark_round_trips_and_starts_at_zero() {
        let fs = MemFs::new();
        create_dirs(&fs).unwrap();
        assert_eq!(read_watermark(&fs).unwrap(), 0);
        write_watermark(&fs, 42).unwrap();
        assert_eq!(read_watermark(&fs).unwrap(), 42);
        write_watermark(&fs, 43).unwrap();
        assert_eq!(read_watermark(&fs).unwrap(), 43);
    }
}
