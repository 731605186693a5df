//! Opening the key store: create it, or read the MANIFEST, cut what lies past each
//! segment's durable length (crash damage), remove segments the MANIFEST does not list
//! (created by a pass whose logs are still waiting), and rebuild the index from the run
//! indexes (each run's header and index are read; no group is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use super::manifest::{self, Manifest, MANIFEST_FILE, PARTITIONS_MAX};
use super::segment::{self, GroupRef, RunEntry, RUN_HEADER_LEN, SEGMENT_HEADER_LEN};
use super::{
    parse_segment_file_name, partition_dir, segment_path, KeyEntry, KeyStore, Partition,
    SegmentState, KEYS_DIR,
};
use crate::error::{Error, IoContext, Result};
use crate::format::BadReason;
use crate::fs::{Fs, FsFile};
use crate::options::RecoveryMode;

/// What opening found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The store was created by this open.
    pub created: bool,
    /// Segments cut back to their durable length: (path, length found, length kept).
    pub cut: Vec<(PathBuf, u64, u64)>,
    /// Segments the MANIFEST does not list, removed.
    pub removed: Vec<PathBuf>,
    /// Damage found in durable bytes and skipped (lenient modes): (path, offset, reason).
    pub damage: Vec<(PathBuf, u64, BadReason)>,
    /// Runs indexed.
    pub runs: u64,
}

/// How to open.
#[derive(Clone, Copy, Debug)]
pub struct OpenMode {
    /// Partitions of a store created by this open.
    pub partitions: u32,
    /// What to do with damage.
    pub recovery: RecoveryMode,
    /// Whether the open may change files (create, cut, remove). A read-only open leaves
    /// every file as it is and ignores what lies past the durable lengths.
    pub writable: bool,
}

impl OpenMode {
    /// Opens writable under `Strict`, creating a store of `partitions` if there is none.
    pub fn new_store(partitions: u32) -> Self {
        OpenMode {
            partitions,
            recovery: RecoveryMode::Strict,
            writable: true,
        }
    }
}

impl KeyStore {
    /// Opens (creating if `mode.writable` and there is none) the key store of `fs`.
    pub fn open<F: Fs>(fs: &F, mode: OpenMode) -> Result<(KeyStore, OpenReport)> {
        assert!(
            (1..=PARTITIONS_MAX).contains(&mode.partitions),
            "validated options"
        );
        let mut report = OpenReport::default();
        let manifest = match manifest::read(fs)? {
            // A crashed process may have renamed a new MANIFEST into place without
            // fsyncing `keys/`: it is visible, not durable. Make it durable before
            // anything (recovery skipping logs below its watermark) builds on it. (Found
            // by the simulator, seed 660.)
            Some(manifest) if mode.writable => {
                let dir = Path::new(KEYS_DIR);
                fs.sync_dir(dir).io("fsyncing", dir)?;
                manifest
            }
            Some(manifest) => manifest,
            None => {
                refuse_old_or_orphaned(fs)?;
                report.created = mode.writable;
                let fresh = Manifest {
                    partitions: mode.partitions,
                    watermark: 0,
                    segments: Vec::new(),
                };
                if mode.writable {
                    create(fs, &fresh)?;
                }
                fresh
            }
        };
        let mut partitions = Vec::with_capacity(manifest.partitions as usize);
        for partition in 0..manifest.partitions {
            let listed: Vec<_> = manifest
                .segments
                .iter()
                .filter(|s| s.partition == partition)
                .map(|s| (s.segment, s.durable_len))
                .collect();
            let part = open_partition(fs, partition, &listed, mode, &mut report)?;
            partitions.push(Mutex::new(part));
        }
        let store = KeyStore {
            partitions,
            mode: mode.recovery,
            watermark: AtomicU64::new(manifest.watermark),
            damage_skipped: AtomicU64::new(report.damage.len() as u64),
        };
        Ok((store, report))
    }
}

/// With no MANIFEST: refuses a directory that holds a store of the old one-file-per-key
/// layout, or segments that no MANIFEST describes (the MANIFEST was lost).
fn refuse_old_or_orphaned<F: Fs>(fs: &F) -> Result<()> {
    let root = Path::new(KEYS_DIR);
    let names = match fs.len(root) {
        Ok(_) => fs.list(root).unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let old = names
        .iter()
        .any(|n| n == "WATERMARK" || (n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit())));
    if old {
        return Err(Error::UnsupportedLayout {
            path: root.to_path_buf(),
            layout: "one file per key, keys/{hh}/{hash}.key with keys/WATERMARK",
        });
    }
    for name in names.iter().filter(|n| n.starts_with('p')) {
        let dir = root.join(name);
        let segments = fs.list(&dir).unwrap_or_default();
        if segments
            .iter()
            .any(|s| parse_segment_file_name(s).is_some())
        {
            return Err(Error::Corrupt {
                path: PathBuf::from(MANIFEST_FILE),
                offset: 0,
                reason: BadReason::Missing,
            });
        }
    }
    Ok(())
}

/// Creates `keys/`, the partition directories and the first MANIFEST, all durable.
fn create<F: Fs>(fs: &F, manifest: &Manifest) -> Result<()> {
    let root = Path::new(KEYS_DIR);
    fs.create_dir_all(root).io("creating", root)?;
    for partition in 0..manifest.partitions {
        let dir = partition_dir(partition);
        fs.create_dir_all(&dir).io("creating", &dir)?;
    }
    fs.sync_dir(root).io("fsyncing", root)?;
    fs.sync_dir(Path::new("")).io("fsyncing", Path::new(""))?;
    manifest::write(fs, manifest)
}

