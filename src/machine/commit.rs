//! The committer: applies the records the dispatcher routed to it to their key files.
//!
//! One call to [`Committer::commit`] is one pass over every piece of work waiting (one or
//! several logs' worth): records are grouped by key, each key gets one write, then every
//! touched file, and the directory of every new one, is made durable with one
//! [`Fs::sync_files`] call (replacements are renamed after it and their directories
//! fsync'd) before the pass reports its logs done. A record whose seq is not above what the
//! key already holds is skipped, so any log may be applied any number of times.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{IoContext, Result};
use crate::format::Kind;
use crate::fs::{Fs, FsFile};
use crate::keystore::{self, RecordKind};

/// A record routed to a committer, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRecord {
    /// The record's seq.
    pub seq: u64,
    /// Append or delete.
    pub kind: Kind,
    /// The key.
    pub key: Vec<u8>,
    /// The payload; empty for a delete.
    pub payload: Vec<u8>,
}

/// One log's records for one committer, in seq order. An empty `records` still marks
/// where the log ends for this committer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitWork {
    /// The log's file name in `reading/`.
    pub log: String,
    /// The records, seqs strictly increasing.
    pub records: Vec<CommitRecord>,
}

/// What a pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// The logs whose records (for this committer) are now durable, in order.
    pub logs_done: Vec<String>,
    /// Records written to key files.
    pub applied: u64,
    /// Records skipped because their key already held them.
    pub skipped: u64,
    /// Key files made durable.
    pub files_synced: u64,
}

/// What the committer knows of a key it has touched in this process.
#[derive(Clone, Debug)]
struct KeySlot {
    path: PathBuf,
    /// The highest seq the key's file holds (tombstones included).
    last_seq: u64,
    /// Whether the file exists with a good header.
    exists: bool,
}

/// Key files kept open between passes, so that a key written again does not pay an open
/// and a close (an `openat` in ext4 costs about as much as the write). Bounded. When full,
/// a newly opened file is closed after its write rather than evicting one in use: a
/// committer visits about the same keys pass after pass, and evicting to make room would
/// close each file just before it is needed again (a cyclic scan defeats LRU), while
/// keeping the first ones open serves `max` of them every pass. So that the cache follows
/// a changing set of keys, a pass that turned files away ends by closing the ones it did
/// not use. Deterministic: no clock, no hash order.
struct OpenFiles {
    /// Each open file with the last pass that used it.
    files: BTreeMap<PathBuf, (Box<dyn FsFile>, u64)>,
    max: usize,
    /// The current pass.
    pass: u64,
    /// Files turned away for want of room in this pass.
    turned_away: u64,
}

impl std::fmt::Debug for OpenFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenFiles({} of {})", self.files.len(), self.max)
    }
}

impl OpenFiles {
    /// Appends `data` to the key file at `path` through its open handle, opening it
    /// first if it is not open yet (and keeping it open if there is room).
    fn append<F: Fs>(&mut self, fs: &F, path: &PathBuf, data: &[u8]) -> Result<()> {
        if let Some((file, used)) = self.files.get_mut(path) {
            *used = self.pass;
            let appended = file.append(data);
            if appended.is_err() {
                self.files.remove(path);
            }
            return appended.io("appending to", path);
        }
        let mut file = match fs.open_append(path) {
            Ok(file) => file,
            // Out of descriptors: close every cached file and try once more.
            Err(e) if e.raw_os_error() == Some(EMFILE) => {
                self.files.clear();
                fs.open_append(path).io("opening", path)?
            }
            Err(e) => return Err(e).io("opening", path),
        };
        file.append(data).io("appending to", path)?;
        self.insert(path.clone(), Box::new(file));
        Ok(())
    }

    /// Keeps `file` open as `path` if there is room (else it is closed here).
    fn insert(&mut self, path: PathBuf, file: Box<dyn FsFile>) {
        if self.files.len() >= self.max {
            self.turned_away += 1;
            return;
        }
        self.files.insert(path, (file, self.pass));
    }

    /// Closes the handle of `path`, if open (a rename is about to put another file there).
    fn forget(&mut self, path: &PathBuf) {
        self.files.remove(path);
    }

    /// Ends a pass: if files were turned away, closes those this pass did not use.
    fn end_pass(&mut self) {
        if self.turned_away > 0 {
            let pass = self.pass;
            self.files.retain(|_, (_, used)| *used == pass);
        }
        self.turned_away = 0;
        self.pass += 1;
        assert!(
            self.files.len() <= self.max,
            "the open-file cache stays bounded"
        );
    }
}

/// `EMFILE`: the process is out of file descriptors.
const EMFILE: i32 = 24;

