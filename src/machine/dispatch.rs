//! The dispatcher: takes finished logs in name order, decodes them per the recovery mode,
//! routes each record to committer `key_hash(key) % C`, and retires a log once every
//! committer that got records from it has made them durable: first the durable applied
//! watermark moves past the log, then the log is removed and `reading/` fsync'd.
//!
//! Call order for a driver: list `reading/`, ask [`Dispatcher::next_log`], read that file
//! and hand it to [`Dispatcher::dispatch`], give each committer its [`CommitWork`]; report
//! each committer's finished logs with [`Dispatcher::handle_committed`]; then
//! [`Dispatcher::take_finished`] and [`Dispatcher::finish`] retire what is done.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::format::{Damage, DecodeLimits, LogDecoder};
use crate::fs::Fs;
use crate::index::PendingIndex;
use crate::keystore::{committer_for_partition, partition_for, KeyStore};
use crate::machine::commit::{CommitRecord, CommitWork};
use crate::machine::{LogId, READING_DIR};
use crate::options::RecoveryMode;

/// A log handed out and not yet retired.
#[derive(Clone, Debug)]
struct InFlight {
    log: LogId,
    /// The highest seq in the log (0 when it holds none).
    last_seq: u64,
    /// Committers that got records from this log and have not reported them durable.
    pending: BTreeSet<usize>,
}

/// What [`Dispatcher::dispatch`] made of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispatched {
    /// The log.
    pub log: LogId,
    /// Work per committer, for the committers that got records.
    pub work: Vec<(usize, CommitWork)>,
    /// Records routed.
    pub routed: u64,
    /// Records skipped because an earlier log already carried their seq (a replay).
    pub duplicates: u64,
    /// Damaged regions skipped (`SkipCorrupt`) or where the log was stopped (`PointInTime`).
    pub damage: Vec<Damage>,
}

/// The records a finished log contributes, per the recovery mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutedLog {
    /// Records whose seq is above `after_seq`, in seq order.
    pub records: Vec<CommitRecord>,
    /// The highest seq any intact block of the log holds or claims for its batch
    /// ([`LogDecoder::claimed_upto`]), duplicates, damaged batches and blocks past a
    /// `PointInTime` stop included (0 when none): where the watermark goes once the log is
    /// retired, the same measure recovery uses for the store's last seq.
    pub last_seq: u64,
    /// The highest seq of `records` (or `after_seq` when there are none).
    pub last_routed_seq: u64,
    /// Records at or below `after_seq`: carried by an earlier log already.
    pub duplicates: u64,
    /// Damage skipped (`SkipCorrupt`) or where the log was stopped (`PointInTime`).
    pub damage: Vec<Damage>,
}

/// Decodes the log at `path` and keeps, per `mode`, the records above `after_seq`.
/// The one rule for what a log contributes: the dispatcher routes exactly these, and
/// recovery indexes exactly these for reads. `Strict` refuses any damage with
/// [`Error::Corrupt`] naming the file and offset.
pub fn route_log(
    path: &Path,
    bytes: &[u8],
    mode: RecoveryMode,
    after_seq: u64,
) -> Result<RoutedLog> {
    let mut routed = RoutedLog {
        records: Vec::new(),
        last_seq: 0,
        last_routed_seq: after_seq,
        duplicates: 0,
        damage: Vec::new(),
    };
    let mut decoder = LogDecoder::new(bytes, DecodeLimits::default());
    for item in decoder.by_ref() {
        let batch = match item {
            Ok(batch) => batch,
            Err(found) => {
                if mode == RecoveryMode::Strict {
                    return Err(Error::Corrupt {
                        path: path.to_path_buf(),
                        offset: found.offset,
                        reason: found.reason,
                    });
                }
                routed.damage.push(found);
                if mode == RecoveryMode::PointInTime {
                    break;
                }
                continue;
            }
        };
        for block in batch.blocks {
            if block.seq <= routed.last_routed_seq {
                routed.duplicates += 1;
                continue;
            }
            routed.last_routed_seq = block.seq;
            routed.records.push(CommitRecord {
                seq: block.seq,
                kind: block.kind,
                key: block.key.to_vec(),
                payload: block.payload.to_vec(),
            });
        }
    }
    for _ in decoder.by_ref() {}
    // A damaged batch's seqs past its last intact block count too: dropped whole, so the
    // watermark never falls inside it, and a later copy of the log (a pristine one put
    // back) cannot bring back part of it (simulator seed 36027).
    routed.last_seq = decoder.claimed_upto();
    Ok(routed)
}