/// Opens one partition: its listed segments checked, cut and indexed, unlisted ones removed.
fn open_partition<F: Fs>(
    fs: &F,
    partition: u32,
    listed: &[(u32, u64)],
    mode: OpenMode,
    report: &mut OpenReport,
) -> Result<Partition> {
    let dir = partition_dir(partition);
    let names = match fs.list(&dir) {
        Ok(names) => names,
        Err(_) if !mode.writable => Vec::new(),
        Err(_) => {
            fs.create_dir_all(&dir).io("creating", &dir)?;
            Vec::new()
        }
    };
    let mut removed_any = false;
    for name in &names {
        let Some(number) = parse_segment_file_name(name) else {
            continue;
        };
        if mode.writable && !listed.iter().any(|(n, _)| *n == number) {
            let path = dir.join(name);
            fs.remove(&path).io("removing", &path)?;
            report.removed.push(path);
            removed_any = true;
        }
    }
    if removed_any {
        fs.sync_dir(&dir).io("fsyncing", &dir)?;
    }
    let mut part = Partition::default();
    let mut last_seq = 0;
    for &(number, durable_len) in listed {
        let path = segment_path(partition, number);
        let found = fs.len(&path).io("inspecting", &path)?.unwrap_or(0);
        let mut state = SegmentState {
            number,
            len: durable_len,
            sealed: false,
        };
        if found < durable_len || durable_len < SEGMENT_HEADER_LEN as u64 {
            damaged(
                mode,
                report,
                &path,
                found.min(durable_len),
                BadReason::Missing,
            )?;
            state = SegmentState {
                number,
                len: found.min(durable_len),
                sealed: true,
            };
        } else if found > durable_len && mode.writable {
            fs.truncate(&path, durable_len).io("cutting", &path)?;
            fs.open_append(&path)
                .io("opening", &path)?
                .sync_data()
                .io("syncing", &path)?;
            report.cut.push((path.clone(), found, durable_len));
        }
        let walked = index_segment(fs, partition, state, &mut part.index, &mut last_seq, report)?;
        if let Err((offset, reason)) = walked {
            damaged(mode, report, &path, offset, reason)?;
            state.sealed = true;
        }
        part.segments.push(state);
    }
    Ok(part)
}

/// Damage in durable bytes: refused under `Strict`, recorded otherwise.
fn damaged(
    mode: OpenMode,
    report: &mut OpenReport,
    path: &Path,
    offset: u64,
    reason: BadReason,
) -> Result<()> {
    if mode.recovery == RecoveryMode::Strict {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        });
    }
    report.damage.push((path.to_path_buf(), offset, reason));
    Ok(())
}

/// Indexes every run of a segment up to its length. Runs of a partition hold strictly
/// increasing seqs (`last_seq` carries the highest so far across its segments), so a
/// stale run, intact but out of place, is damage. `Err` gives where indexing stopped.
fn index_segment<F: Fs>(
    fs: &F,
    partition: u32,
    state: SegmentState,
    index: &mut BTreeMap<Vec<u8>, KeyEntry>,
    last_seq: &mut u64,
    report: &mut OpenReport,
) -> Result<Result<(), (u64, BadReason)>> {
    let path = segment_path(partition, state.number);
    // Every read lies within the length found on disk, so a failed one is an I/O error.
    let read = |offset: u64, len: usize| {
        fs.read_at(&path, offset, len)
            .io("reading", &path)
            .map(Ok::<_, (u64, BadReason)>)
    };
    macro_rules! damage {
        ($e:expr) => {
            match $e {
                Ok(value) => value,
                Err(found) => return Ok(Err(found)),
            }
        };
    }
    let header = damage!(read(0, SEGMENT_HEADER_LEN.min(state.len as usize))?);
    damage!(segment::check_segment_header(&header, partition, state.number).map_err(|r| (0, r)));
    let mut pos = SEGMENT_HEADER_LEN as u64;
    while pos < state.len {
        let room = state.len - pos;
        let bytes = damage!(read(pos, RUN_HEADER_LEN.min(room as usize))?);
        let run = damage!(segment::decode_run_header(&bytes, room).map_err(|r| (pos, r)));
        if run.first_seq <= *last_seq {
            return Ok(Err((pos, BadReason::SeqNotIncreasing)));
        }
        let index_at = pos + RUN_HEADER_LEN as u64;
        let bytes = damage!(read(index_at, run.index_len as usize)?);
        let entries = damage!(segment::decode_run_index(&bytes, &run).map_err(|r| (index_at, r)));
        let groups_at = index_at + u64::from(run.index_len);
        apply_run(index, state.number, groups_at, &entries);
        *last_seq = run.last_seq;
        report.runs += 1;
        pos += run.run_len;
    }
    Ok(Ok(()))
}

/// Applies one run's entries to the index, as the committer did when it wrote them.
fn apply_run(
    index: &mut BTreeMap<Vec<u8>, KeyEntry>,
    segment: u32,
    groups_at: u64,
    entries: &[RunEntry],
) {
    let mut offset = groups_at;
    for run_entry in entries {
        let entry = index.entry(run_entry.key.clone()).or_default();
        entry.last_seq = entry.last_seq.max(run_entry.op_last);
        entry.floor = entry.floor.max(run_entry.floor);
        if run_entry.count > 0 {
            entry.head = Some(GroupRef {
                segment,
                offset,
                len: run_entry.group_len,
                last_seq: run_entry.last_seq,
            });
        }
        if entry.head.is_some_and(|head| head.last_seq < entry.floor) {
            entry.head = None;
        }
        offset += u64::from(run_entry.group_len);
    }
}
