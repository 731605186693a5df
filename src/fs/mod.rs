//! The file-system calls the machines need, as a trait, and its two implementations.
//!
//! [`RealFs`] is the only code in the crate that touches `std::fs`; [`MemFs`] is a plain
//! in-memory file system for unit tests. Both `MemFs` and the simulator's `SimFs` (which
//! adds faults and what a power loss keeps) keep their names, directories and files in one
//! model, [`tree::FileTree`].
//! Paths handed to an `Fs` are relative to the store's directory.
//!
//! Durability model every implementation promises at least: bytes appended to a file are
//! durable after [`FsFile::sync_data`] returns `Ok`; a directory entry (create, rename,
//! remove) is durable after [`Fs::sync_dir`] on its directory returns `Ok`.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod mem;
pub mod tree;

pub use mem::{MemFile, MemFs, MemLock};

/// An open file that the store appends to.
pub trait FsFile: Send + 'static {
    /// Appends all of `data` at the end of the file.
    fn append(&mut self, data: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Writes all of `data` at `offset`, growing the file when it ends before
    /// `offset + data.len()`. Only for a file from [`Fs::create`]: on a file opened for
    /// appending it fails with [`io::ErrorKind::InvalidInput`] (`O_APPEND` would put the
    /// bytes at the end whatever the offset).
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Cuts the file to `len` bytes (`ftruncate`), durable after the next `sync_data`.
    /// A file no longer than `len` is left alone.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// The error of [`FsFile::write_at`] on a file opened for appending.
pub fn write_at_on_append_error() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "positional write on a file opened for appending",
    )
}

/// The file-system calls of the store, relative to its directory.
pub trait Fs: Send + Sync + 'static {
    /// An open file, for appending.
    type File: FsFile;
    /// A held lock; dropping it releases the lock.
    type Lock: Send + 'static;

    /// Where the store lives, for messages: errors name `location().join(path)`. The
    /// root directory for [`RealFs`]; empty (paths stay relative) by default.
    fn location(&self) -> PathBuf {
        PathBuf::new()
    }

    /// Creates `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` empty (truncating any file there) and opens it for appending.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens the existing `path` for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    /// Reads the whole of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Reads exactly `len` bytes of `path` from `offset` (`pread`); a file that ends
    /// before `offset + len` fails with [`io::ErrorKind::UnexpectedEof`].
    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// The length of `path` in bytes, or `None` when there is no such file.
    fn len(&self, path: &Path) -> io::Result<Option<u64>>;
    /// Cuts `path` to `len` bytes.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Renames `from` to `to`, replacing any file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries of `dir`, sorted bytewise.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Makes the entries of `dir` durable (`fsync` on the directory).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (creating it), failing with
    /// [`io::ErrorKind::WouldBlock`] when another holder has it.
    fn lock(&self, path: &Path) -> io::Result<Self::Lock>;
}

/// `len` bytes of `data` from `offset`, or `UnexpectedEof` when `data` ends before them:
/// what [`Fs::read_at`] returns, for in-memory file systems.
pub fn slice_at(data: &[u8], offset: u64, len: usize) -> io::Result<Vec<u8>> {
    usize::try_from(offset)
        .ok()
        .and_then(|start| Some(start..start.checked_add(len)?))
        .and_then(|range| data.get(range))
        .map(<[u8]>::to_vec)
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))
}

/// The real file system, rooted at a store's directory.
#[derive(Clone, Debug)]
pub struct RealFs {
    root: PathBuf,
}

impl RealFs {
    /// A file system rooted at `root`, which is created if missing. Each directory it
    /// creates is made durable in its parent (`fsync` of the parent), so that a new
    /// store cannot vanish whole in a power loss after its first `Sync` append.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let mut missing = Vec::new();
        let mut at = root.as_path();
        while !at.as_os_str().is_empty() && std::fs::metadata(at).is_err() {
            missing.push(at.to_path_buf());
            at = at.parent().unwrap_or(Path::new(""));
        }
        std::fs::create_dir_all(&root)?;
        for dir in missing.iter().rev() {
            let parent = match dir.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => parent,
                _ => Path::new("."),
            };
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(RealFs { root })
    }

    /// A shared `flock` on the existing file `path`, opened read-only: held by any number
    /// of readers at once, never beside the exclusive lock of [`Fs::lock`] (either fails
    /// with `WouldBlock`).
    pub fn lock_shared(&self, path: &Path) -> io::Result<std::fs::File> {
        let file = std::fs::File::open(self.at(path))?;
        flocked(file.try_lock_shared(), file)
    }

    /// The directory this file system is rooted at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn at(&self, path: &Path) -> PathBuf {
        self.root.join(path)
    }
}

/// An open file of [`RealFs`].
#[derive(Debug)]
pub struct RealFile {
    file: std::fs::File,
    /// Opened with `O_APPEND` (by `open_append`): positional writes are refused.
    appending: bool,
}

