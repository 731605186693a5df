//! Recovery on open: makes the directories, turns a leftover `writing/tx.log` into a
//! finished log (cut at its first bad block), finds the highest seq, and opens a fresh
//! log. Idempotent: a crash anywhere in it leaves files the next run recovers the same way.
//!
//! Only the leftover log can hold crash damage (rotation fdatasyncs a log before it
//! renames it), and only after its last fdatasync: a torn, zero-filled or garbage tail, or
//! a hole followed by intact blocks. Nothing acknowledged as `Sync` lies past the first
//! bad block, so every recovery mode cuts there (and drops a batch the cut breaks), syncs
//! the cut, and only then renames the log into `reading/`. New records always go to a
//! new log, so nothing is ever appended after a torn tail.

use std::path::Path;

use crate::clock::Timestamp;
use crate::error::{IoContext, Result};
use crate::format::{Damage, DecodeLimits, LogDecoder, BLOCK_HEADER_LEN};
use crate::fs::{Fs, FsFile};
use crate::machine::commit::CommitRecord;
use crate::machine::dispatch::route_log;
use crate::machine::seq_lease::{self, SeqLease};
use crate::machine::writer::ActiveLog;
use crate::machine::{
    LogId, READING_DIR, SEQ_FLOOR_FILE, SEQ_FLOOR_MAGIC, TXLOGS_DIR, WRITING_DIR, WRITING_LOG,
};
use crate::options::RecoveryMode;
use crate::seq_file;

/// What recovery found and did with a leftover `writing/tx.log`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftoverLog {
    /// Its length as found.
    pub found_len: u64,
    /// The length it was cut to (equal to `found_len` when whole).
    pub kept_len: u64,
    /// Records kept.
    pub records: u64,
    /// The first damage, where it was cut.
    pub damage: Option<Damage>,
    /// The finished log it became in `reading/`, or `None` when it held no record and
    /// was removed.
    pub finished_as: Option<LogId>,
}

/// What recovery reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The leftover log, if there was one.
    pub leftover: Option<LeftoverLog>,
    /// Finished logs waiting in `reading/` after recovery.
    pub logs_waiting: usize,
}

/// The state a store starts from.
pub struct Recovered<F: Fs> {
    /// The records of the finished logs that the key store does not hold yet (above the
    /// watermark), in seq order, as the dispatcher will apply them: reads must see them.
    pub unapplied: Vec<CommitRecord>,
    /// The fresh, empty active log.
    pub log: ActiveLog<F>,
    /// New seqs start above it: the highest seq of any intact block or below the
    /// watermark, plus, for each finished log with damage (kept under `PointInTime` or
    /// `SkipCorrupt`), room for every seq the damage may hide; and never below the
    /// durable seq floor, which holds the room an earlier recovery left.
    pub last_seq: u64,
    /// The highest seq of any intact block found, or the watermark: what a caller may
    /// count on having been kept. At most `last_seq`.
    pub last_kept_seq: u64,
    /// The highest finished log name's timestamp; new names go above it.
    pub last_log_ts: u64,
    /// Each finished log found, with the highest seq of its intact blocks: for
    /// [`crate::machine::dispatch::Dispatcher::expect`], in case damage comes later.
    pub log_last_seqs: Vec<(LogId, u64)>,
    /// The lease new seqs start under, durable already ([`SeqLease::NONE`] without one).
    pub lease: SeqLease,
    /// What was found.
    pub report: RecoveryReport,
}

