//! A simulated file system with the persistence model of DESIGN section 5 (after ALICE):
//! per file the durable bytes and the writes since the last fdatasync; per directory the
//! durable entries and the creates, renames and unlinks since its last fsync.
//!
//! A crash is injected at a chosen file-system call: that call and every later one fail
//! until [`SimFs::restart`], which applies a process crash (every completed call survives)
//! or a power loss (the durable state, plus any subset of the unsynced writes, each kept,
//! lost, torn at a random byte, or zero- or garbage-filled, plus any subset of the unsynced
//! directory operations). A rename is atomic: after a power loss it happened or it did not;
//! it is durable once both its directories were fsync'd after it.
//!
//! Simplification, stated: a truncate is durable at once (the store syncs right after it).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use writelog::fs::tree::{not_found, FileTree, Inode};
use writelog::fs::Fs;

mod behind;
mod file;
mod io_faults;

pub use file::SimFile;
pub use io_faults::{IoFaultCounts, IoFaultRates};

/// One file's bytes: what a reader sees now, and what survives a power loss for sure.
#[derive(Clone, Debug, Default)]
struct FileData {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Writes since the last sync, as (offset, bytes), in order.
    unsynced: Vec<(usize, Vec<u8>)>,
}

impl FileData {
    /// Cuts the file to `len` (a shorter file is left alone), durable at once: the
    /// stated simplification for truncates.
    fn truncate(&mut self, len: usize) {
        self.current.truncate(len);
        self.durable.truncate(len);
        for (offset, data) in &mut self.unsynced {
            data.truncate(len.saturating_sub(*offset));
        }
        self.unsynced.retain(|(_, data)| !data.is_empty());
    }
}

/// A directory operation not yet made durable.
#[derive(Clone, Debug)]
enum DirOp {
    /// `path` now names `inode` (a create, or the new name of a rename).
    Link { path: PathBuf, inode: Inode },
    /// `path` no longer names `inode` (an unlink).
    Unlink { path: PathBuf, inode: Inode },
    /// A rename, atomic: both halves or neither.
    Rename {
        from: PathBuf,
        to: PathBuf,
        inode: Inode,
    },
}

impl DirOp {
    /// The directories whose fsync this operation waits for.
    fn dirs(&self) -> Vec<PathBuf> {
        let parent = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
        match self {
            DirOp::Link { path, .. } | DirOp::Unlink { path, .. } => vec![parent(path)],
            DirOp::Rename { from, to, .. } => vec![parent(from), parent(to)],
        }
    }
}

/// A pending directory operation and the directories it still waits for.
#[derive(Clone, Debug)]
struct PendingDirOp {
    op: DirOp,
    waiting_for: BTreeSet<PathBuf>,
}

/// What a crash did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashKind {
    /// The process died: every completed call survives.
    Process,
    /// The machine lost power: only what was made durable survives for sure.
    PowerLoss,
}

#[derive(Debug, Default)]
struct State {
    /// The names, directories and files as a reader sees them now (the model `MemFs`
    /// shares).
    tree: FileTree<FileData>,
    /// The names a power loss keeps for sure.
    durable_names: BTreeMap<PathBuf, Inode>,
    pending: Vec<PendingDirOp>,
    /// File-system calls made so far.
    calls: u64,
    /// The call at which to crash (`None`: no crash scheduled).
    crash_at: Option<u64>,
    crashed: bool,
    /// File-system calls that had I/O in flight (writes, syncs, renames) when a crash hit.
    crashes_mid_io: u64,
    /// Defer a due crash to the next call that changes something (a write, sync, create,
    /// rename, remove, truncate): crashes biased toward I/O in flight.
    crash_on_io_only: bool,
    /// The rates of the injected I/O errors.
    rates: IoFaultRates,
    /// A ChaCha8 stream for the error draws, seeded by the world.
    fault_rng: Option<ChaCha8Rng>,
    /// Calls left in the current disk-full spell (0: there is room).
    disk_full_calls: u32,
    /// Injected errors answered since the world last asked.
    injected_unseen: u64,
    /// Injected errors answered in all, by kind.
    injected: IoFaultCounts,
}