/// Applies routed records to the key store. One per committer thread.
#[derive(Debug)]
pub struct Committer {
    slots: BTreeMap<Vec<u8>, KeySlot>,
    slots_max: usize,
    /// Invariant: a path here names the file the handle has open (a rename over the path
    /// removes it first).
    open_files: OpenFiles,
    /// Fan-out directories fsync'd by this committer since it started. A key file found
    /// on disk may have been created by a process that crashed before fsyncing its
    /// directory; the first pass that touches a directory fsyncs it, so nothing this
    /// committer reports durable rests on a directory entry that is not. (Found by the
    /// simulator.)
    dirs_synced: std::collections::BTreeSet<PathBuf>,
}

impl Committer {
    /// A committer that remembers at most `slots_max` keys between passes (it forgets them
    /// all when full: a forgotten key is looked up in its file again) and keeps at most
    /// `open_files_max` key files open between passes.
    pub fn new(slots_max: usize, open_files_max: usize) -> Self {
        Committer {
            slots: BTreeMap::new(),
            slots_max: slots_max.max(1),
            open_files: OpenFiles {
                files: BTreeMap::new(),
                max: open_files_max,
                pass: 0,
                turned_away: 0,
            },
            dirs_synced: std::collections::BTreeSet::new(),
        }
    }

    /// Applies every record of `work` and makes it durable. On error nothing is reported
    /// done; the caller stops (the logs stay and are applied again after a restart).
    pub fn commit<F: Fs>(&mut self, fs: &F, work: &[CommitWork]) -> Result<CommitOutcome> {
        let result = self.apply(fs, work);
        self.open_files.end_pass();
        result
    }

    fn apply<F: Fs>(&mut self, fs: &F, work: &[CommitWork]) -> Result<CommitOutcome> {
        let mut by_key: BTreeMap<&[u8], Vec<&CommitRecord>> = BTreeMap::new();
        for piece in work {
            for record in &piece.records {
                by_key.entry(&record.key).or_default().push(record);
            }
        }
        if self.slots.len() + by_key.len() > self.slots_max {
            self.slots.clear();
        }
        let mut outcome = CommitOutcome::default();
        let mut touched = Vec::new();
        // Directories whose entries must be durable: those of new (or found, unsynced)
        // files, synced with the files; those of replacements, synced after the rename.
        let mut new_dirs = std::collections::BTreeSet::new();
        let mut renamed_dirs = std::collections::BTreeSet::new();
        let mut buf = Vec::new();
        // (replacement written beside, file it replaces), renamed once synced.
        let mut replacements: Vec<(PathBuf, PathBuf)> = Vec::new();
        for (key, records) in by_key {
            let (slot, loaded) = self.slot(fs, key)?;
            let dir = slot.path.parent().map(PathBuf::from).unwrap_or_default();
            if loaded && slot.exists {
                // What a crashed process wrote may be visible without being durable: sync
                // a file found on disk, and its directory entry, before anything skipped
                // because of it is reported durable. Once per key per process. (Found by
                // the simulator.)
                touched.push(slot.path.clone());
                if !self.dirs_synced.contains(&dir) {
                    new_dirs.insert(dir.clone());
                }
            }
            let offered = records.len();
            let fresh: Vec<&CommitRecord> = records
                .into_iter()
                .filter(|r| r.seq > slot.last_seq)
                .collect();
            outcome.skipped += (offered - fresh.len()) as u64;
            if fresh.is_empty() {
                if loaded && slot.exists {
                    self.slots.insert(key.to_vec(), slot);
                }
                continue;
            }
            for pair in fresh.windows(2) {
                assert!(
                    pair[0].seq < pair[1].seq,
                    "a key's records reach its committer in seq order"
                );
            }
            buf.clear();
            let last_delete = fresh.iter().rposition(|r| r.kind == Kind::Delete);
            let rewrite = last_delete.is_some() || !slot.exists;
            let from = match last_delete {
                Some(at) => {
                    keystore::encode_key_header(&mut buf, key);
                    keystore::encode_key_record(
                        &mut buf,
                        fresh[at].seq,
                        RecordKind::Tombstone,
                        &[],
                    );
                    at + 1
                }
                None => {
                    if !slot.exists {
                        keystore::encode_key_header(&mut buf, key);
                    }
                    0
                }
            };
            for record in &fresh[from..] {
                keystore::encode_key_record(
                    &mut buf,
                    record.seq,
                    RecordKind::Append,
                    &record.payload,
                );
            }
            // A file that holds records is never cut in place: its replacement is written
            // beside it and renamed over it once synced, so a crash leaves the old file or
            // the new one, never a file emptied before its new content was durable. (Found
            // by the simulator: a delete half applied, then its log damaged, showed a key
            // with the delete's losses and none of its effect.)
            let (write_path, replaced) = if rewrite && slot.exists {
                let tmp = keystore::replacement_path(&slot.path);
                (tmp, true)
            } else {
                (slot.path.clone(), false)
            };
            if replaced {
                // The rename below puts another file at the path: its handle must go.
                self.open_files.forget(&slot.path);
                let mut file = fs.create(&write_path).io("creating", &write_path)?;
                file.append(&buf).io("appending to", &write_path)?;
            } else if rewrite {
                let mut file = fs.create(&write_path).io("creating", &write_path)?;
                file.append(&buf).io("appending to", &write_path)?;
                self.open_files.insert(write_path.clone(), Box::new(file));
            } else {
                self.open_files.append(fs, &write_path, &buf)?;
            }
            if replaced {
                touched.push(write_path.clone());
                replacements.push((write_path, slot.path.clone()));
                renamed_dirs.insert(dir.clone());
            }
            if !slot.exists || !self.dirs_synced.contains(&dir) {
                new_dirs.insert(dir);
            }
            let last_seq = fresh.last().map_or(slot.last_seq, |r| r.seq);
            outcome.applied += fresh.len() as u64;
            let synced_already = loaded && slot.exists;
            if !synced_already && !replaced {
                touched.push(slot.path.clone());
            }
            self.slots.insert(
                key.to_vec(),
                KeySlot {
                    path: slot.path,
                    last_seq,
                    exists: true,
                },
            );
        }
        // A directory with a replacement in it is synced after the rename, which covers
        // its new files too.
        let dirs_now: Vec<PathBuf> = new_dirs.difference(&renamed_dirs).cloned().collect();
        if !touched.is_empty() || !dirs_now.is_empty() {
            fs.sync_files(&touched, &dirs_now).io(
                "syncing key files in",
                std::path::Path::new(keystore::KEYS_DIR),
            )?;
        }
        self.dirs_synced.extend(dirs_now);
        for (from, to) in &replacements {
            fs.rename(from, to).io("renaming", from)?;
        }
        for dir in renamed_dirs {
            fs.sync_dir(&dir).io("fsyncing", &dir)?;
            self.dirs_synced.insert(dir);
        }
        outcome.files_synced = touched.len() as u64;
        outcome.logs_done = work.iter().map(|w| w.log.clone()).collect();
        Ok(outcome)
    }