/// Logs whose records are all durable in the key store, ready to be retired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    /// The applied watermark once they are retired.
    pub watermark: u64,
    /// The logs, in order.
    pub logs: Vec<LogId>,
}

/// The pending index's upkeep that a retirement makes due ([`Dispatcher::finish`]):
/// every record up to the watermark is in the key store, durably recorded, so the index
/// lets it go. Only a retirement makes one, so the index never lets a record go earlier.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "the pending index must let go of what the key store now holds"]
pub struct IndexTrim {
    upto: u64,
}

impl IndexTrim {
    /// The applied watermark the index is trimmed to.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// Trims at most `max_ops` entries; true while more remain (a driver sharing the
    /// index with callers lets its lock go between steps).
    pub fn step(&self, index: &mut PendingIndex, max_ops: usize) -> bool {
        index.trim_some(self.upto, max_ops)
    }

    /// Trims all of it at once.
    pub fn apply(self, index: &mut PendingIndex) {
        index.trim(self.upto);
    }
}

/// Routes logs to committers and retires them in order.
#[derive(Debug)]
pub struct Dispatcher {
    committers: usize,
    /// The key store's partitions: a key goes to the committer of its partition.
    partitions: u32,
    mode: RecoveryMode,
    in_flight_max: usize,
    /// The durable applied watermark: every seq at or below it is in the key store.
    watermark: u64,
    /// Invariant: every seq at or below has been routed, was already applied, or was
    /// dropped on purpose (damage under `PointInTime`/`SkipCorrupt`);
    /// `watermark <= dispatched_seq`.
    dispatched_seq: u64,
    in_flight: VecDeque<InFlight>,
    /// The last seq of finished logs not yet dispatched, as the driver knew it while they
    /// were whole (see [`Dispatcher::expect`]).
    known_last_seqs: BTreeMap<LogId, u64>,
    /// The last log retired: a late [`Dispatcher::expect`] for it or an earlier one is
    /// dropped.
    retired: Option<LogId>,
    /// The last log found in `reading/` at open, until every log up to it is retired or
    /// gone from `reading/`: a `flush` right after open waits for those logs too.
    found_at_open: Option<LogId>,
}

impl Dispatcher {
    /// A dispatcher for `committers` committers, starting from the durable `watermark`,
    /// with at most `in_flight_max` logs handed out and not retired.
    pub fn new(
        committers: usize,
        partitions: u32,
        mode: RecoveryMode,
        watermark: u64,
        in_flight_max: usize,
    ) -> Self {
        assert!(committers >= 1, "at least one committer");
        Dispatcher {
            committers,
            partitions,
            mode,
            in_flight_max: in_flight_max.max(1),
            watermark,
            dispatched_seq: watermark,
            in_flight: VecDeque::new(),
            known_last_seqs: BTreeMap::new(),
            retired: None,
            found_at_open: None,
        }
    }

    /// The logs found in `reading/` at open end with `last` (recovery lists them).
    pub fn await_found_at_open(&mut self, last: LogId) {
        self.found_at_open = Some(last);
    }

    /// Whether every log found at open is retired (or gone): from then on, what a flush
    /// waits for is the applied watermark alone.
    pub fn found_at_open_settled(&self) -> bool {
        self.found_at_open.is_none()
    }

    /// A listing of `reading/` (its logs, in order): a log found at open that is no longer
    /// there (removed by hand) is not waited for.
    pub fn note_listing(&mut self, logs: &[LogId]) {
        if self
            .found_at_open
            .is_some_and(|last| logs.first().is_none_or(|first| *first > last))
        {
            self.found_at_open = None;
        }
    }