/// The simulated file system. Clones share state.
#[derive(Clone, Debug, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

fn crashed_error() -> io::Error {
    io::Error::other("simulated crash")
}

impl SimFs {
    /// An empty file system.
    pub fn new() -> Self {
        SimFs::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Schedules a crash at the `after`-th file-system call from now.
    pub fn schedule_crash(&self, after: u64) {
        let mut state = self.state();
        state.crash_at = Some(state.calls + after.max(1));
    }

    /// Biases crashes toward calls with I/O in flight (see the field).
    pub fn set_crash_on_io_only(&self, on: bool) {
        self.state().crash_on_io_only = on;
    }

    /// Whether a crash has happened (every call fails until `restart`).
    pub fn crashed(&self) -> bool {
        self.state().crashed
    }

    /// File-system calls made so far.
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Counts a call; fails it when the crash point is reached or passed. `mutates` tells
    /// a call that changes something from one that only looks.
    fn enter(&self, state: &mut State, mutates: bool) -> io::Result<()> {
        if state.crashed {
            return Err(crashed_error());
        }
        state.calls += 1;
        let due = state.crash_at.is_some_and(|at| state.calls >= at);
        if due && (mutates || !state.crash_on_io_only) {
            state.crashed = true;
            state.crash_at = None;
            return Err(crashed_error());
        }
        Ok(())
    }

    /// Applies a crash of `kind` and makes the file system usable again. For a power
    /// loss, `rng` picks what of the unsynced state survives.
    pub fn restart(&self, kind: CrashKind, rng: &mut ChaCha8Rng) {
        let mut state = self.state();
        state.crashed = false;
        state.crash_at = None;
        state.tree.unlock_all();
        if kind == CrashKind::Process {
            return;
        }
        // Directory operations: each pending one persists or not, in order.
        let mut names = state.durable_names.clone();
        for pending in std::mem::take(&mut state.pending) {
            if rng.random_bool(0.5) {
                apply_dir_op(&mut names, &pending.op);
            }
        }
        // File data: durable bytes, then each unsynced write kept, lost, torn or filled
        // (in every file, named or not: the draws stay as they were).
        for file in state.tree.files_mut() {
            let mut bytes = file.durable.clone();
            for (offset, data) in std::mem::take(&mut file.unsynced) {
                let fate = rng.random_range(0..5u32);
                let kept: Vec<u8> = match fate {
                    0 => continue, // lost
                    1 => data.clone(),
                    2 => data[..rng.random_range(0..=data.len())].to_vec(), // torn
                    3 => vec![0; data.len()],
                    _ => (0..data.len())
                        .map(|_| rng.random_range(0..=255u32) as u8)
                        .collect(),
                };
                if bytes.len() < offset + kept.len() {
                    bytes.resize(offset + kept.len(), 0);
                }
                bytes[offset..offset + kept.len()].copy_from_slice(&kept);
            }
            file.current = bytes.clone();
            file.durable = bytes;
        }
        state.tree.relink(names.clone());
        state.durable_names = names;
    }

    /// Injects I/O errors at `rates`, drawn from `rng`.
    pub fn set_io_faults(&self, rates: IoFaultRates, rng: ChaCha8Rng) {
        let mut state = self.state();
        state.rates = rates;
        state.fault_rng = Some(rng);
        state.disk_full_calls = 0;
    }

    /// Whether an injected I/O error was answered since the last call (and forgets it).
    pub fn take_injected_error(&self) -> bool {
        std::mem::take(&mut self.state().injected_unseen) > 0
    }

    /// Injected I/O errors answered in all, by kind.
    pub fn injected(&self) -> IoFaultCounts {
        self.state().injected
    }

    /// Crashes that hit while I/O was in flight.
    pub fn crashes_mid_io(&self) -> u64 {
        self.state().crashes_mid_io
    }
}

impl State {
    /// Notes a directory operation, pending until its directories are fsync'd.
    fn record(&mut self, op: DirOp) {
        let waiting_for = op.dirs().into_iter().collect();
        self.pending.push(PendingDirOp { op, waiting_for });
    }
}

fn apply_dir_op(names: &mut BTreeMap<PathBuf, Inode>, op: &DirOp) {
    match op {
        DirOp::Link { path, inode } => {
            names.insert(path.clone(), *inode);
        }
        // A stale removal never takes away a name that a later durable operation pointed
        // at another file: on one name, the file system keeps operations in order.
        DirOp::Unlink { path, inode } => {
            if names.get(path) == Some(inode) {
                names.remove(path);
            }
        }
        DirOp::Rename { from, to, inode } => {
            if names.get(from) == Some(inode) {
                names.remove(from);
            }
            names.insert(to.clone(), *inode);
        }
    }
}

impl Fs for SimFs {
    type File = SimFile;
    type Lock = ();

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        self.enter(&mut state, true)?;
        // Directories are durable at once (the store creates them once, then fsyncs).
        state.tree.create_dir_all(dir);
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<SimFile> {
        let mut state = self.state();
        self.enter(&mut state, true)?;
        state.tree.check_parent(path)?;
        if state.disk_full() {
            return Err(state.inject(
                |c| c.enospc += 1,
                io::Error::new(io::ErrorKind::StorageFull, "simulated ENOSPC"),
            ));
        }
        // An existing file is truncated in place, as `open(O_CREAT | O_TRUNC)` does: same
        // inode, no directory operation (the truncate is durable at once, as above).
        let (inode, linked) = state.tree.create(path, FileData::default)?;
        if linked {
            state.record(DirOp::Link {
                path: path.to_path_buf(),
                inode,
            });
        }
        Ok(SimFile {
            fs: self.clone(),
            inode,
            appending: false,
        })
    }

