//! Rotation: closes the active log and moves it into `reading/` under a name that is
//! strictly greater than every earlier one, then opens a fresh `writing/tx.log`.
//!
//! The steps, each durable before the next: cut the log's preallocated zeros and
//! fdatasync it; rename it to
//! `reading/tx-{ts}.log`; fsync `reading/` and `writing/` (the rename is durable on both
//! sides); create the new log (header fdatasync'd); fsync `writing/` again for the new
//! file. The rename must be durable before the new `tx.log` is created: a file system may
//! persist unsynced directory operations in any subset, and a new `tx.log` entry persisted
//! without the rename would leave the old log, acknowledged records and all, with no name.
//! (Found by the simulator.)

use std::path::Path;

use crate::clock::Timestamp;
use crate::fs::Fs;
use crate::machine::writer::{ActiveLog, Poisoned, Writer};
use crate::machine::{LogId, READING_DIR, WRITING_DIR, WRITING_LOG};

/// What a call to [`Rotation::rotate`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotated {
    /// The log held no record: nothing moved, the interval starts again.
    Empty,
    /// The log moved to `reading/` as this finished log.
    Finished {
        /// The finished log.
        log: LogId,
        /// Whether rotation itself fdatasync'd the log (it held unsynced bytes).
        synced: bool,
    },
}

/// Decides when to rotate and names finished logs.
///
/// Call order: [`Rotation::request`] whenever a flush (or a full backlog) asks;
/// [`Rotation::is_due`] after each writer pass and whenever [`Rotation::poll_timeout`]
/// has passed; [`Rotation::rotate`] when it is due.
#[derive(Clone, Debug)]
pub struct Rotation {
    interval_ms: u64,
    bytes_max: u64,
    opened_at: Timestamp,
    /// Invariant: every finished log's name is at most `tx-{last_ts}`; the next is above.
    last_ts: u64,
    /// Every seq at or below is in a finished log.
    finished_upto: u64,
    /// Rotate once every seq up to this one is written. Invariant: 0 (no request) or
    /// above `finished_upto` (a request already met is dropped).
    requested_upto: u64,
}

impl Rotation {
    /// A rotation policy for a log opened at `opened_at`, after finished logs whose
    /// highest name timestamp is `last_ts` and that hold every seq up to `finished_upto`.
    pub fn new(
        interval_ms: u64,
        bytes_max: u64,
        opened_at: Timestamp,
        last_ts: u64,
        finished_upto: u64,
    ) -> Self {
        Rotation {
            interval_ms,
            bytes_max,
            opened_at,
            last_ts,
            finished_upto,
            requested_upto: 0,
        }
    }

    /// Asks for a rotation, without waiting for the interval, as soon as every seq up to
    /// `upto` is written (a flush waits for them to reach a finished log). A request for
    /// seqs already in finished logs asks nothing.
    pub fn request(&mut self, upto: u64) {
        if upto > self.finished_upto {
            self.requested_upto = self.requested_upto.max(upto);
        }
    }

    /// The seqs a request waits for to reach a finished log (0: none).
    pub fn requested_upto(&self) -> u64 {
        self.requested_upto
    }

    /// When to call back by time: the interval's end. Calling earlier is harmless.
    pub fn deadline(&self) -> Timestamp {
        self.opened_at.plus_ms(self.interval_ms)
    }

    /// How long the driver may wait, from `now`, before calling [`Self::is_due`] again:
    /// `None` when it is due now; `u64::MAX` microseconds while the log is empty (nothing
    /// is due until a pass writes a record); otherwise until the interval ends (above 0).
    pub fn poll_timeout<F: Fs>(&self, now: Timestamp, writer: &Writer<F>) -> Option<u64> {
        if self.is_due(now, writer) {
            return None;
        }
        if writer.log().records == 0 {
            return Some(u64::MAX);
        }
        let wait = self.deadline().micros_since(now);
        assert!(wait > 0, "a log past its interval is due");
        Some(wait)
    }

