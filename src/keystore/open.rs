//! Opening the key store: create it, or read the MANIFEST, cut what lies past each
//! segment's durable length (crash damage), remove segments the MANIFEST does not list
//! (created by a pass whose logs are still waiting), and rebuild the index from the run
//! indexes (each run's header and index are read; no group is).

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

use super::checkpoint;
use super::manifest::{self, CheckpointEntry, Manifest, MANIFEST_FILE, PARTITIONS_MAX};
use super::segment::{self, GroupRef, RunEntry, RunOrder, RUN_HEADER_LEN, SEGMENT_HEADER_LEN};
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
                    ..Manifest::default()
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
            let named = manifest
                .checkpoints
                .iter()
                .find(|c| c.partition == partition)
                .copied();
            let part = open_partition(fs, partition, &listed, named, mode, &mut report)?;
            partitions.push(Mutex::new(part));
        }
        let store = KeyStore {
            partitions,
            mode: mode.recovery,
            watermark: AtomicU64::new(manifest.watermark),
            damage_skipped: AtomicU64::new(report.damage.len() as u64),
            manifest_writer: Mutex::new(()),
        };
        Ok((store, report))
    }
}

/// With no MANIFEST: refuses a directory that holds a store of the old one-file-per-key
/// layout, or segments that no MANIFEST describes (the MANIFEST was lost).
fn refuse_old_or_orphaned<F: Fs>(fs: &F) -> Result<()> {
    let root = Path::new(KEYS_DIR);
    let names = list_if_any(fs, root)?;
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
        let segments = list_if_any(fs, &dir)?;
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

/// The names in `dir`, none when it does not exist. Any other failure is an error: a
/// listing that failed must not pass for an empty directory (the simulator found a store
/// that took a failed listing for one, missed a segment it had to remove, and created
/// that segment again over it).
pub(crate) fn list_if_any<F: Fs>(fs: &F, dir: &Path) -> Result<Vec<String>> {
    match fs.list(dir) {
        Ok(names) => Ok(names),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).io("listing", dir),
    }
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

/// Removes the files of the partition's directory `dir` (listed as `names`) that the
/// MANIFEST does not name: segments not in `listed`, checkpoints other than `named` (a
/// crash left them).
fn remove_unlisted<F: Fs>(
    fs: &F,
    dir: &Path,
    names: &[String],
    listed: &[(u32, u64)],
    named: Option<CheckpointEntry>,
    report: &mut OpenReport,
) -> Result<()> {
    let mut removed_any = false;
    for name in names {
        let unlisted = match (
            parse_segment_file_name(name),
            checkpoint::parse_checkpoint_file_name(name),
        ) {
            (Some(number), _) => !listed.iter().any(|(n, _)| *n == number),
            (_, Some(number)) => named.is_none_or(|c| c.number != number),
            _ => false,
        };
        if unlisted {
            let path = dir.join(name);
            fs.remove(&path).io("removing", &path)?;
            tracing::info!(path = %path.display(), "removed a key-store file no MANIFEST names (a crash left it)");
            report.removed.push(path);
            removed_any = true;
        }
    }
    if removed_any {
        fs.sync_dir(dir).io("fsyncing", dir)?;
    }
    Ok(())
}

/// Checks segment `number`'s length at `path` against its durable length: shorter is
/// damage (the segment is sealed at what is there); longer is a crash tail, cut back
/// (when writable).
fn check_segment_len<F: Fs>(
    fs: &F,
    path: &Path,
    number: u32,
    durable_len: u64,
    mode: OpenMode,
    report: &mut OpenReport,
) -> Result<SegmentState> {
    let found = fs.len(path).io("inspecting", path)?.unwrap_or(0);
    if found < durable_len || durable_len < SEGMENT_HEADER_LEN as u64 {
        let len = found.min(durable_len);
        damaged(mode, report, path, len, BadReason::Missing)?;
        return Ok(SegmentState {
            number,
            len,
            sealed: true,
        });
    }
    if found > durable_len && mode.writable {
        fs.truncate(path, durable_len).io("cutting", path)?;
        fs.open_append(path)
            .io("opening", path)?
            .sync_data()
            .io("syncing", path)?;
        tracing::info!(
            path = %path.display(),
            found,
            durable_len,
            "cut a segment back to its durable length (a crash tail)"
        );
        report.cut.push((path.to_path_buf(), found, durable_len));
    }
    Ok(SegmentState {
        number,
        len: durable_len,
        sealed: false,
    })
}

/// Opens one partition: its listed segments checked, cut and indexed, unlisted ones removed.
fn open_partition<F: Fs>(
    fs: &F,
    partition: u32,
    listed: &[(u32, u64)],
    named: Option<CheckpointEntry>,
    mode: OpenMode,
    report: &mut OpenReport,
) -> Result<Partition> {
    let dir = partition_dir(partition);
    let names = list_if_any(fs, &dir)?;
    if names.is_empty() && mode.writable {
        fs.create_dir_all(&dir).io("creating", &dir)?;
    }
    if mode.writable {
        remove_unlisted(fs, &dir, &names, listed, named, report)?;
    }
    let mut part = Partition::new(partition, mode.recovery);
    let covers = load_checkpoint(fs, &mut part, listed, named, mode, report)?;
    let mut order = RunOrder::default();
    for &(number, durable_len) in listed {
        let path = segment_path(partition, number);
        let mut state = check_segment_len(fs, &path, number, durable_len, mode, report)?;
        let strict = mode.recovery == RecoveryMode::Strict;
        let runs_before = part.runs;
        // Runs before the checkpoint's position are in it already.
        let start = match covers {
            Some((segment, _)) if number < segment => None,
            Some((segment, offset)) if number == segment => {
                order = RunOrder::after_checkpoint();
                Some(offset)
            }
            _ => Some(SEGMENT_HEADER_LEN as u64),
        };
        let found = match start {
            Some(start) => {
                index_segment(fs, partition, state, start, &mut part, &mut order, strict)?
            }
            None => Vec::new(),
        };
        report.runs += part.runs - runs_before;
        for &(offset, reason) in &found {
            damaged(mode, report, &path, offset, reason)?;
        }
        // No run goes after damage: the next is appended to a new segment.
        state.sealed |= !found.is_empty();
        part.segments.push(state);
    }
    let dir = partition_dir(partition);
    part.damage_found = report
        .damage
        .iter()
        .any(|(path, ..)| path.starts_with(&dir));
    Ok(part)
}

/// Loads the partition's checkpoint the MANIFEST names, and returns the position it covers
/// up to. A damaged or misplaced one is refused under `Strict`; the lenient modes index
/// every run instead (the checkpoint only ever repeats what the runs say).
fn load_checkpoint<F: Fs>(
    fs: &F,
    part: &mut Partition,
    listed: &[(u32, u64)],
    named: Option<CheckpointEntry>,
    mode: OpenMode,
    report: &mut OpenReport,
) -> Result<Option<(u32, u64)>> {
    let Some(named) = named else {
        return Ok(None);
    };
    let path = checkpoint::checkpoint_path(named.partition, named.number);
    let covers = (named.covers_segment, named.covers_offset);
    let in_bounds = covers.1 == 0
        || listed.iter().any(|&(n, len)| {
            n == covers.0 && covers.1 >= SEGMENT_HEADER_LEN as u64 && covers.1 <= len
        });
    let loaded = if in_bounds {
        checkpoint::load(fs, named.partition, named.number)?
    } else {
        Err((0, BadReason::BadField))
    };
    match loaded {
        Ok(checkpoint) => {
            part.set_checkpoint(checkpoint, covers);
            part.compacted_kib = named.compacted_kib;
            Ok(Some(covers))
        }
        Err((offset, reason)) => {
            damaged(mode, report, &path, offset, reason)?;
            // The MANIFEST names it: a checkpoint written over it would be trusted by
            // the next open against runs that MANIFEST does not list (seed 12386).
            part.set_unusable_checkpoint(named.number);
            Ok(None)
        }
    }
}

/// Damage in durable bytes: refused under `Strict`, recorded otherwise.
fn damaged(
    mode: OpenMode,
    report: &mut OpenReport,
    path: &Path,
    offset: u64,
    reason: BadReason,
) -> Result<()> {
    let damage = (path, offset, reason);
    super::refuse_if_strict(mode.recovery, damage, "damage in the key store")?;
    report.damage.push((path.to_path_buf(), offset, reason));
    Ok(())
}

/// Indexes every run of a segment up to its length, and returns the damage met. Runs of
/// a partition come in [`RunOrder`] (`order` carries it across its segments), so a stale
/// run, intact but out of place, is damage too. With
/// `stop_at_damage` (`Strict`) the walk ends at the first damage; otherwise it skips what
/// the damage touched, resuming at the next intact run whose seqs follow (found by its
/// magic and checksums).
fn index_segment<F: Fs>(
    fs: &F,
    partition: u32,
    state: SegmentState,
    start: u64,
    index: &mut Partition,
    order: &mut RunOrder,
    stop_at_damage: bool,
) -> Result<Vec<(u64, BadReason)>> {
    let path = segment_path(partition, state.number);
    let mut damage = Vec::new();
    // Every read lies within the length found on disk, so a failed one is an I/O error.
    let header = fs
        .read_at(&path, 0, SEGMENT_HEADER_LEN.min(state.len as usize))
        .io("reading", &path)?;
    if let Err(reason) = segment::check_segment_header(&header, partition, state.number) {
        damage.push((0, reason));
        if stop_at_damage {
            return Ok(damage);
        }
    }
    let mut pos = start.max(SEGMENT_HEADER_LEN as u64);
    while pos < state.len {
        match read_run(fs, &path, pos, state.len, order)? {
            Ok((run, entries)) => {
                let groups_at = pos + RUN_HEADER_LEN as u64 + u64::from(run.index_len);
                if apply_run(fs, index, state.number, groups_at, &entries)? {
                    index.runs += 1;
                    order.pass(&run, &entries);
                    pos += run.run_len;
                    continue;
                }
                // Intact, but some key's records do not follow what the key holds: a
                // stale run (seeds 42882, 48196 put one at a checkpoint's position).
                damage.push((pos, BadReason::SeqNotIncreasing));
                if stop_at_damage {
                    return Ok(damage);
                }
                pos = resync(fs, &path, pos + 1, state.len, order)?;
            }
            Err(found) => {
                damage.push((found.offset, found.reason));
                if stop_at_damage {
                    return Ok(damage);
                }
                // Not even a run whose header holds is skipped by its length: a stale
                // run's length is its own, not that of the run it overwrote (the
                // simulator found a stale copy longer than the run it hid, whose length
                // led past the start of the next run).
                pos = resync(fs, &path, pos + 1, state.len, order)?;
            }
        }
    }
    Ok(damage)
}

/// Bytes read past a run header in the same read, in the hope that they hold its index.
const RUN_INDEX_READ_AHEAD: usize = 4096;

/// Damage where a run should be: where and what.
struct RunDamage {
    offset: u64,
    reason: BadReason,
}

/// Reads and checks the run at `pos` (one that `order` admits).
fn read_run<F: Fs>(
    fs: &F,
    path: &Path,
    pos: u64,
    len: u64,
    order: &RunOrder,
) -> Result<Result<(segment::RunHeader, Vec<RunEntry>), RunDamage>> {
    let room = len - pos;
    // One read takes the header and, most often, the whole index after it.
    let ahead = (RUN_HEADER_LEN + RUN_INDEX_READ_AHEAD).min(room as usize);
    let bytes = fs.read_at(path, pos, ahead).io("reading", path)?;
    let run = match segment::decode_run_header(&bytes, room) {
        Ok(run) => run,
        Err(reason) => {
            return Ok(Err(RunDamage {
                offset: pos,
                reason,
            }))
        }
    };
    let skip = |offset, reason| Ok(Err(RunDamage { offset, reason }));
    if !order.admits(&run) {
        return skip(pos, BadReason::SeqNotIncreasing);
    }
    let index_at = pos + RUN_HEADER_LEN as u64;
    let index_end = RUN_HEADER_LEN + run.index_len as usize;
    let index = match bytes.get(RUN_HEADER_LEN..index_end) {
        Some(index) => index.to_vec(),
        None => fs
            .read_at(path, index_at, run.index_len as usize)
            .io("reading", path)?,
    };
    match segment::decode_run_index(&index, &run) {
        Ok(entries) if order.admits_run(&run, &entries) => Ok(Ok((run, entries))),
        Ok(_) => skip(pos, BadReason::SeqNotIncreasing),
        Err(reason) => skip(index_at, reason),
    }
}

/// The offset of the first intact run at or after `from` that `order` admits, or `len`
/// when there is none. Reads the rest of the segment once: only damage comes here.
fn resync<F: Fs>(fs: &F, path: &Path, from: u64, len: u64, order: &RunOrder) -> Result<u64> {
    if from >= len {
        return Ok(len);
    }
    let rest = fs
        .read_at(path, from, (len - from) as usize)
        .io("reading", path)?;
    let magic = segment::RUN_MAGIC.to_le_bytes();
    for at in 0..rest.len() {
        if !rest[at..].starts_with(&magic) {
            continue;
        }
        let Ok(run) = segment::decode_run_header(&rest[at..], (rest.len() - at) as u64) else {
            continue;
        };
        let index_at = at + RUN_HEADER_LEN;
        let index = &rest[index_at..index_at + run.index_len as usize];
        let admitted = segment::decode_run_index(index, &run)
            .is_ok_and(|entries| order.admits_run(&run, &entries));
        if admitted {
            return Ok(from + at as u64);
        }
    }
    Ok(len)
}

/// Applies one run's entries to the index, as the committer did when it wrote them, if
/// every key's operations in it follow what the key holds (the committer writes only seqs
/// above a key's last, so a run that does not is stale); returns whether it applied them.
/// [`RunOrder`] cannot tell this by itself past an index checkpoint, whose covered seqs
/// it does not know.
fn apply_run<F: Fs>(
    fs: &F,
    index: &mut Partition,
    segment: u32,
    groups_at: u64,
    entries: &[RunEntry],
) -> Result<bool> {
    let mut updated: Vec<(&[u8], KeyEntry)> = Vec::new();
    let mut offset = groups_at;
    for run_entry in entries {
        let mut entry = match updated.last_mut() {
            Some((key, entry)) if *key == run_entry.key.as_slice() => *entry,
            _ => {
                let before = index.lookup(fs, &run_entry.key)?.unwrap_or_default();
                if run_entry.first_seq <= before.last_seq {
                    return Ok(false);
                }
                updated.push((&run_entry.key, before));
                before
            }
        };
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
        updated.last_mut().expect("pushed above").1 = entry;
        offset += u64::from(run_entry.group_len);
    }
    for (key, entry) in updated {
        index.insert(key, entry);
    }
    Ok(true)
}