    fn open_append(&self, path: &Path) -> io::Result<SimFile> {
        let mut state = self.state();
        self.enter(&mut state, false)?;
        let inode = state.tree.inode(path)?;
        Ok(SimFile {
            fs: self.clone(),
            inode,
            appending: true,
        })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.state();
        self.enter(&mut state, false)?;
        state.read_fault()?;
        Ok(state.tree.file(state.tree.inode(path)?)?.current.clone())
    }

    fn read_at(&self, path: &Path, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut state = self.state();
        self.enter(&mut state, false)?;
        state.read_fault()?;
        let file = state.tree.file(state.tree.inode(path)?)?;
        writelog::fs::slice_at(&file.current, offset, len)
    }

    fn len(&self, path: &Path) -> io::Result<Option<u64>> {
        let mut state = self.state();
        self.enter(&mut state, false)?;
        state.read_fault()?;
        Ok(state.tree.at(path).map(|f| f.current.len() as u64))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state();
        self.enter(&mut state, true)?;
        let file = state.tree.at_mut(path).ok_or_else(not_found)?;
        file.truncate(usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?);
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state();
        if let Err(e) = self.enter(&mut state, true) {
            state.crashes_mid_io += 1;
            return Err(e);
        }
        let inode = state.tree.rename(from, to)?;
        state.record(DirOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            inode,
        });
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        self.enter(&mut state, true)?;
        let inode = state.tree.unlink(path)?;
        state.record(DirOp::Unlink {
            path: path.to_path_buf(),
            inode,
        });
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut state = self.state();
        self.enter(&mut state, false)?;
        state.read_fault()?;
        state.tree.list(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        if let Err(e) = self.enter(&mut state, true) {
            state.crashes_mid_io += 1;
            return Err(e);
        }
        if !state.tree.is_dir(dir) {
            return Err(not_found());
        }
        state.sync_fault()?;
        // Operations no longer waiting for any directory become durable, in order; a
        // rename still waiting for its other directory stays pending. Directories are
        // independent of each other.
        let mut still_pending = Vec::new();
        let mut durable = state.durable_names.clone();
        for mut pending in std::mem::take(&mut state.pending) {
            pending.waiting_for.remove(dir);
            if pending.waiting_for.is_empty() {
                apply_dir_op(&mut durable, &pending.op);
            } else {
                still_pending.push(pending);
            }
        }
        state.durable_names = durable;
        state.pending = still_pending;
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        self.enter(&mut state, false)?;
        state.tree.lock(path)
    }
}
