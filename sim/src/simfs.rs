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
use writelog::fs::{Fs, FsFile};

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

/// The rate of each injected I/O error, each on its own switch (0 turns it off). None of
/// them crashes: the call fails, the process goes on, and the store must fail cleanly
/// (poison, refuse, or return the error) without losing anything it acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IoFaultRates {
    /// An fdatasync or a directory fsync fails with EIO; the unsynced writes stay
    /// unsynced (a later power loss decides them).
    pub sync_eio: f64,
    /// A read, a length or a listing fails with EIO.
    pub read_eio: f64,
    /// A read stops short. `Fs::read` returns a whole file, and `RealFs` reads until the
    /// end of file, so a short read can only surface as an error (`UnexpectedEof`), never
    /// as a shorter file: what the store must not mistake for a torn tail.
    pub short_read: f64,
    /// A write fails with EIO after writing a random prefix of its bytes (a short write).
    pub write_eio: f64,
    /// The disk fills for a spell of calls: writes write a prefix and fail with ENOSPC,
    /// creates fail with ENOSPC.
    pub enospc: f64,
}

/// How many of each injected I/O error were answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoFaultCounts {
    /// fdatasyncs and directory fsyncs answered with EIO.
    pub sync_eio: u64,
    /// Reads, lengths and listings answered with EIO.
    pub read_eio: u64,
    /// Reads that stopped short.
    pub short_reads: u64,
    /// Writes answered with EIO (each after a short write).
    pub write_eio: u64,
    /// Writes and creates answered with ENOSPC.
    pub enospc: u64,
    /// Failed writes that left a non-empty prefix in the file.
    pub short_writes: u64,
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

    /// Every file path with its current bytes (for the oracle and for replays).
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let state = self.state();
        let tree = &state.tree;
        tree.names()
            .iter()
            .filter_map(|(path, &inode)| {
                Some((path.clone(), tree.file(inode).ok()?.current.clone()))
            })
            .collect()
    }

    /// The current bytes of `path`, bypassing the call counter and the faults (the
    /// simulator looking, not the store).
    pub fn peek(&self, path: &Path) -> Option<Vec<u8>> {
        self.state().tree.at(path).map(|f| f.current.clone())
    }

    /// Puts a file in place durably, bypassing the call counter (a fault: a replayed log).
    /// A name already taken is left alone (returns false): overwriting a live file is
    /// destruction, not a fault the store can be asked to survive.
    pub fn plant(&self, path: &Path, bytes: &[u8]) -> bool {
        let mut state = self.state();
        if state.tree.at(path).is_some() || state.durable_names.contains_key(path) {
            return false;
        }
        let data = FileData {
            current: bytes.to_vec(),
            durable: bytes.to_vec(),
            unsynced: Vec::new(),
        };
        let inode = state.tree.link_new(path, data);
        state.durable_names.insert(path.to_path_buf(), inode);
        true
    }

    /// For traces: `path`'s inode now and after a power loss for sure, and its lengths.
    pub fn describe(&self, path: &Path) -> String {
        let state = self.state();
        let now = state.tree.inode(path).ok();
        let durable = state.durable_names.get(path).copied();
        let lens = |inode: Option<Inode>| {
            inode
                .and_then(|i| state.tree.file(i).ok())
                .map(|f| (f.current.len(), f.durable.len()))
        };
        format!(
            "{path:?}: now {now:?} {:?}, durable {durable:?} {:?}, pending dir ops {}",
            lens(now),
            lens(durable),
            state.pending.len()
        )
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

    /// Overwrites `bytes` at `offset` of the file `path`, now and durably, bypassing the
    /// call counter: bit rot or a misplaced block, a fault of the medium. Returns the
    /// bytes it replaced, or `None` when there is no such file or range.
    pub fn rot(&self, path: &Path, offset: usize, bytes: &[u8]) -> Option<Vec<u8>> {
        let mut state = self.state();
        let file = state.tree.at_mut(path)?;
        let end = offset.checked_add(bytes.len())?;
        if !file.unsynced.is_empty() || end > file.durable.len() {
            return None;
        }
        let old = file.durable[offset..end].to_vec();
        file.durable[offset..end].copy_from_slice(bytes);
        file.current = file.durable.clone();
        Some(old)
    }

    /// The bytes of `path` at `offset`, now, or `None` past its end.
    pub fn peek_at(&self, path: &Path, offset: usize, len: usize) -> Option<Vec<u8>> {
        let state = self.state();
        let file = state.tree.at(path)?;
        file.current
            .get(offset..offset.checked_add(len)?)
            .map(<[u8]>::to_vec)
    }

    /// Overwrites `bytes` at `offset` of `path`, now and durably, where the file has them
    /// (an operator's repair of a region). Returns false when there is no such region.
    pub fn patch(&self, path: &Path, offset: usize, bytes: &[u8]) -> bool {
        let mut state = self.state();
        let Some(file) = state.tree.at_mut(path) else {
            return false;
        };
        let end = offset + bytes.len();
        if end > file.current.len() {
            return false;
        }
        file.current[offset..end].copy_from_slice(bytes);
        if end <= file.durable.len() {
            file.durable[offset..end].copy_from_slice(bytes);
        }
        true
    }

    /// Replaces the whole content of `path`, now and durably (a misplaced block spliced
    /// in, or an operator's repair). Returns false when there is no such file.
    pub fn replace(&self, path: &Path, bytes: &[u8]) -> bool {
        let mut state = self.state();
        let Some(file) = state.tree.at_mut(path) else {
            return false;
        };
        file.current = bytes.to_vec();
        file.durable = bytes.to_vec();
        file.unsynced.clear();
        true
    }

    /// Crashes that hit while I/O was in flight.
    pub fn crashes_mid_io(&self) -> u64 {
        self.state().crashes_mid_io
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

impl State {
    /// Draws `true` with probability `rate` from the fault stream (no draw at rate 0, so
    /// a switch that is off leaves the stream alone).
    fn draw(&mut self, rate: f64) -> bool {
        match self.fault_rng.as_mut() {
            Some(rng) if rate > 0.0 => rng.random_bool(rate),
            _ => false,
        }
    }

    /// Counts an injected error for the world to see.
    fn inject(&mut self, count: impl FnOnce(&mut IoFaultCounts), error: io::Error) -> io::Error {
        count(&mut self.injected);
        self.injected_unseen += 1;
        error
    }

    /// Draws whether this sync fails with EIO.
    fn sync_fault(&mut self) -> io::Result<()> {
        if self.draw(self.rates.sync_eio) {
            return Err(self.inject(
                |c| c.sync_eio += 1,
                io::Error::other("simulated EIO on sync"),
            ));
        }
        Ok(())
    }

    /// Draws whether this read, length or listing fails, with EIO or short.
    fn read_fault(&mut self) -> io::Result<()> {
        if self.draw(self.rates.read_eio) {
            return Err(self.inject(
                |c| c.read_eio += 1,
                io::Error::other("simulated EIO on read"),
            ));
        }
        if self.draw(self.rates.short_read) {
            return Err(self.inject(
                |c| c.short_reads += 1,
                io::Error::new(io::ErrorKind::UnexpectedEof, "simulated short read"),
            ));
        }
        Ok(())
    }

    /// Whether the disk is full for this call (starting a spell at the ENOSPC rate).
    fn disk_full(&mut self) -> bool {
        if self.disk_full_calls == 0 && self.draw(self.rates.enospc) {
            let spell = match self.fault_rng.as_mut() {
                Some(rng) => rng.random_range(1..40),
                None => 1,
            };
            self.disk_full_calls = spell;
        }
        if self.disk_full_calls > 0 {
            self.disk_full_calls -= 1;
            return true;
        }
        false
    }

    /// Draws whether this write fails, and if so how many of its `len` bytes it wrote
    /// first (a short write) and the error.
    fn write_fault(&mut self, len: usize) -> Option<(usize, io::Error)> {
        let error = if self.disk_full() {
            self.inject(
                |c| c.enospc += 1,
                io::Error::new(io::ErrorKind::StorageFull, "simulated ENOSPC"),
            )
        } else if self.draw(self.rates.write_eio) {
            self.inject(
                |c| c.write_eio += 1,
                io::Error::other("simulated EIO on write"),
            )
        } else {
            return None;
        };
        let written = match self.fault_rng.as_mut() {
            Some(rng) => rng.random_range(0..=len),
            None => 0,
        };
        if written > 0 {
            self.injected.short_writes += 1;
        }
        Some((written, error))
    }

    fn record(&mut self, op: DirOp) {
        let waiting_for = op.dirs().into_iter().collect();
        self.pending.push(PendingDirOp { op, waiting_for });
    }
}

/// An open file of [`SimFs`].
#[derive(Debug)]
pub struct SimFile {
    fs: SimFs,
    inode: Inode,
    /// Opened by `open_append`: positional writes are refused, as on `RealFs`.
    appending: bool,
}

impl SimFile {
    /// Writes `data` at `offset` (`None`: at the end), with the write faults: an unsynced
    /// write that a power loss may keep, lose, tear or fill.
    fn write(&mut self, offset: Option<u64>, data: &[u8]) -> io::Result<()> {
        let mut state = self.fs.state();
        if let Err(e) = self.fs.enter(&mut state, true) {
            if state.crashed {
                state.crashes_mid_io += 1;
            }
            return Err(e);
        }
        let fault = state.write_fault(data.len());
        let file = state.tree.file_mut(self.inode)?;
        let (data, result) = match fault {
            Some((written, error)) => (&data[..written], Err(error)),
            None => (data, Ok(())),
        };
        if !data.is_empty() {
            let offset = match offset {
                Some(at) => usize::try_from(at).map_err(|_| io::ErrorKind::InvalidInput)?,
                None => file.current.len(),
            };
            let end = offset + data.len();
            if file.current.len() < end {
                file.current.resize(end, 0);
            }
            file.current[offset..end].copy_from_slice(data);
            file.unsynced.push((offset, data.to_vec()));
        }
        result
    }
}

impl FsFile for SimFile {
    fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(None, data)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if self.appending {
            return Err(writelog::fs::write_at_on_append_error());
        }
        self.write(Some(offset), data)
    }

    /// Like [`Fs::truncate`], durable at once (the stated simplification).
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut state = self.fs.state();
        self.fs.enter(&mut state, true)?;
        let file = state.tree.file_mut(self.inode)?;
        file.truncate(usize::try_from(len).map_err(|_| io::ErrorKind::InvalidInput)?);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut state = self.fs.state();
        if let Err(e) = self.fs.enter(&mut state, true) {
            state.crashes_mid_io += 1;
            return Err(e);
        }
        state.sync_fault()?;
        let file = state.tree.file_mut(self.inode)?;
        file.durable = file.current.clone();
        file.unsynced.clear();
        Ok(())
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