    /// The finished log `log` held blocks up to `last_seq` when it was whole: rotation
    /// knows it as it finishes the log, recovery as it reads the logs it finds. If damage
    /// later hides the log's last blocks (`PointInTime`, `SkipCorrupt`), retiring the log
    /// still covers them: they are dropped on purpose, so the watermark, and with it the
    /// pending index and `flush`, move past them instead of waiting for seqs no log will
    /// bring. (Simulator seed 197849: a pending record outlived the drain.)
    pub fn expect(&mut self, log: LogId, last_seq: u64) {
        if let Some(entry) = self.in_flight.iter_mut().find(|f| f.log == log) {
            entry.last_seq = entry.last_seq.max(last_seq);
            self.dispatched_seq = self.dispatched_seq.max(last_seq);
        } else if Some(log) > self.retired {
            let known = self.known_last_seqs.entry(log).or_default();
            *known = (*known).max(last_seq);
        }
    }

    /// The durable applied watermark.
    pub fn watermark(&self) -> u64 {
        self.watermark
    }

    /// Logs handed out and not yet retired.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The next log to dispatch among `logs` (the logs in `reading/`, in order): the
    /// first not already in flight, unless the in-flight bound is reached.
    pub fn next_log(&self, logs: &[LogId]) -> Option<LogId> {
        if self.in_flight.len() >= self.in_flight_max {
            return None;
        }
        logs.iter()
            .copied()
            .find(|log| !self.in_flight.iter().any(|f| f.log == *log))
    }

    /// Decodes the log `log` (its bytes) and routes its records. Records whose seq is
    /// not above every seq already routed are duplicates of an earlier log (a replay) and
    /// are dropped here; the key store would skip them anyway.
    ///
    /// Damage follows the recovery mode: `Strict` refuses with [`Error::Corrupt`] (nothing
    /// is routed), `PointInTime` keeps what precedes the first damage, `SkipCorrupt` skips
    /// every damaged region (a damaged batch is dropped whole) and reports them.
    pub fn dispatch(&mut self, log: LogId, bytes: &[u8]) -> Result<Dispatched> {
        assert!(
            !self.in_flight.iter().any(|f| f.log == log),
            "a log is dispatched once until it is retired"
        );
        let routed_log = route_log(&log.path(), bytes, self.mode, self.dispatched_seq)?;
        // Blocks past a `PointInTime` stop, or hidden by damage, are dropped on purpose:
        // they count as dispatched, so a later copy of them is not routed either.
        let last_seq = routed_log
            .last_seq
            .max(self.known_last_seqs.remove(&log).unwrap_or(0));
        self.dispatched_seq = self
            .dispatched_seq
            .max(routed_log.last_routed_seq)
            .max(last_seq);
        let routed = routed_log.records.len() as u64;
        let mut per_committer: Vec<Vec<CommitRecord>> = vec![Vec::new(); self.committers];
        for record in routed_log.records {
            let partition = partition_for(&record.key, self.partitions);
            per_committer[committer_for_partition(partition, self.committers)].push(record);
        }
        let work: Vec<(usize, CommitWork)> = per_committer
            .into_iter()
            .enumerate()
            .filter(|(_, records)| !records.is_empty())
            .map(|(committer, records)| (committer, CommitWork { log, records }))
            .collect();
        self.in_flight.push_back(InFlight {
            log,
            last_seq,
            pending: work.iter().map(|(c, _)| *c).collect(),
        });
        Ok(Dispatched {
            log,
            work,
            routed,
            duplicates: routed_log.duplicates,
            damage: routed_log.damage,
        })
    }

    /// Committer `committer` has made its records of `log` durable.
    pub fn handle_committed(&mut self, committer: usize, log: LogId) {
        let entry = self
            .in_flight
            .iter_mut()
            .find(|f| f.log == log)
            .expect("a committer reports only logs it was given");
        assert!(
            entry.pending.remove(&committer),
            "a committer reports a log once"
        );
    }

    /// Takes the logs at the front whose every committer is done (they retire in order).
    pub fn take_finished(&mut self) -> Option<Finished> {
        let mut logs = Vec::new();
        let mut watermark = self.watermark;
        while self.in_flight.front().is_some_and(|f| f.pending.is_empty()) {
            if let Some(done) = self.in_flight.pop_front() {
                watermark = watermark.max(done.last_seq);
                // A replayed copy may carry an older name than a log already retired.
                self.retired = self.retired.max(Some(done.log));
                logs.push(done.log);
            }
        }
        let retired = self.retired;
        self.known_last_seqs.retain(|log, _| Some(*log) > retired);
        if self.found_at_open.is_some_and(|last| retired >= Some(last)) {
            self.found_at_open = None;
        }
        (!logs.is_empty()).then_some(Finished { watermark, logs })
    }