    /// Whether the active log should rotate now: it holds records and either the
    /// interval has passed, the clock stepped back past its opening, it is full, or a
    /// request's seqs are all written.
    pub fn is_due<F: Fs>(&self, now: Timestamp, writer: &Writer<F>) -> bool {
        let log = writer.log();
        assert_eq!(
            writer.last_seq() - log.records,
            self.finished_upto,
            "seqs are consecutive: the active log holds those after the finished logs"
        );
        let requested = self.requested_upto > 0 && writer.last_seq() >= self.requested_upto;
        log.records > 0
            && (requested
                || now >= self.deadline()
                || now < self.opened_at
                || log.bytes >= self.bytes_max)
    }

    /// The finished log a rotation at `now` makes: named by `now`, unless that is not
    /// above the last name (clock stepped back, or two rotations in one tick).
    pub fn next_log(&self, now: Timestamp) -> LogId {
        LogId::at(now.0.max(self.last_ts.saturating_add(1)))
    }

    /// Rotates the writer's log. An empty log is left in place. Any I/O error poisons
    /// the writer; the files are then in a state that recovery on open handles.
    pub fn rotate<F: Fs>(
        &mut self,
        fs: &F,
        writer: &mut Writer<F>,
        now: Timestamp,
    ) -> Result<Rotated, Poisoned> {
        if writer.log().records == 0 {
            self.opened_at = now;
            return Ok(Rotated::Empty);
        }
        let synced = writer.seal()?;
        let log = self.next_log(now);
        let fail = |writer: &mut Writer<F>, action, path: &str, e| {
            writer.poison(Poisoned::io("rotation", action, Path::new(path), e))
        };
        fs.rename(Path::new(WRITING_LOG), &log.path())
            .map_err(|e| fail(writer, "renaming", WRITING_LOG, e))?;
        fs.sync_dir(Path::new(READING_DIR))
            .map_err(|e| fail(writer, "fsyncing", READING_DIR, e))?;
        fs.sync_dir(Path::new(WRITING_DIR))
            .map_err(|e| fail(writer, "fsyncing", WRITING_DIR, e))?;
        let fresh = ActiveLog::create(fs, Path::new(WRITING_LOG))
            .map_err(|e| fail(writer, "creating", WRITING_LOG, e))?;
        fs.sync_dir(Path::new(WRITING_DIR))
            .map_err(|e| fail(writer, "fsyncing", WRITING_DIR, e))?;
        writer.replace_log(fresh);
        assert!(
            log.ts() > self.last_ts,
            "finished log names strictly increase"
        );
        assert!(
            writer.last_seq() > self.finished_upto,
            "a log that held records"
        );
        self.last_ts = log.ts();
        self.opened_at = now;
        self.finished_upto = writer.last_seq();
        if self.requested_upto <= self.finished_upto {
            self.requested_upto = 0;
        }
        Ok(Rotated::Finished { log, synced })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Kind;
    use crate::fs::MemFs;
    use crate::machine::submit_queue::{LogRecord, SubmitQueue};
    use crate::options::Durability;

    fn setup() -> (MemFs, Writer<MemFs>, SubmitQueue<()>) {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new(WRITING_DIR)).unwrap();
        fs.create_dir_all(Path::new(READING_DIR)).unwrap();
        let log = ActiveLog::create(&fs, Path::new(WRITING_LOG)).unwrap();
        (fs, Writer::new(log, 0, 64), SubmitQueue::new(1, 1 << 20))
    }

    fn write_one(writer: &mut Writer<MemFs>, queue: &mut SubmitQueue<()>, durability: Durability) {
        let record = LogRecord {
            kind: Kind::Append,
            key: b"k".to_vec(),
            payload: b"v".to_vec(),
        };
        queue.push(vec![record], durability, ());
        writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
    }

    #[test]
    fn it_is_due_by_interval_by_size_and_when_the_clock_steps_back() {
        let (_fs, mut writer, mut queue) = setup();
        let rotation = Rotation::new(100, 1 << 20, Timestamp(1_000_000), 0, 0);
        assert!(
            !rotation.is_due(Timestamp(2_000_000), &writer),
            "empty log never rotates"
        );
        write_one(&mut writer, &mut queue, Durability::Sync);
        assert!(!rotation.is_due(Timestamp(1_050_000), &writer));
        assert!(rotation.is_due(Timestamp(1_100_000), &writer));
        assert!(
            rotation.is_due(Timestamp(999_999), &writer),
            "clock stepped back"
        );
        let small = Rotation::new(100, 10, Timestamp(1_000_000), 0, 0);
        assert!(small.is_due(Timestamp(1_000_001), &writer), "full by size");
        let exact = Rotation::new(100, writer.log().bytes, Timestamp(1_000_000), 0, 0);
        assert!(
            exact.is_due(Timestamp(1_000_001), &writer),
            "full at exactly the bound"
        );
        let roomy = Rotation::new(100, writer.log().bytes + 1, Timestamp(1_000_000), 0, 0);
        assert!(
            !roomy.is_due(Timestamp(1_000_001), &writer),
            "a byte below it"
        );
    }

