//! The names, directories, files and locks of an in-memory file system: one model of
//! what `create`, `rename`, `remove`, `list` and `lock` do, shared by [`MemFs`] (every call
//! durable at once) and the simulator's `SimFs` (which adds what a power loss keeps). A
//! file's bytes are the implementation's own type `D`.
//!
//! [`MemFs`]: crate::fs::MemFs

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// A file's identity: names point at inodes, and an open file holds its inode, so a file
/// renamed or removed while open is still the same file.
pub type Inode = u64;

/// The error of a missing file or directory.
pub fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file")
}

/// The tree (see the module doc). Invariant: every name points at an inode in `files`;
/// an inode no name points at stays while an open file may hold it, until
/// [`FileTree::relink`] drops it.
#[derive(Clone, Debug)]
pub struct FileTree<D> {
    names: BTreeMap<PathBuf, Inode>,
    files: BTreeMap<Inode, D>,
    dirs: BTreeSet<PathBuf>,
    next_inode: Inode,
    locks: BTreeSet<PathBuf>,
}

impl<D> Default for FileTree<D> {
    fn default() -> Self {
        FileTree {
            names: BTreeMap::new(),
            files: BTreeMap::new(),
            dirs: BTreeSet::new(),
            next_inode: 0,
            locks: BTreeSet::new(),
        }
    }
}

impl<D> FileTree<D> {
    /// Whether `path` is a directory; the root (the empty path) always is.
    pub fn is_dir(&self, path: &Path) -> bool {
        path.as_os_str().is_empty() || self.dirs.contains(path)
    }

    /// `NotFound` unless `path`'s parent directory exists.
    pub fn check_parent(&self, path: &Path) -> io::Result<()> {
        match path.parent() {
            Some(parent) if !self.is_dir(parent) => Err(not_found()),
            _ => Ok(()),
        }
    }

    /// Creates `dir` and every missing ancestor.
    pub fn create_dir_all(&mut self, dir: &Path) {
        for ancestor in dir.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                self.dirs.insert(ancestor.to_path_buf());
            }
        }
    }

    /// The inode `path` names.
    pub fn inode(&self, path: &Path) -> io::Result<Inode> {
        self.names.get(path).copied().ok_or_else(not_found)
    }

    /// The file of `inode`.
    pub fn file(&self, inode: Inode) -> io::Result<&D> {
        self.files.get(&inode).ok_or_else(not_found)
    }

    /// The file of `inode`, to change.
    pub fn file_mut(&mut self, inode: Inode) -> io::Result<&mut D> {
        self.files.get_mut(&inode).ok_or_else(not_found)
    }

    /// The file `path` names, if any.
    pub fn at(&self, path: &Path) -> Option<&D> {
        self.files.get(self.names.get(path)?)
    }

    /// The file `path` names, if any, to change.
    pub fn at_mut(&mut self, path: &Path) -> Option<&mut D> {
        let inode = *self.names.get(path)?;
        self.files.get_mut(&inode)
    }

    /// Opens `path` for writing from empty, as `open(O_CREAT | O_TRUNC)` does: an existing
    /// file is emptied in place (same inode; returns `false`), else a new file is linked
    /// (returns `true`: a directory entry was made).
    pub fn create(&mut self, path: &Path, empty: impl FnOnce() -> D) -> io::Result<(Inode, bool)> {
        self.check_parent(path)?;
        if let Some(&inode) = self.names.get(path) {
            if let Some(file) = self.files.get_mut(&inode) {
                *file = empty();
                return Ok((inode, false));
            }
        }
        Ok((self.link_new(path, empty()), true))
    }

    /// Links a new file holding `data` at `path` (over any file it named), without
    /// checking the parent.
    pub fn link_new(&mut self, path: &Path, data: D) -> Inode {
        self.next_inode += 1;
        let inode = self.next_inode;
        self.files.insert(inode, data);
        self.names.insert(path.to_path_buf(), inode);
        inode
    }

    /// Moves the name `from` to `to` (over any file `to` named); the inode moved.
    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<Inode> {
        self.check_parent(to)?;
        let inode = self.names.remove(from).ok_or_else(not_found)?;
        self.names.insert(to.to_path_buf(), inode);
        Ok(inode)
    }

    /// Removes the name `path`; the inode it named (an open file keeps it).
    pub fn unlink(&mut self, path: &Path) -> io::Result<Inode> {
        self.names.remove(path).ok_or_else(not_found)
    }

    /// The names of the files and directories directly in `dir`, sorted.
    pub fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        if !self.is_dir(dir) {
            return Err(not_found());
        }
        let mut names: Vec<String> = self
            .names
            .keys()
            .chain(self.dirs.iter())
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Takes the lock on `path`; `WouldBlock` while it is held.
    pub fn lock(&mut self, path: &Path) -> io::Result<()> {
        if !self.locks.insert(path.to_path_buf()) {
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "lock held"));
        }
        Ok(())
    }

    /// Lets the lock on `path` go.
    pub fn unlock(&mut self, path: &Path) {
        self.locks.remove(path);
    }

    /// Lets every lock go (their holder died).
    pub fn unlock_all(&mut self) {
        self.locks.clear();
    }

    /// Every name and the inode it points at.
    pub fn names(&self) -> &BTreeMap<PathBuf, Inode> {
        &self.names
    }

    /// Every file, named or not.
    pub fn files_mut(&mut self) -> impl Iterator<Item = &mut D> {
        self.files.values_mut()
    }

    /// Replaces every name (a power loss decided which survive) and drops the files no
    /// name points at any more (no open file survives a crash).
    pub fn relink(&mut self, names: BTreeMap<PathBuf, Inode>) {
        assert!(
            names.values().all(|inode| self.files.contains_key(inode)),
            "every name points at a file"
        );
        let live: BTreeSet<Inode> = names.values().copied().collect();
        self.files.retain(|inode, _| live.contains(inode));
        self.names = names;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_move_over_inodes_and_a_relink_drops_what_no_name_holds() {
        let mut tree = FileTree::<Vec<u8>>::default();
        assert_eq!(
            tree.create(Path::new("d/f"), Vec::new).unwrap_err().kind(),
            io::ErrorKind::NotFound,
            "no parent"
        );
        tree.create_dir_all(Path::new("d/e"));
        let (inode, new) = tree.create(Path::new("d/f"), Vec::new).unwrap();
        assert!(new);
        tree.file_mut(inode).unwrap().extend_from_slice(b"abc");
        let (again, new) = tree.create(Path::new("d/f"), Vec::new).unwrap();
        assert_eq!((again, new), (inode, false), "emptied in place");
        assert!(tree.file(inode).unwrap().is_empty());
        assert_eq!(
            tree.rename(Path::new("d/f"), Path::new("d/g")).unwrap(),
            inode
        );
        assert_eq!(tree.list(Path::new("d")).unwrap(), vec!["e", "g"]);
        assert_eq!(tree.unlink(Path::new("d/g")).unwrap(), inode);
        assert!(tree.file(inode).is_ok(), "an open file keeps its inode");
        tree.relink(BTreeMap::new());
        assert!(tree.file(inode).is_err(), "dropped once no name holds it");
        tree.lock(Path::new("LOCK")).unwrap();
        assert_eq!(
            tree.lock(Path::new("LOCK")).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        tree.unlock(Path::new("LOCK"));
        tree.lock(Path::new("LOCK")).unwrap();
    }
}