impl FsFile for RealFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.appending {
            return Err(write_at_on_append_error());
        }
        std::os::unix::fs::FileExt::write_all_at(&self.file, data, offset)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if self.file.metadata()?.len() > len {
            self.file.set_len(len)?;
        }
        Ok(())
    }
}

impl Fs for RealFs {
    fn location(&self) -> PathBuf {
        // Absolute, so that naming a path twice changes nothing.
        std::path::absolute(&self.root).unwrap_or_else(|_| self.root.clone())
    }

    type File = RealFile;
    type Lock = std::fs::File;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(self.at(dir))
    }

    fn create(&self, path: &Path) -> io::Result<RealFile> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(self.at(path))?;
        Ok(RealFile {
            file,
            appending: false,
        })
    }

    fn open_append(&self, path: &Path) -> io::Result<RealFile> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.at(path))?;
        Ok(RealFile {
            file,
            appending: true,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(self.at(path))
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        // A handle of its own, so seeking it moves no one else's position; read into
        // spare capacity, so the buffer is not zeroed first.
        let mut file = std::fs::File::open(self.at(path))?;
        file.seek(io::SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut buf)?;
        if buf.len() != len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(buf)
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        match std::fs::metadata(self.at(path)) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(self.at(path))?;
        file.set_len(len)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(self.at(from), self.at(to))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(self.at(path))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(self.at(dir))? {
            // Names that are not UTF-8 are not the store's; they are left alone.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(self.at(dir))?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<std::fs::File> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.at(path))?;
        flocked(file.try_lock(), file)
    }
}

/// `file`, once `tried` (its `flock`) succeeded; `WouldBlock` when another holds it.
fn flocked(
    tried: Result<(), std::fs::TryLockError>,
    file: std::fs::File,
) -> io::Result<std::fs::File> {
    match tried {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "the lock is held by another open store",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise<F: Fs>(fs: &F) {
        fs.create_dir_all(Path::new("a/b")).unwrap();
        let mut file = fs.create(Path::new("a/b/f")).unwrap();
        file.append(b"hello ").unwrap();
        file.append(b"world").unwrap();
        file.sync_data().unwrap();
        assert_eq!(fs.read(Path::new("a/b/f")).unwrap(), b"hello world");
        assert_eq!(fs.read_at(Path::new("a/b/f"), 6, 5).unwrap(), b"world");
        assert_eq!(fs.read_at(Path::new("a/b/f"), 11, 0).unwrap(), b"");
        let past = fs.read_at(Path::new("a/b/f"), 7, 5).unwrap_err();
        assert_eq!(past.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(fs.len(Path::new("a/b/f")).unwrap(), Some(11));
        assert_eq!(fs.len(Path::new("a/b/none")).unwrap(), None);
        fs.truncate(Path::new("a/b/f"), 5).unwrap();
        let mut again = fs.open_append(Path::new("a/b/f")).unwrap();
        again.append(b"!").unwrap();
        assert_eq!(fs.read(Path::new("a/b/f")).unwrap(), b"hello!");
        fs.rename(Path::new("a/b/f"), Path::new("a/g")).unwrap();
        assert_eq!(fs.list(Path::new("a")).unwrap(), vec!["b", "g"]);
        assert!(fs.list(Path::new("a/b")).unwrap().is_empty());
        fs.sync_dir(Path::new("a")).unwrap();
        fs.remove(Path::new("a/g")).unwrap();
        assert_eq!(fs.list(Path::new("a")).unwrap(), vec!["b"]);
        let held = fs.lock(Path::new("LOCK")).unwrap();
        let second = fs.lock(Path::new("LOCK")).map(|_| ()).unwrap_err();
        assert_eq!(second.kind(), io::ErrorKind::WouldBlock);
        drop(held);
        fs.lock(Path::new("LOCK")).unwrap();

        // Positional writes and cuts, on a created file only.
        let mut log = fs.create(Path::new("a/log")).unwrap();
        log.write_at(0, b"abc").unwrap();
        log.write_at(6, b"xy").unwrap();
        assert_eq!(fs.read(Path::new("a/log")).unwrap(), b"abc\0\0\0xy");
        log.write_at(3, b"def").unwrap();
        assert_eq!(fs.read(Path::new("a/log")).unwrap(), b"abcdefxy");
        log.truncate(4).unwrap();
        log.truncate(100).unwrap();
        log.sync_data().unwrap();
        assert_eq!(
            fs.read(Path::new("a/log")).unwrap(),
            b"abcd",
            "a cut never grows the file"
        );
        let mut appending = fs.open_append(Path::new("a/log")).unwrap();
        let refused = appending.write_at(0, b"z").unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(fs.read(Path::new("a/log")).unwrap(), b"abcd");
    }

    #[test]
    fn real_fs_does_what_the_trait_says() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&RealFs::new(dir.path()).unwrap());
    }

    #[test]
    fn mem_fs_does_what_the_trait_says() {
        exercise(&MemFs::new());
    }
}
