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
#[derive(Clone, Debug)]
pub struct Rotation {
    interval_ms: u64,
    bytes_max: u64,
    opened_at: Timestamp,
    /// Invariant: every finished log's name is at most `tx-{last_ts}`; the next is above.
    last_ts: u64,
}

impl Rotation {
    /// A rotation policy for a log opened at `opened_at`, after finished logs whose
    /// highest name timestamp is `last_ts`.
    pub fn new(interval_ms: u64, bytes_max: u64, opened_at: Timestamp, last_ts: u64) -> Self {
        Rotation {
            interval_ms,
            bytes_max,
            opened_at,
            last_ts,
        }
    }

    /// When to call back: the interval's end. Calling earlier is harmless.
    pub fn deadline(&self) -> Timestamp {
        self.opened_at.plus_ms(self.interval_ms)
    }

    /// Whether the active log should rotate now: it holds records and either the
    /// interval has passed, the clock stepped back past its opening, or it is full.
    pub fn is_due<F: Fs>(&self, now: Timestamp, log: &ActiveLog<F>) -> bool {
        log.records > 0
            && (now >= self.deadline() || now < self.opened_at || log.bytes >= self.bytes_max)
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
        self.last_ts = log.ts();
        self.opened_at = now;
        Ok(Rotated::Finished { log, synced })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Kind;
    use crate::fs::MemFs;
    use crate::machine::writer::{LogRecord, SubmitQueue};
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
        let rotation = Rotation::new(100, 1 << 20, Timestamp(1_000_000), 0);
        assert!(
            !rotation.is_due(Timestamp(2_000_000), writer.log()),
            "empty log never rotates"
        );
        write_one(&mut writer, &mut queue, Durability::Sync);
        assert!(!rotation.is_due(Timestamp(1_050_000), writer.log()));
        assert!(rotation.is_due(Timestamp(1_100_000), writer.log()));
        assert!(
            rotation.is_due(Timestamp(999_999), writer.log()),
            "clock stepped back"
        );
        let small = Rotation::new(100, 10, Timestamp(1_000_000), 0);
        assert!(
            small.is_due(Timestamp(1_000_001), writer.log()),
            "full by size"
        );
    }

    #[test]
    fn names_strictly_increase_when_the_clock_steps_back_or_stands_still() {
        let (fs, mut writer, mut queue) = setup();
        let mut rotation = Rotation::new(100, 1 << 20, Timestamp(0), 0);
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
        let mut rotation = Rotation::new(100, 1 << 20, Timestamp(0), 0);
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
        let mut rotation = Rotation::new(100, 1 << 20, Timestamp(0), 0);
        write_one(&mut writer, &mut queue, Durability::Sync);
        let before = fs.dir_syncs();
        rotation.rotate(&fs, &mut writer, Timestamp(1)).unwrap();
        assert_eq!(fs.dir_syncs() - before, 3);
    }
}
