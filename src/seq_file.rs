//! A durable seq in a file of its own: recovery's seq floor (`txlogs/SEQ_FLOOR`). (The
//! key store's applied watermark lives in `keys/MANIFEST`.)
//!
//! 24 bytes: an 8-byte magic naming the file's role, the seq (little-endian), and a
//! CRC-64/XZ of the first 16 bytes (`docs/FORMAT.md`). It is replaced whole: write a
//! temporary file beside it, fdatasync that, rename it over the old one, fsync the
//! directory. A crash therefore leaves the old value or the new one, never a mix.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::format::{crc64, BadReason};
use crate::fs::{Fs, FsFile};

/// Length of a seq file.
pub const SEQ_FILE_LEN: usize = 24;

/// The seq held in `path`, which must start with `magic`; `None` when there is no such
/// file. A file of the wrong length, magic or checksum is [`crate::Error::Corrupt`].
pub fn read<F: Fs>(fs: &F, path: &Path, magic: [u8; 8]) -> Result<Option<u64>> {
    if fs.len(path).io("inspecting", path)?.is_none() {
        return Ok(None);
    }
    let bytes = fs.read(path).io("reading", path)?;
    let corrupt = |reason| crate::Error::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason,
    };
    let Ok(bytes) = <[u8; SEQ_FILE_LEN]>::try_from(bytes.as_slice()) else {
        return Err(corrupt(BadReason::BadFileMagic));
    };
    let (head, crc) = bytes.split_at(16);
    if head[..8] != magic {
        return Err(corrupt(BadReason::BadFileMagic));
    }
    let le_u64 = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    if crc64(head) != le_u64(crc) {
        return Err(corrupt(BadReason::BadChecksum));
    }
    Ok(Some(le_u64(&head[8..])))
}

/// Makes `seq` the value of `path` (see the module doc): `tmp` must be a path in the
/// same directory.
pub fn write<F: Fs>(fs: &F, path: &Path, tmp: &Path, magic: [u8; 8], seq: u64) -> Result<()> {
    debug_assert_eq!(path.parent(), tmp.parent(), "a rename within one directory");
    let mut bytes = Vec::with_capacity(SEQ_FILE_LEN);
    bytes.extend_from_slice(&magic);
    bytes.extend_from_slice(&seq.to_le_bytes());
    let crc = crc64(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let mut file = fs.create(tmp).io("creating", tmp)?;
    file.append(&bytes).io("writing", tmp)?;
    file.sync_data().io("syncing", tmp)?;
    drop(file);
    fs.rename(tmp, path).io("renaming", tmp)?;
    let dir = path.parent().unwrap_or(Path::new(""));
    fs.sync_dir(dir).io("fsyncing", dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;

    const MAGIC: [u8; 8] = *b"WLTEST01";

    #[test]
    fn a_seq_file_round_trips_and_is_absent_until_written() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("d")).unwrap();
        let (path, tmp) = (Path::new("d/SEQ"), Path::new("d/SEQ.tmp"));
        assert_eq!(read(&fs, path, MAGIC).unwrap(), None);
        write(&fs, path, tmp, MAGIC, 42).unwrap();
        assert_eq!(read(&fs, path, MAGIC).unwrap(), Some(42));
        write(&fs, path, tmp, MAGIC, u64::MAX).unwrap();
        assert_eq!(read(&fs, path, MAGIC).unwrap(), Some(u64::MAX));
        assert_eq!(fs.len(tmp).unwrap(), None, "the temporary file was renamed");
    }

    #[test]
    fn a_damaged_or_foreign_seq_file_is_corrupt() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("d")).unwrap();
        let (path, tmp) = (Path::new("d/SEQ"), Path::new("d/SEQ.tmp"));
        write(&fs, path, tmp, MAGIC, 7).unwrap();
        let good = fs.read(path).unwrap();
        let reason = |bytes: &[u8], magic| {
            let mut file = fs.create(path).unwrap();
            file.append(bytes).unwrap();
            match read(&fs, path, magic) {
                Err(crate::Error::Corrupt { reason, .. }) => reason,
                other => panic!("expected corruption, got {other:?}"),
            }
        };
        let mut flipped = good.clone();
        flipped[9] ^= 1;
        assert_eq!(reason(&flipped, MAGIC), BadReason::BadChecksum);
        assert_eq!(reason(&good[..23], MAGIC), BadReason::BadFileMagic);
        assert_eq!(reason(&good, *b"WLOTHER1"), BadReason::BadFileMagic);
    }
}
