//! [`MemFs`]: a plain in-memory file system for unit tests, over the [`FileTree`] model
//! the simulator's file system shares.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::tree::{not_found, FileTree, Inode};
use super::{slice_at, write_at_on_append_error, Fs, FsFile};

/// A plain in-memory file system for unit tests: every call succeeds and is durable at
/// once, unless a test arms a failure with [`MemFs::fail_next_sync`] or
/// [`MemFs::fail_next_append`]. Clones share the same files.
#[derive(Clone, Debug, Default)]
pub struct MemFs {
    state: Arc<Mutex<MemState>>,
    /// While held, `sync_data` waits (see [`MemFs::hold_syncs`]).
    sync_gate: Arc<(Mutex<SyncGate>, Condvar)>,
}

#[derive(Debug, Default)]
struct SyncGate {
    /// Syncs of files under this prefix wait (`Some("")`: every file).
    held: Option<PathBuf>,
    waiting: usize,
}

#[derive(Debug, Default)]
struct MemState {
    /// The names, directories and files (the model `SimFs` shares).
    tree: FileTree<Vec<u8>>,
    file_syncs: u64,
    dir_syncs: u64,
    fail_next_sync: bool,
    fail_next_append: bool,
}

impl MemFs {
    /// An empty in-memory file system.
    pub fn new() -> Self {
        MemFs::default()
    }

    fn state(&self) -> MutexGuard<'_, MemState> {
        // A test that panicked while holding the lock leaves nothing half-done here that
        // matters; go on with the data as it is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many `sync_data` calls succeeded.
    pub fn file_syncs(&self) -> u64 {
        self.state().file_syncs
    }

    /// How many `sync_dir` calls succeeded.
    pub fn dir_syncs(&self) -> u64 {
        self.state().dir_syncs
    }

    /// Makes the next `sync_data` fail with an I/O error.
    pub fn fail_next_sync(&self) {
        self.state().fail_next_sync = true;
    }

    /// Makes the next `append` or `write_at` fail with an I/O error, writing nothing.
    pub fn fail_next_append(&self) {
        self.state().fail_next_append = true;
    }

    /// Makes every `sync_data` wait until [`MemFs::release_syncs`]: a test can then fill
    /// the write queue behind a writer stuck in its fdatasync.
    pub fn hold_syncs(&self) {
        self.hold_syncs_under(Path::new(""));
    }

    /// Like [`MemFs::hold_syncs`], for the files under `prefix` only.
    pub fn hold_syncs_under(&self, prefix: &Path) {
        self.gate().held = Some(prefix.to_path_buf());
    }

    fn gate(&self) -> MutexGuard<'_, SyncGate> {
        self.sync_gate.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many `sync_data` calls are waiting at a held gate.
    pub fn syncs_waiting(&self) -> usize {
        self.gate().waiting
    }

    /// Lets held and later `sync_data` calls go on.
    pub fn release_syncs(&self) {
        self.gate().held = None;
        self.sync_gate.1.notify_all();
    }

    fn wait_for_sync_gate(&self, path: &Path) {
        let (gate, opened) = &*self.sync_gate;
        let mut gate = gate.lock().unwrap_or_else(|e| e.into_inner());
        let held = |gate: &SyncGate| gate.held.as_ref().is_some_and(|p| path.starts_with(p));
        if !held(&gate) {
            return;
        }
        gate.waiting += 1;
        while held(&gate) {
            gate = opened.wait(gate).unwrap_or_else(|e| e.into_inner());
        }
        gate.waiting -= 1;
    }

    /// Overwrites bytes of an existing file in place (tests use it to corrupt a log).
    pub fn overwrite(&self, path: &Path, offset: usize, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let data = state.tree.at_mut(path).ok_or_else(not_found)?;
        if data.len() < offset + bytes.len() {
            data.resize(offset + bytes.len(), 0);
        }
        data[offset..offset + bytes.len()].copy_from_slice(bytes);
        Ok(())
    }

    /// Writes a whole file at `path` (tests use it to plant files).
    pub fn put(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        state.tree.check_parent(path)?;
        state.tree.link_new(path, bytes.to_vec());
        Ok(())
    }
}

/// An open file of [`MemFs`].
#[derive(Debug)]
pub struct MemFile {
    fs: MemFs,
    inode: Inode,
    path: PathBuf,
    /// Opened by `open_append`: positional writes are refused, as on `RealFs`.
    appending: bool,
}

impl FsFile for MemFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        let mut state = self.fs.state();
        if std::mem::take(&mut state.fail_next_append) {
            return Err(io::Error::other("injected append failure"));
        }
        state.tree.file_mut(self.inode)?.extend_from_slice(data);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.fs.wait_for_sync_gate(&self.path);
        let mut state = self.fs.state();
        if std::mem::take(&mut state.fail_next_sync) {
            return Err(io::Error::other("injected fsync failure"));
        }
        state.file_syncs += 1;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.appending {
            return Err(write_at_on_append_error());
        }
        let mut state = self.fs.state();
        if std::mem::take(&mut state.fail_next_append) {
            return Err(io::Error::other("injected write failure"));
        }
        let bytes = state.tree.file_mut(self.inode)?;
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let end = start + data.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(data);
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.fs.state();
        let bytes = state.tree.file_mut(self.inode)?;
        bytes.truncate(usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?);
        Ok(())
    }
}

/// A held lock of [`MemFs`].
#[derive(Debug)]
pub struct MemLock {
    fs: MemFs,
    path: PathBuf,
}

impl Drop for MemLock {
    fn drop(&mut self) {
        self.fs.state().tree.unlock(&self.path);
    }
}

impl Fs for MemFs {
    type File = MemFile;
    type Lock = MemLock;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state().tree.create_dir_all(dir);
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<MemFile> {
        // An existing file is truncated in place (same inode), as the trait says.
        let (inode, _) = self.state().tree.create(path, Vec::new)?;
        Ok(MemFile {
            fs: self.clone(),
            inode,
            path: path.to_path_buf(),
            appending: false,
        })
    }

    fn open_append(&self, path: &Path) -> io::Result<MemFile> {
        let inode = self.state().tree.inode(path)?;
        Ok(MemFile {
            fs: self.clone(),
            inode,
            path: path.to_path_buf(),
            appending: true,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let state = self.state();
        Ok(state.tree.file(state.tree.inode(path)?)?.clone())
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let state = self.state();
        slice_at(state.tree.file(state.tree.inode(path)?)?, offset, len)
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        Ok(self.state().tree.at(path).map(|data| data.len() as u64))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state();
        let data = state.tree.at_mut(path).ok_or_else(not_found)?;
        data.resize(usize::try_from(len).map_err(io::Error::other)?, 0);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.state().tree.rename(from, to).map(|_| ())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.state().tree.unlink(path).map(|_| ())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.state().tree.list(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        if !state.tree.is_dir(dir) {
            return Err(not_found());
        }
        state.dir_syncs += 1;
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<MemLock> {
        self.state().tree.lock(path)?;
        Ok(MemLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        })
    }
}