    /// The key's slot: remembered (`false`), or found in the key store (`true`), cutting a
    /// torn tail first so that the next append lands right after the last intact record.
    fn slot<F: Fs>(&mut self, fs: &F, key: &[u8]) -> Result<(KeySlot, bool)> {
        if let Some(slot) = self.slots.get(key) {
            return Ok((slot.clone(), false));
        }
        let located = keystore::locate(fs, key)?;
        let slot = match located.file {
            Some(file) => {
                let len = fs
                    .len(&located.path)
                    .io("inspecting", &located.path)?
                    .unwrap_or(0);
                if file.valid_len < len {
                    fs.truncate(&located.path, file.valid_len)
                        .io("cutting", &located.path)?;
                }
                KeySlot {
                    path: located.path,
                    last_seq: file.last_seq,
                    exists: true,
                }
            }
            None => KeySlot {
                path: located.path,
                last_seq: 0,
                exists: false,
            },
        };
        Ok((slot, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use crate::keystore::{create_dirs, locate};

    fn rec(seq: u64, kind: Kind, key: &str, payload: &str) -> CommitRecord {
        CommitRecord {
            seq,
            kind,
            key: key.as_bytes().to_vec(),
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn work(log: &str, records: Vec<CommitRecord>) -> CommitWork {
        CommitWork {
            log: log.into(),
            records,
        }
    }

    fn payloads(fs: &MemFs, key: &str) -> Vec<(u64, String)> {
        locate(fs, key.as_bytes())
            .unwrap()
            .file
            .map(|f| {
                f.records
                    .into_iter()
                    .map(|r| (r.seq, String::from_utf8(r.payload).unwrap()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn setup() -> MemFs {
        let fs = MemFs::new();
        create_dirs(&fs).unwrap();
        fs
    }

    #[test]
    fn records_land_in_their_keys_in_seq_order_with_one_sync_call() {
        let fs = setup();
        let mut committer = Committer::new(1000, 16);
        let pieces = [
            work(
                "a",
                vec![
                    rec(1, Kind::Append, "x", "1"),
                    rec(2, Kind::Append, "y", "2"),
                ],
            ),
            work("b", vec![rec(3, Kind::Append, "x", "3")]),
        ];
        let outcome = committer.commit(&fs, &pieces).unwrap();
        assert_eq!(outcome.logs_done, vec!["a", "b"]);
        assert_eq!(outcome.applied, 3);
        assert_eq!(outcome.files_synced, 2);
        assert_eq!(payloads(&fs, "x"), vec![(1, "1".into()), (3, "3".into())]);
        assert_eq!(payloads(&fs, "y"), vec![(2, "2".into())]);
    }

    #[test]
    fn applying_the_same_work_again_changes_nothing() {
        let fs = setup();
        let pieces = [work(
            "a",
            vec![
                rec(1, Kind::Append, "x", "1"),
                rec(2, Kind::Delete, "y", ""),
                rec(3, Kind::Append, "x", "3"),
            ],
        )];
        Committer::new(1000, 16).commit(&fs, &pieces).unwrap();
        let before = (payloads(&fs, "x"), payloads(&fs, "y"));
        // A fresh committer (as after a restart) and the same one both skip everything.
        for mut committer in [
            Committer::new(1000, 16),
            Committer::new(1, 1),
            Committer::new(1000, 0),
        ] {
            let outcome = committer.commit(&fs, &pieces).unwrap();
            assert_eq!(outcome.applied, 0);
            assert_eq!(outcome.skipped, 3);
        }
        assert_eq!((payloads(&fs, "x"), payloads(&fs, "y")), before);
    }

    #[test]
    fn a_delete_removes_the_key_and_a_later_append_starts_it_afresh() {
        let fs = setup();
        let mut committer = Committer::new(1000, 16);
        committer
            .commit(&fs, &[work("a", vec![rec(1, Kind::Append, "k", "old")])])
            .unwrap();
        committer
            .commit(
                &fs,
                &[work(
                    "b",
                    vec![
                        rec(2, Kind::Delete, "k", ""),
                        rec(3, Kind::Append, "k", "new"),
                    ],
                )],
            )
            .unwrap();
        assert_eq!(payloads(&fs, "k"), vec![(3, "new".into())]);
        committer
            .commit(&fs, &[work("c", vec![rec(4, Kind::Delete, "k", "")])])
            .unwrap();
        assert_eq!(payloads(&fs, "k"), vec![]);
        // Replaying the first log after the delete (a fresh committer) does not bring it back.
        Committer::new(1000, 16)
            .commit(&fs, &[work("a", vec![rec(1, Kind::Append, "k", "old")])])
            .unwrap();
        assert_eq!(payloads(&fs, "k"), vec![]);
        assert!(
            keystore::list_keys(&fs).unwrap().is_empty(),
            "a deleted key is not listed"
        );
    }

    #[test]
    fn a_torn_key_file_tail_is_cut_before_the_next_append() {
        let fs = setup();
        Committer::new(1000, 16)
            .commit(&fs, &[work("a", vec![rec(1, Kind::Append, "k", "one")])])
            .unwrap();
        let path = locate(&fs, b"k").unwrap().path;
        let len = fs.len(&path).unwrap().unwrap() as usize;
        fs.overwrite(&path, len, b"WREC garbage that is a torn record")
            .unwrap();
        Committer::new(1000, 16)
            .commit(&fs, &[work("b", vec![rec(2, Kind::Append, "k", "two")])])
            .unwrap();
        assert_eq!(
            payloads(&fs, "k"),
            vec![(1, "one".into()), (2, "two".into())]
        );
        assert_eq!(locate(&fs, b"k").unwrap().file.unwrap().damage, None);
    }

    #[test]
    fn a_full_open_file_cache_keeps_its_files_and_follows_a_changing_key_set() {
        let fs = setup();
        let mut committer = Committer::new(1000, 2);
        let open = |c: &Committer| -> Vec<PathBuf> { c.open_files.files.keys().cloned().collect() };
        let path = |key: &str| locate(&fs, key.as_bytes()).unwrap().path;
        let pass = |c: &mut Committer, seq: u64, keys: &[&str]| {
            let records = keys
                .iter()
                .enumerate()
                .map(|(i, k)| rec(seq + i as u64, Kind::Append, k, "v"))
                .collect();
            c.commit(&fs, &[work("a", records)]).unwrap();
        };
        pass(&mut committer, 1, &["a", "b", "c"]);
        let first = open(&committer);
        assert_eq!(first.len(), 2, "bounded");
        pass(&mut committer, 10, &["a", "b", "c"]);
        assert_eq!(
            open(&committer),
            first,
            "the same keys again: the open files stay, none is evicted for a newcomer"
        );
        pass(&mut committer, 20, &["x", "y", "z"]);
        pass(&mut committer, 30, &["x", "y", "z"]);
        let now = open(&committer);
        assert_eq!(now.len(), 2);
        assert!(
            now.iter()
                .all(|p| [path("x"), path("y"), path("z")].contains(p)),
            "files of keys no longer written are closed: {now:?}"
        );
    }

    #[test]
    fn a_failed_sync_reports_no_log_done() {
        let fs = setup();
        fs.fail_next_sync();
        let result = Committer::new(1000, 16)
            .commit(&fs, &[work("a", vec![rec(1, Kind::Append, "k", "v")])]);
        assert!(result.is_err());
    }
}