/// Recovers the store's logs. `watermark` is the key store's durable applied watermark (0
/// when none): seqs continue above it even when every log has been applied and removed,
/// and records at or below it are not unapplied. Finished logs are checked per `mode`:
/// under `Strict`, damage in any of them refuses the open with [`crate::Error::Corrupt`].
///
/// New seqs start above the durable seq floor (`txlogs/SEQ_FLOOR`), which holds the
/// [`SeqLease`] of the run before: every seq it handed out, whether or not a crash then
/// lost its record. Recovery makes the next lease, `lease_seqs` past where new seqs start,
/// durable before any is handed out (with `lease_seqs` 0, no lease: the floor is then
/// written only to leave room for seqs that damage hides, and seqs of records a crash
/// lost may be handed out again).
///
/// Invariant: every seq ever handed out is at most the floor, or (without a lease)
/// follows, consecutively, a seq at or above it. Without the floor, a later recovery
/// could find neither the damaged log (applied and removed) nor the first seq past the
/// room (its own log damaged too), and hand out again a seq the key store may hold: a
/// new record under it would be skipped as a duplicate. (Found by the simulator, seed
/// 11504.)
pub fn recover<F: Fs>(
    fs: &F,
    now: Timestamp,
    watermark: u64,
    mode: RecoveryMode,
    lease_seqs: u64,
) -> Result<Recovered<F>> {
    let _span = tracing::info_span!("recovery", ?mode, watermark).entered();
    make_dirs_durable(fs)?;
    let floor_path = Path::new(SEQ_FLOOR_FILE);
    let floor = seq_file::read(fs, floor_path, SEQ_FLOOR_MAGIC)?.unwrap_or(0);

    let reading = Path::new(READING_DIR);
    let mut last_log_ts = LogId::all_in(&fs.list(reading).io("listing", reading)?)
        .last()
        .map_or(0, |log| log.ts());
    let mut last_kept_seq = watermark;
    let leftover = recover_leftover(fs, now, &mut last_log_ts, &mut last_kept_seq)?;
    let found = read_finished_logs(fs, mode, watermark, floor, last_kept_seq)?;
    let last_kept_seq = found.last_kept_seq;
    let allowance_upto = found.allowance_upto;

    let last_seq = last_kept_seq.max(allowance_upto).max(floor);
    if allowance_upto > last_kept_seq.max(floor) {
        tracing::info!(
            last_kept_seq,
            floor = last_seq,
            "new seqs start above the room damage may hide (made durable in the seq floor)"
        );
    }
    // The floor to make durable: the lease's end, or (without one) the room left alone.
    let (lease, floor_upto) = match lease_seqs {
        0 => (SeqLease::NONE, last_seq),
        seqs => {
            let upto = last_seq.saturating_add(seqs);
            (SeqLease { upto, seqs }, upto)
        }
    };
    if floor_upto > floor && floor_upto > last_kept_seq {
        seq_lease::reserve(fs, floor_upto)?;
    }

    let writing_log = Path::new(WRITING_LOG);
    let log = ActiveLog::create(fs, writing_log).io("creating", writing_log)?;
    fs.sync_dir(Path::new(WRITING_DIR))
        .io("fsyncing", Path::new(WRITING_DIR))?;
    Ok(Recovered {
        unapplied: found.unapplied,
        log,
        last_seq,
        last_kept_seq,
        last_log_ts,
        log_last_seqs: found.log_last_seqs,
        lease,
        report: RecoveryReport {
            leftover,
            logs_waiting: found.logs_waiting,
        },
    })
}

/// Creates the log directories, then makes what a crashed process left visible durable
/// before building on it: a rename into `reading/` that a process crash interrupted before
/// its fsync is listed and counted, so it must not be undone by a later power loss.
/// (Found by the simulator.)
fn make_dirs_durable<F: Fs>(fs: &F) -> Result<()> {
    for dir in [WRITING_DIR, READING_DIR] {
        fs.create_dir_all(Path::new(dir))
            .io("creating", Path::new(dir))?;
    }
    for dir in [WRITING_DIR, READING_DIR, TXLOGS_DIR, ""] {
        fs.sync_dir(Path::new(dir)).io("fsyncing", Path::new(dir))?;
    }
    Ok(())
}

/// What the finished logs in `reading/` hold, as recovery reads them.
struct FinishedLogs {
    logs_waiting: usize,
    unapplied: Vec<CommitRecord>,
    log_last_seqs: Vec<(LogId, u64)>,
    /// The last seq kept: of the logs, the leftover log or the watermark.
    last_kept_seq: u64,
    /// The highest seq damage may hide (0: no damage).
    allowance_upto: u64,
}

