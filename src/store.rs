//! `Store`: the public API over the runtime.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::format::Kind;
use crate::fs::{Fs, RealFs};
use crate::machine::recovery::{self, RecoveryReport};
use crate::machine::rotation::Rotation;
use crate::machine::writer::{LogRecord, SeqRange, Writer};
use crate::machine::LOCK_FILE;
use crate::options::{Durability, Options};
use crate::runtime::{Counters, WhenFull, WriteRuntime};

/// A record's store-wide sequence number: unique, strictly increasing in log order,
/// across restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seq(pub u64);

/// A snapshot of the store's counters since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    /// Records written to the log (appends and deletes).
    pub appends: u64,
    /// Payload bytes written to the log.
    pub bytes: u64,
    /// Writer passes (group commits) that wrote something.
    pub batches: u64,
    /// Mean records per writer pass.
    pub mean_batch_size: f64,
    /// fdatasyncs of the write log.
    pub fsyncs: u64,
    /// Log rotations.
    pub rotations: u64,
    /// Finished logs waiting in `reading/`.
    pub logs_waiting: u64,
}

/// An open store. Share it between threads by reference (or in an `Arc`); every method
/// takes `&self` except [`Store::close`].
pub struct Store<F: Fs = RealFs, C: Clock = SystemClock> {
    options: Options,
    writes: WriteRuntime,
    counters: Arc<Counters>,
    recovery: RecoveryReport,
    // Dropped last: the lock is held until the threads have stopped.
    _lock: F::Lock,
    _clock: std::marker::PhantomData<C>,
}

/// Largest number of records in one batch (a block's `batch_left` is a `u32`).
pub const BATCH_LEN_MAX: usize = u32::MAX as usize;

impl Store {
    /// Opens (creating or recovering) the store in `dir` on the real file system.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        let dir = dir.as_ref();
        let fs = RealFs::new(dir).map_err(|source| Error::Io {
            action: "creating",
            path: dir.to_path_buf(),
            source,
        })?;
        Store::open_with(fs, SystemClock, options)
    }
}

impl<F: Fs, C: Clock> Store<F, C> {
    /// Opens a store over any file system and clock (tests use `MemFs` and a manual clock).
    pub fn open_with(fs: F, clock: C, options: Options) -> Result<Self> {
        options.validate()?;
        let lock = fs.lock(Path::new(LOCK_FILE)).map_err(|source| {
            if source.kind() == std::io::ErrorKind::WouldBlock {
                Error::Locked(PathBuf::from(LOCK_FILE))
            } else {
                Error::Io {
                    action: "locking",
                    path: PathBuf::from(LOCK_FILE),
                    source,
                }
            }
        })?;
        let now = clock.now();
        let recovered = recovery::recover(&fs, now, 0)?;
        let counters = Arc::new(Counters::default());
        counters
            .logs_waiting
            .store(recovered.report.logs_waiting as u64, Ordering::Relaxed);
        let rotation = Rotation::new(
            options.rotate_interval_ms,
            options.rotate_bytes_max,
            now,
            recovered.last_log_ts,
        );
        let writer = Writer::new(recovered.log, recovered.last_seq);
        let writes = WriteRuntime::start(
            Arc::new(fs),
            Arc::new(clock),
            writer,
            rotation,
            options.queue_bytes_max,
            options.pass_bytes_max,
            Arc::clone(&counters),
        )?;
        Ok(Store {
            options,
            writes,
            counters,
            recovery: recovered.report,
            _lock: lock,
            _clock: std::marker::PhantomData,
        })
    }

    /// The options the store runs with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// What recovery found when the store opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Appends `payload` to `key` with the store's default durability.
    pub fn append(&self, key: &[u8], payload: &[u8]) -> Result<Seq> {
        self.append_with(key, payload, self.options.durability)
    }

    /// Appends `payload` to `key`, returning once it is as durable as `durability` says.
    pub fn append_with(&self, key: &[u8], payload: &[u8], durability: Durability) -> Result<Seq> {
        let record = self.record(Kind::Append, key, payload)?;
        let range = self
            .writes
            .submit(vec![record], durability, WhenFull::Wait)?;
        Ok(Seq(range.first))
    }

    /// Like [`Store::append`], but fails with [`Error::QueueFull`] instead of waiting
    /// when the write queue is full.
    pub fn try_append(&self, key: &[u8], payload: &[u8]) -> Result<Seq> {
        let record = self.record(Kind::Append, key, payload)?;
        let range = self
            .writes
            .submit(vec![record], self.options.durability, WhenFull::Fail)?;
        Ok(Seq(range.first))
    }

    /// Appends every `(key, payload)` atomically: after any crash, all of them or none.
    pub fn append_batch<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(K, V)],
    ) -> Result<Vec<Seq>> {
        self.append_batch_with(records, self.options.durability)
    }

    /// [`Store::append_batch`] with an explicit durability.
    pub fn append_batch_with<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(K, V)],
        durability: Durability,
    ) -> Result<Vec<Seq>> {
        if records.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if records.len() > BATCH_LEN_MAX {
            return Err(Error::BatchTooLarge {
                len: records.len(),
                max: BATCH_LEN_MAX,
            });
        }
        let batch = records
            .iter()
            .map(|(key, payload)| self.record(Kind::Append, key.as_ref(), payload.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let SeqRange { first, last } = self.writes.submit(batch, durability, WhenFull::Wait)?;
        Ok((first..=last).map(Seq).collect())
    }

    /// Deletes `key` and all its records, through the log like an append. A later
    /// append starts the key afresh.
    pub fn delete(&self, key: &[u8]) -> Result<Seq> {
        let record = self.record(Kind::Delete, key, &[])?;
        let range = self
            .writes
            .submit(vec![record], self.options.durability, WhenFull::Wait)?;
        Ok(Seq(range.first))
    }

    /// The store's counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let appends = c.appends.load(Ordering::Relaxed);
        let batches = c.passes.load(Ordering::Relaxed);
        Stats {
            appends,
            bytes: c.payload_bytes.load(Ordering::Relaxed),
            batches,
            mean_batch_size: if batches == 0 {
                0.0
            } else {
                appends as f64 / batches as f64
            },
            fsyncs: c.fsyncs.load(Ordering::Relaxed),
            rotations: c.rotations.load(Ordering::Relaxed),
            logs_waiting: c.logs_waiting.load(Ordering::Relaxed),
        }
    }

    /// Writes and syncs everything acknowledged, stops the threads and releases the lock.
    /// Dropping the store does the same, discarding any error.
    pub fn close(mut self) -> Result<()> {
        self.writes.close()
    }

    fn record(&self, kind: Kind, key: &[u8], payload: &[u8]) -> Result<LogRecord> {
        if key.is_empty() {
            return Err(Error::EmptyKey);
        }
        if key.len() > self.options.max_key_len {
            return Err(Error::KeyTooLong {
                len: key.len(),
                max: self.options.max_key_len,
            });
        }
        if payload.len() > self.options.max_record_len {
            return Err(Error::RecordTooLarge {
                len: payload.len(),
                max: self.options.max_record_len,
            });
        }
        Ok(LogRecord {
            kind,
            key: key.to_vec(),
            payload: payload.to_vec(),
        })
    }
}
