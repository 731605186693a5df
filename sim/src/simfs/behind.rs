//! What the simulator does behind the store's back, without counting a file-system call:
//! look at files, rot or patch their bytes, plant or replace them, describe them in a
//! trace.

use super::*;

impl SimFs {
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

    /// The names of the entries of `dir` that are files, bypassing the call counter and the
    /// faults (no bytes copied).
    pub fn file_names_in(&self, dir: &Path) -> Vec<String> {
        let state = self.state();
        let tree = &state.tree;
        tree.names()
            .iter()
            .filter(|(path, &inode)| path.parent() == Some(dir) && tree.file(inode).is_ok())
            .filter_map(|(path, _)| Some(path.file_name()?.to_str()?.to_string()))
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
}