/// Reads and checks every finished log per `mode`, after the leftover log left the last
/// seq kept at `last_kept_seq`, with the durable seq floor at `floor`.
fn read_finished_logs<F: Fs>(
    fs: &F,
    mode: RecoveryMode,
    watermark: u64,
    floor: u64,
    mut last_kept_seq: u64,
) -> Result<FinishedLogs> {
    let reading = Path::new(READING_DIR);
    let mut allowance_upto = 0;
    let mut logs_waiting = 0;
    let mut unapplied = Vec::new();
    let mut log_last_seqs = Vec::new();
    let mut routed_upto = watermark;
    for log in LogId::all_in(&fs.list(reading).io("listing", reading)?) {
        logs_waiting += 1;
        let path = log.path();
        let bytes = fs.read(&path).io("reading", &path)?;
        let routed = route_log(&path, &bytes, mode, routed_upto)?;
        last_kept_seq = last_kept_seq.max(routed.last_seq);
        if !routed.damage.is_empty() {
            tracing::warn!(
                %log,
                regions = routed.damage.len(),
                first_offset = routed.damage[0].offset,
                reason = %routed.damage[0].reason,
                ?mode,
                "damage in a finished log: its intact blocks are kept, the damaged batches dropped"
            );
            // A damaged block's seq cannot be read, yet it may have been applied before
            // the damage came: new seqs must not reuse it. Seqs are consecutive through
            // the logs, except that they jump to the floor after a recovery that left
            // room, and every block takes at least a header's bytes, so this log hid at
            // most `len / BLOCK_HEADER_LEN` seqs above what precedes them or the floor.
            let hidden = bytes.len() as u64 / BLOCK_HEADER_LEN as u64;
            let base = last_kept_seq.max(floor);
            allowance_upto = allowance_upto.max(base.saturating_add(hidden));
        }
        routed_upto = routed.last_routed_seq;
        unapplied.extend(routed.records);
        log_last_seqs.push((log, routed.last_seq));
    }
    Ok(FinishedLogs {
        logs_waiting,
        unapplied,
        log_last_seqs,
        last_kept_seq,
        allowance_upto,
    })
}

/// What the leftover `writing/tx.log` holds up to its first bad block.
struct LeftoverScan {
    records: u64,
    kept_last_seq: Option<u64>,
    /// The first bad block (a crash tail: never acknowledged), if any.
    damage: Option<Damage>,
    /// Bytes up to it.
    kept_len: u64,
}

impl LeftoverScan {
    fn of(bytes: &[u8]) -> Self {
        let mut decoder = LogDecoder::new(bytes, DecodeLimits::default());
        let mut scan = LeftoverScan {
            records: 0,
            kept_last_seq: None,
            damage: None,
            kept_len: 0,
        };
        for item in decoder.by_ref() {
            match item {
                Ok(batch) => {
                    scan.records += batch.blocks.len() as u64;
                    scan.kept_last_seq = batch.blocks.last().map(|b| b.seq);
                }
                Err(first) => {
                    scan.damage = Some(first);
                    break;
                }
            }
        }
        scan.kept_len = decoder.valid_prefix_len();
        scan
    }
}