    #[test]
    fn a_request_rotates_once_its_seqs_are_written_and_is_dropped_when_met() {
        let (fs, mut writer, mut queue) = setup();
        let mut rotation = Rotation::new(100, 1 << 20, Timestamp(0), 0, 0);
        assert_eq!(
            rotation.poll_timeout(Timestamp(200_000), &writer),
            Some(u64::MAX),
            "an empty log waits for a record, whatever the time"
        );
        rotation.request(2);
        write_one(&mut writer, &mut queue, Durability::None);
        assert!(
            !rotation.is_due(Timestamp(1), &writer),
            "seq 2 is not written"
        );
        assert_eq!(rotation.poll_timeout(Timestamp(1), &writer), Some(99_999));
        write_one(&mut writer, &mut queue, Durability::None);
        assert!(rotation.is_due(Timestamp(1), &writer));
        assert_eq!(rotation.poll_timeout(Timestamp(1), &writer), None);
        rotation.rotate(&fs, &mut writer, Timestamp(1)).unwrap();
        assert_eq!(rotation.requested_upto(), 0, "met");
        rotation.request(2);
        assert_eq!(
            rotation.requested_upto(),
            0,
            "seq 2 is in a finished log already"
        );
        write_one(&mut writer, &mut queue, Durability::None);
        assert!(!rotation.is_due(Timestamp(2), &writer));
    }

    #[test]
    fn names_strictly_increase_when_the_clock_steps_back_or_stands_still() {
        let (fs, mut writer, mut queue) = setup();
        let mut rotation = Rotation::new(100, 1 << 20, Timestamp(0), 0, 0);
        let mut names = Vec::new();
        for now in [500, 500, 400, 10, 900] {
            write_one(&mut writer, &mut queue, Durability::Buffered);
            match rotation.rotate(&fs, &mut writer, Timestamp(now)).unwrap() {
                Rotated::Finished { log, synced } => {
                    assert!(synced, "rotation syncs a log holding buffered bytes");
                    names.push(log);
                }
                Rotated::Empty => panic!("the log held a record"),
            }
        }
        assert_eq!(
            names.iter().map(|log| log.ts()).collect::<Vec<_>>(),
            vec![500, 501, 502, 503, 900]
        );
        let listed = fs.list(Path::new(READING_DIR)).unwrap();
        assert_eq!(
            LogId::all_in(&listed),
            names,
            "every finished log is in reading/, in name order"
        );
        assert_eq!(fs.list(Path::new(WRITING_DIR)).unwrap(), vec!["tx.log"]);
    }

    #[test]
    fn an_empty_log_is_not_rotated() {
        let (fs, mut writer, _queue) = setup();
        let mut rotation = Rotation::new(100, 1 << 20, Timestamp(0), 0, 0);
        assert_eq!(
            rotation
                .rotate(&fs, &mut writer, Timestamp(1_000_000))
                .unwrap(),
            Rotated::Empty
        );
        assert!(fs.list(Path::new(READING_DIR)).unwrap().is_empty());
        assert_eq!(
            rotation.deadline(),
            Timestamp(1_100_000),
            "the interval starts again"
        );
    }

    #[test]
    fn rotation_makes_the_rename_durable_before_creating_the_new_log() {
        let (fs, mut writer, mut queue) = setup();
        let mut rotation = Rotation::new(100, 1 << 20, Timestamp(0), 0, 0);
        write_one(&mut writer, &mut queue, Durability::Sync);
        let before = fs.dir_syncs();
        rotation.rotate(&fs, &mut writer, Timestamp(1)).unwrap();
        assert_eq!(fs.dir_syncs() - before, 3);
    }
}