    /// Retires finished logs: a MANIFEST recording the segments' durable lengths and the
    /// new watermark is made durable first (when the watermark moved), then the logs are
    /// removed and `reading/` fsync'd. A crash between the two leaves logs the watermark
    /// already covers: replayed, skipped. Then the pending index may let go of them: the
    /// trim returned says how far.
    pub fn finish<F: Fs>(
        &mut self,
        fs: &F,
        store: &KeyStore,
        finished: &Finished,
    ) -> Result<IndexTrim> {
        assert!(
            finished.watermark >= self.watermark,
            "the watermark never goes back"
        );
        assert!(
            finished.watermark <= self.dispatched_seq,
            "nothing is applied before it is routed"
        );
        if finished.watermark > self.watermark {
            store.write_manifest(fs, finished.watermark)?;
            self.watermark = finished.watermark;
        }
        for log in &finished.logs {
            let path = log.path();
            fs.remove(&path).io("removing", &path)?;
        }
        fs.sync_dir(Path::new(READING_DIR))
            .io("fsyncing", Path::new(READING_DIR))?;
        Ok(IndexTrim {
            upto: self.watermark,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_block, encode_log_header, Block, Kind, LOG_HEADER_LEN};
    use crate::fs::MemFs;

    fn log(seqs: &[(u64, &'static str)]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_log_header(&mut out);
        for &(seq, key) in seqs {
            let block = Block {
                seq,
                kind: Kind::Append,
                batch_first: true,
                batch_left: 0,
                key: key.as_bytes(),
                payload: b"p",
            };
            encode_block(&mut out, &block);
        }
        out
    }

    fn setup() -> (MemFs, KeyStore) {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new(READING_DIR)).unwrap();
        let (store, _) = KeyStore::open(&fs, crate::keystore::OpenMode::new_store(4)).unwrap();
        (fs, store)
    }

    #[test]
    fn records_go_to_the_committer_of_their_key_hash() {
        let mut dispatcher = Dispatcher::new(3, 4, RecoveryMode::Strict, 0, 4);
        let keys = ["a", "b", "c", "d", "e", "f"];
        let seqs: Vec<(u64, &str)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (i as u64 + 1, *k))
            .collect();
        let dispatched = dispatcher.dispatch(LogId::at(1), &log(&seqs)).unwrap();
        assert_eq!(dispatched.routed, 6);
        for (committer, work) in &dispatched.work {
            for record in &work.records {
                assert_eq!(
                    committer_for_partition(partition_for(&record.key, 4), 3),
                    *committer
                );
            }
        }
    }

    #[test]
    fn logs_retire_in_order_and_the_watermark_follows() {
        let (fs, store) = setup();
        let names = [LogId::at(1), LogId::at(2)];
        fs.put(&names[0].path(), &log(&[(1, "a")])).unwrap();
        fs.put(&names[1].path(), &log(&[(2, "a")])).unwrap();
        let mut dispatcher = Dispatcher::new(1, 4, RecoveryMode::Strict, 0, 4);
        let listing = LogId::all_in(&fs.list(Path::new(READING_DIR)).unwrap());
        let first = dispatcher.next_log(&listing).unwrap();
        assert_eq!(first, names[0]);
        dispatcher.dispatch(first, &log(&[(1, "a")])).unwrap();
        let second = dispatcher.next_log(&listing).unwrap();
        assert_eq!(second, names[1]);
        dispatcher.dispatch(second, &log(&[(2, "a")])).unwrap();
        assert_eq!(dispatcher.next_log(&listing), None, "both are in flight");
        assert_eq!(dispatcher.in_flight(), 2);
        dispatcher.handle_committed(0, second);
        assert_eq!(
            dispatcher.take_finished(),
            None,
            "the first is not done: nothing retires"
        );
        dispatcher.handle_committed(0, first);
        let finished = dispatcher.take_finished().unwrap();
        assert_eq!(finished.logs, names.to_vec());
        assert_eq!(finished.watermark, 2);
        assert_eq!(dispatcher.in_flight(), 0, "retired logs are out of flight");
        let trim = dispatcher.finish(&fs, &store, &finished).unwrap();
        assert_eq!(
            trim.upto(),
            2,
            "the index lets go of what the key store holds"
        );
        assert_eq!(
            crate::keystore::manifest::read(&fs)
                .unwrap()
                .unwrap()
                .watermark,
            2
        );
        assert!(fs.list(Path::new(READING_DIR)).unwrap().is_empty());
    }

    #[test]
    fn a_log_whose_tail_rots_still_retires_past_the_seqs_it_held() {
        for mode in [RecoveryMode::PointInTime, RecoveryMode::SkipCorrupt] {
            let (fs, store) = setup();
            let name = LogId::at(1);
            let mut bytes = log(&[(1, "a"), (2, "a")]);
            let last_block = bytes.len() - 3;
            bytes[last_block] ^= 1;
            fs.put(&name.path(), &bytes).unwrap();
            let mut dispatcher = Dispatcher::new(1, 4, mode, 0, 4);
            dispatcher.expect(name, 2);
            dispatcher.expect(LogId::at(9), 40);
            let dispatched = dispatcher.dispatch(name, &bytes).unwrap();
            assert_eq!(dispatched.routed, 1, "{mode:?}: seq 2 is hidden");
            dispatcher.handle_committed(0, name);
            let finished = dispatcher.take_finished().unwrap();
            assert_eq!(
                finished.watermark, 2,
                "{mode:?}: the hidden seq is dropped on purpose, not awaited"
            );
            let trim = dispatcher.finish(&fs, &store, &finished).unwrap();
            assert_eq!(trim.upto(), 2, "{mode:?}");

            // What was known of a later log outlives the retirement of an earlier one.
            let later = LogId::at(9);
            let mut later_bytes = log(&[(3, "a"), (40, "a")]);
            let last_block = later_bytes.len() - 3;
            later_bytes[last_block] ^= 1;
            fs.put(&later.path(), &later_bytes).unwrap();
            assert_eq!(dispatcher.dispatch(later, &later_bytes).unwrap().routed, 1);
            dispatcher.handle_committed(0, later);
            let finished = dispatcher.take_finished().unwrap();
            assert_eq!(finished.watermark, 40, "{mode:?}: seq 40 is hidden");

            // Without the rotation's word, the watermark stops at the last intact seq.
            let mut unaware = Dispatcher::new(1, 4, mode, 0, 4);
            unaware.dispatch(name, &bytes).unwrap();
            unaware.handle_committed(0, name);
            assert_eq!(unaware.take_finished().unwrap().watermark, 1, "{mode:?}");
        }
    }

    #[test]
    fn a_replayed_log_routes_nothing_and_retires_at_once() {
        let mut dispatcher = Dispatcher::new(2, 4, RecoveryMode::Strict, 10, 4);
        let dispatched = dispatcher
            .dispatch(LogId::at(8), &log(&[(9, "a"), (10, "b")]))
            .unwrap();
        assert_eq!(dispatched.routed, 0);
        assert_eq!(dispatched.duplicates, 2);
        assert!(dispatched.work.is_empty());
        assert_eq!(dispatcher.take_finished().unwrap().watermark, 10);
    }

    #[test]
    fn a_copy_of_a_log_in_flight_routes_nothing() {
        let mut dispatcher = Dispatcher::new(1, 4, RecoveryMode::Strict, 0, 4);
        dispatcher
            .dispatch(LogId::at(1), &log(&[(1, "a"), (2, "b")]))
            .unwrap();
        let copy = dispatcher
            .dispatch(LogId::at(2), &log(&[(1, "a"), (2, "b")]))
            .unwrap();
        assert_eq!(copy.routed, 0);
        assert_eq!(copy.duplicates, 2);
    }

    fn corrupt_middle() -> Vec<u8> {
        let mut bytes = log(&[(1, "a"), (2, "b"), (3, "c")]);
        let second = LOG_HEADER_LEN + crate::format::block_len(1, 1);
        bytes[second + 20] ^= 0x40;
        bytes
    }

    #[test]
    fn strict_refuses_corruption_with_file_and_offset() {
        let mut dispatcher = Dispatcher::new(1, 4, RecoveryMode::Strict, 0, 4);
        match dispatcher.dispatch(LogId::at(9), &corrupt_middle()) {
            Err(Error::Corrupt { path, offset, .. }) => {
                assert_eq!(path, LogId::at(9).path());
                assert_eq!(
                    offset,
                    (LOG_HEADER_LEN + crate::format::block_len(1, 1)) as u64
                );
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        assert_eq!(dispatcher.in_flight(), 0);
    }

    #[test]
    fn point_in_time_keeps_what_precedes_the_damage() {
        let mut dispatcher = Dispatcher::new(1, 4, RecoveryMode::PointInTime, 0, 4);
        let dispatched = dispatcher
            .dispatch(LogId::at(9), &corrupt_middle())
            .unwrap();
        assert_eq!(dispatched.routed, 1);
        assert_eq!(dispatched.damage.len(), 1);
    }

    #[test]
    fn skip_corrupt_skips_the_damage_and_keeps_the_rest() {
        let mut dispatcher = Dispatcher::new(1, 4, RecoveryMode::SkipCorrupt, 0, 4);
        let dispatched = dispatcher
            .dispatch(LogId::at(9), &corrupt_middle())
            .unwrap();
        assert_eq!(dispatched.routed, 2);
        let seqs: Vec<u64> = dispatched.work[0].1.records.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 3]);
        assert_eq!(dispatched.damage.len(), 1);
    }

    #[test]
    fn the_logs_found_at_open_settle_when_retired_or_gone() {
        let mut dispatcher = Dispatcher::new(1, 4, RecoveryMode::Strict, 0, 4);
        dispatcher.await_found_at_open(LogId::at(2));
        dispatcher
            .dispatch(LogId::at(1), &log(&[(1, "a")]))
            .unwrap();
        dispatcher.handle_committed(0, LogId::at(1));
        dispatcher.take_finished().unwrap();
        assert!(
            !dispatcher.found_at_open_settled(),
            "log 2 is not retired yet"
        );
        dispatcher.note_listing(&[LogId::at(2), LogId::at(3)]);
        assert!(!dispatcher.found_at_open_settled(), "log 2 is still there");
        dispatcher
            .dispatch(LogId::at(2), &log(&[(2, "a")]))
            .unwrap();
        dispatcher.handle_committed(0, LogId::at(2));
        dispatcher.take_finished().unwrap();
        assert!(dispatcher.found_at_open_settled(), "retired");

        let mut gone = Dispatcher::new(1, 4, RecoveryMode::Strict, 0, 4);
        gone.await_found_at_open(LogId::at(5));
        gone.note_listing(&[LogId::at(6)]);
        assert!(
            gone.found_at_open_settled(),
            "removed by hand: not waited for"
        );
    }

    /// A batch whose last block is damaged is dropped whole, and the watermark goes past
    /// all of its seqs (the intact blocks say how many follow), so a pristine copy of the
    /// log put back later brings back none of it (simulator seed 36027: the watermark
    /// stopped at the last intact block, and the copy brought back the batch's last seq).
    #[test]
    fn a_damaged_batch_is_covered_whole_and_a_pristine_copy_brings_back_none_of_it() {
        let mut bytes = Vec::new();
        encode_log_header(&mut bytes);
        let mut block = |seq, first, left| {
            let block = Block {
                seq,
                kind: Kind::Append,
                batch_first: first,
                batch_left: left,
                key: b"k",
                payload: b"p",
            };
            encode_block(&mut bytes, &block);
        };
        block(1, true, 0);
        block(2, true, 2);
        block(3, false, 1);
        block(4, false, 0);
        let pristine = bytes.clone();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        for mode in [RecoveryMode::PointInTime, RecoveryMode::SkipCorrupt] {
            let routed = route_log(Path::new("log"), &bytes, mode, 0).unwrap();
            assert_eq!(
                routed.records.len(),
                1,
                "{mode:?}: the batch 2..=4 is dropped"
            );
            assert_eq!(routed.last_seq, 4, "{mode:?}: its seqs are covered");
            let mut dispatcher = Dispatcher::new(1, 4, mode, 0, 4);
            dispatcher.dispatch(LogId::at(1), &bytes).unwrap();
            dispatcher.handle_committed(0, LogId::at(1));
            assert_eq!(dispatcher.take_finished().unwrap().watermark, 4);
            let copy = dispatcher.dispatch(LogId::at(2), &pristine).unwrap();
            assert_eq!(copy.routed, 0, "{mode:?}: nothing of the batch comes back");
        }
    }
}