/// Finishes the leftover log of a crashed run into `reading/` (cut at its first bad
/// block, synced), or removes it when it holds no record.
fn recover_leftover<F: Fs>(
    fs: &F,
    now: Timestamp,
    last_log_ts: &mut u64,
    last_seq: &mut u64,
) -> Result<Option<LeftoverLog>> {
    let path = Path::new(WRITING_LOG);
    let Some(found_len) = fs.len(path).io("inspecting", path)? else {
        return Ok(None);
    };
    let bytes = fs.read(path).io("reading", path)?;
    let LeftoverScan {
        records,
        kept_last_seq,
        damage,
        kept_len,
    } = LeftoverScan::of(&bytes);
    let writing_dir = Path::new(WRITING_DIR);
    if let Some(first) = &damage {
        tracing::info!(
            found_len,
            kept_len,
            offset = first.offset,
            reason = %first.reason,
            "the leftover log is cut at its first bad block (a crash tail: never acknowledged)"
        );
    }
    if records == 0 {
        tracing::debug!("the leftover log holds no record: removed");
        fs.remove(path).io("removing", path)?;
        fs.sync_dir(writing_dir).io("fsyncing", writing_dir)?;
        return Ok(Some(LeftoverLog {
            found_len,
            kept_len: 0,
            records,
            damage,
            finished_as: None,
        }));
    }
    if kept_len < found_len {
        fs.truncate(path, kept_len).io("cutting", path)?;
    }
    // Sync whatever survived (bytes a process crash left in the page cache, or the cut),
    // so that a log in reading/ is always whole.
    fs.open_append(path)
        .and_then(|mut file| file.sync_data())
        .io("syncing", path)?;
    let ts = now.0.max(last_log_ts.saturating_add(1));
    let finished = LogId::at(ts);
    let target = finished.path();
    fs.rename(path, &target).io("finishing", path)?;
    fs.sync_dir(Path::new(READING_DIR))
        .io("fsyncing", Path::new(READING_DIR))?;
    fs.sync_dir(writing_dir).io("fsyncing", writing_dir)?;
    *last_log_ts = ts;
    *last_seq = (*last_seq).max(kept_last_seq.unwrap_or(0));
    tracing::info!(records, log = %finished, "the leftover log is finished, to be applied");
    Ok(Some(LeftoverLog {
        found_len,
        kept_len,
        records,
        damage,
        finished_as: Some(finished),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_block, encode_log_header, BadReason, Block, Kind, LOG_HEADER_LEN};
    use crate::fs::MemFs;

    fn log_bytes(seqs: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_log_header(&mut out);
        for &seq in seqs {
            let block = Block {
                seq,
                kind: Kind::Append,
                batch_first: true,
                batch_left: 0,
                key: b"key",
                payload: b"payload",
            };
            encode_block(&mut out, &block);
        }
        out
    }

    fn decoded_seqs(fs: &MemFs, path: &Path) -> Vec<u64> {
        let bytes = fs.read(path).unwrap();
        LogDecoder::new(&bytes, DecodeLimits::default())
            .flat_map(|b| {
                b.unwrap()
                    .blocks
                    .into_iter()
                    .map(|b| b.seq)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn store_with_leftover(bytes: &[u8]) -> MemFs {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new(WRITING_DIR)).unwrap();
        fs.create_dir_all(Path::new(READING_DIR)).unwrap();
        fs.put(Path::new(WRITING_LOG), bytes).unwrap();
        fs
    }

    #[test]
    fn a_fresh_store_gets_its_directories_and_an_empty_log() {
        let fs = MemFs::new();
        let recovered = recover(&fs, Timestamp(5), 0, RecoveryMode::Strict, 0).unwrap();
        assert_eq!(recovered.last_seq, 0);
        assert_eq!(recovered.report.leftover, None);
        assert_eq!(
            fs.len(Path::new(WRITING_LOG)).unwrap(),
            Some(LOG_HEADER_LEN as u64)
        );
    }

    #[test]
    fn a_whole_leftover_moves_to_reading_and_seqs_continue() {
        let fs = store_with_leftover(&log_bytes(&[1, 2, 3]));
        let recovered = recover(&fs, Timestamp(7), 0, RecoveryMode::Strict, 0).unwrap();
        assert_eq!(recovered.last_seq, 3);
        let leftover = recovered.report.leftover.unwrap();
        assert_eq!(leftover.records, 3);
        assert_eq!(leftover.damage, None);
        let name = leftover.finished_as.unwrap();
        assert_eq!(
            fs.list(Path::new(READING_DIR)).unwrap(),
            vec![name.file_name()]
        );
        assert_eq!(decoded_seqs(&fs, &name.path()), vec![1, 2, 3]);
        assert_eq!(recovered.report.logs_waiting, 1);
    }

    #[test]
    fn a_torn_tail_is_cut_and_synced_before_the_rename() {
        let whole = log_bytes(&[1, 2, 3]);
        let fs = store_with_leftover(&whole[..whole.len() - 4]);
        let syncs_before = fs.file_syncs();
        let recovered = recover(&fs, Timestamp(7), 0, RecoveryMode::Strict, 0).unwrap();
        let leftover = recovered.report.leftover.unwrap();
        assert_eq!(leftover.damage.unwrap().reason, BadReason::Truncated);
        assert_eq!(leftover.records, 2);
        assert_eq!(
            recovered.last_seq, 2,
            "seqs continue after the last kept record"
        );
        assert!(fs.file_syncs() > syncs_before);
        let name = leftover.finished_as.unwrap();
        assert_eq!(decoded_seqs(&fs, &name.path()), vec![1, 2]);
        assert_eq!(fs.len(&name.path()).unwrap(), Some(leftover.kept_len));
    }

    #[test]
    fn zeros_the_writer_wrote_ahead_are_cut_like_a_crash_tail() {
        let mut bytes = log_bytes(&[1, 2]);
        let blocks_len = bytes.len() as u64;
        bytes.resize(bytes.len() + 4096, 0);
        let fs = store_with_leftover(&bytes);
        let recovered = recover(&fs, Timestamp(7), 0, RecoveryMode::Strict, 0).unwrap();
        let leftover = recovered.report.leftover.unwrap();
        assert_eq!(leftover.damage.unwrap().reason, BadReason::ZeroFilled);
        assert_eq!((leftover.records, leftover.kept_len), (2, blocks_len));
        assert_eq!(recovered.last_seq, 2);
        let name = leftover.finished_as.unwrap();
        assert_eq!(decoded_seqs(&fs, &name.path()), vec![1, 2]);
        assert_eq!(fs.len(&name.path()).unwrap(), Some(blocks_len));
    }

    #[test]
    fn a_hole_cuts_the_log_even_when_intact_blocks_follow() {
        let mut bytes = log_bytes(&[1, 2, 3]);
        let second = LOG_HEADER_LEN + crate::format::block_len(3, 7);
        bytes[second..second + 10].fill(0);
        let fs = store_with_leftover(&bytes);
        let recovered = recover(&fs, Timestamp(7), 0, RecoveryMode::Strict, 0).unwrap();
        let leftover = recovered.report.leftover.unwrap();
        assert_eq!(leftover.records, 1);
        assert!(!leftover.damage.unwrap().is_tail());
        assert_eq!(recovered.last_seq, 1);
    }

    #[test]
    fn a_leftover_without_records_is_removed() {
        let fs = store_with_leftover(&log_bytes(&[])[..5]);
        let recovered = recover(&fs, Timestamp(7), 0, RecoveryMode::Strict, 0).unwrap();
        assert_eq!(recovered.report.leftover.unwrap().finished_as, None);
        assert!(fs.list(Path::new(READING_DIR)).unwrap().is_empty());
        assert_eq!(recovered.report.logs_waiting, 0);
    }

    #[test]
    fn names_and_seqs_continue_above_existing_finished_logs_and_the_floor() {
        let fs = store_with_leftover(&log_bytes(&[11]));
        fs.put(&LogId::at(900).path(), &log_bytes(&[9, 10]))
            .unwrap();
        let recovered = recover(&fs, Timestamp(100), 0, RecoveryMode::Strict, 0).unwrap();
        assert_eq!(
            recovered.last_log_ts, 901,
            "the clock is behind the last name"
        );
        assert_eq!(recovered.last_seq, 11);
        assert_eq!(recovered.report.logs_waiting, 2);
        let again = recover(&MemFs::new(), Timestamp(0), 500, RecoveryMode::Strict, 0).unwrap();
        assert_eq!(again.last_seq, 500, "the key store's floor holds");
    }

    #[test]
    fn unapplied_records_above_the_watermark_are_handed_back_in_seq_order() {
        let fs = store_with_leftover(&log_bytes(&[7, 8]));
        fs.put(&LogId::at(900).path(), &log_bytes(&[4, 5, 6]))
            .unwrap();
        let recovered = recover(&fs, Timestamp(100), 5, RecoveryMode::Strict, 0).unwrap();
        let seqs: Vec<u64> = recovered.unapplied.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![6, 7, 8]);
    }

    #[test]
    fn strict_refuses_to_open_over_a_corrupt_finished_log() {
        let fs = store_with_leftover(&log_bytes(&[]));
        let mut bytes = log_bytes(&[1, 2]);
        let at = bytes.len() - 3;
        bytes[at] ^= 1;
        fs.put(&LogId::at(900).path(), &bytes).unwrap();
        assert!(matches!(
            recover(&fs, Timestamp(100), 0, RecoveryMode::Strict, 0),
            Err(crate::Error::Corrupt { .. })
        ));
        let tolerant = recover(&fs, Timestamp(100), 0, RecoveryMode::PointInTime, 0).unwrap();
        assert_eq!(tolerant.unapplied.len(), 1);
    }

    #[test]
    fn a_seq_hidden_by_damage_is_never_handed_out_again() {
        // The last block of the last log rots after it may have been applied: its seq
        // cannot be read, so new seqs must leave room above what is left.
        let fs = store_with_leftover(&log_bytes(&[]));
        let mut bytes = log_bytes(&[1, 2, 3]);
        let at = bytes.len() - 3;
        bytes[at] ^= 1;
        fs.put(&LogId::at(900).path(), &bytes).unwrap();
        for mode in [RecoveryMode::PointInTime, RecoveryMode::SkipCorrupt] {
            let recovered = recover(&fs, Timestamp(100), 0, mode, 0).unwrap();
            assert_eq!(recovered.last_kept_seq, 2, "{mode:?}");
            assert!(recovered.last_seq >= 3, "{mode:?}: {}", recovered.last_seq);
        }
        // Undamaged logs leave no gap.
        let clean = store_with_leftover(&log_bytes(&[]));
        clean
            .put(&LogId::at(900).path(), &log_bytes(&[1, 2, 3]))
            .unwrap();
        let recovered = recover(&clean, Timestamp(100), 0, RecoveryMode::SkipCorrupt, 0).unwrap();
        assert_eq!((recovered.last_seq, recovered.last_kept_seq), (3, 3));
    }

    #[test]
    fn the_room_left_for_hidden_seqs_outlives_the_damaged_log() {
        // Recovery leaves room above a rotten log and new seqs start past it. Once that
        // log is applied and removed, and the first log past the room rots too, only the
        // durable floor still says which seqs were handed out. (Simulator seed 11504.)
        let fs = store_with_leftover(&log_bytes(&[]));
        let rotten = |seqs: &[u64]| {
            let mut bytes = log_bytes(seqs);
            bytes[LOG_HEADER_LEN + 5] ^= 1;
            bytes
        };
        fs.put(&LogId::at(900).path(), &rotten(&[1, 2, 3, 4]))
            .unwrap();
        let first = recover(&fs, Timestamp(100), 0, RecoveryMode::SkipCorrupt, 0).unwrap();
        assert_eq!(first.last_kept_seq, 4, "the later blocks are intact");
        let room = first.last_seq;
        assert!(room > 4, "room for the seqs the damage may hide: {room}");
        let floor = seq_file::read(&fs, Path::new(SEQ_FLOOR_FILE), SEQ_FLOOR_MAGIC);
        assert_eq!(floor.unwrap(), Some(room), "the room is durable");

        fs.remove(&LogId::at(900).path()).unwrap();
        fs.put(&LogId::at(901).path(), &rotten(&[room + 1]))
            .unwrap();
        for mode in [RecoveryMode::PointInTime, RecoveryMode::SkipCorrupt] {
            let again = recover(&fs, Timestamp(200), 0, mode, 0).unwrap();
            assert!(
                again.last_seq > room,
                "{mode:?}: seq {} was handed out, new seqs start at {}",
                room + 1,
                again.last_seq + 1
            );
        }
    }

    #[test]
    fn an_undamaged_store_writes_no_seq_floor() {
        let fs = store_with_leftover(&log_bytes(&[1, 2]));
        recover(&fs, Timestamp(7), 0, RecoveryMode::SkipCorrupt, 0).unwrap();
        assert_eq!(fs.len(Path::new(SEQ_FLOOR_FILE)).unwrap(), None);
    }

    #[test]
    fn recovering_twice_is_the_same_as_once() {
        let whole = log_bytes(&[1, 2, 3]);
        let fs = store_with_leftover(&whole[..whole.len() - 1]);
        let first = recover(&fs, Timestamp(7), 0, RecoveryMode::Strict, 0).unwrap();
        let listed = fs.list(Path::new(READING_DIR)).unwrap();
        let second = recover(&fs, Timestamp(7), 0, RecoveryMode::Strict, 0).unwrap();
        assert_eq!(second.last_seq, first.last_seq);
        assert_eq!(
            fs.list(Path::new(READING_DIR)).unwrap(),
            listed,
            "the empty new log is dropped, not finished"
        );
    }
}
