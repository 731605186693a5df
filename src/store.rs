//! `Store`: the public API over the runtime.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use std::sync::Mutex;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::format::{truncate_payload, Kind};
use crate::fs::{Fs, RealFs};
use crate::index::{self, PendingIndex, Record};
use crate::keystore::{KeyStore, OpenMode, OpenReport};
use crate::machine::build::Machines;
use crate::machine::recovery::{self, RecoveryReport};
use crate::machine::submit_queue::{LogRecord, SeqRange};
use crate::machine::LOCK_FILE;
use crate::options::{Durability, Options};
use crate::read_only::ReadOnlyStore;
use crate::records::Records;
use crate::runtime::commit::{CommitRuntime, CommitSetup};
use crate::runtime::write::{WhenFull, WriteRuntime};
use crate::runtime::Counters;

pub use crate::seq::Seq;

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
    /// Records acknowledged (or found at open) that the key store does not hold yet.
    pub records_waiting: u64,
    /// Memory the records waiting are counted for, against `Options::backlog_bytes_max`.
    pub pending_bytes: u64,
    /// Commit lag in seqs: the last seq written minus the applied watermark.
    pub commit_lag: u64,
    /// The applied watermark: every seq at or below it is in the key store.
    pub applied_seq: u64,
    /// Records written to the key store.
    pub records_applied: u64,
    /// Committer passes.
    pub commit_passes: u64,
    /// Runs appended to the key store (one fdatasync each).
    pub keystore_runs: u64,
    /// Bytes the key store wrote since open (runs, index checkpoints, compactions): its
    /// write amplification is this over `bytes`.
    pub keystore_bytes_written: u64,
    /// Compactions since open.
    pub compactions: u64,
    /// Bytes compactions wrote since open (in `keystore_bytes_written` too).
    pub compaction_bytes_written: u64,
    /// Time committers spent compacting since open, in microseconds.
    pub compaction_micros: u64,
    /// Live segments of the key store.
    pub keystore_segments: u64,
    /// Bytes the key store's live segments hold.
    pub keystore_bytes: u64,
    /// Memory the key store's index is counted for.
    pub keystore_index_bytes: u64,
    /// Damaged groups and records of the key store that reads skipped (lenient modes),
    /// and damage found on open.
    pub keystore_damage_skipped: u64,
    /// Damaged regions skipped in finished logs (`PointInTime`, `SkipCorrupt`).
    pub corrupt_skipped: u64,
}

/// An open store. Share it between threads by reference (or in an `Arc`); every method
/// takes `&self` except [`Store::close`].
pub struct Store<F: Fs = RealFs, C: Clock = SystemClock> {
    /// Where the store lives, as errors name it ([`Fs::location`]).
    location: PathBuf,
    options: Options,
    // Field order is drop order: the writer stops first, then the commit threads.
    writes: WriteRuntime,
    commits: CommitRuntime,
    fs: Arc<F>,
    keys: Arc<KeyStore>,
    keys_opened: OpenReport,
    index: Arc<Mutex<PendingIndex>>,
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
        // Bad options change nothing on disk: checked before the directory is created.
        options.validate()?;
        let fs = RealFs::new(dir).map_err(|source| Error::Io {
            action: "creating",
            path: dir.to_path_buf(),
            source,
        })?;
        Store::open_with(fs, SystemClock, options)
    }

    /// Opens the store in `dir` to read only: see [`ReadOnlyStore`]. Creates, cuts and
    /// removes nothing, and fails with [`Error::NoStore`] where there is no store.
    pub fn open_read_only(dir: impl AsRef<Path>, options: Options) -> Result<ReadOnlyStore> {
        ReadOnlyStore::open(dir.as_ref(), &options)
    }
}

impl<F: Fs, C: Clock> Store<F, C> {
    /// Opens a store over any file system and clock (tests use `MemFs` and a manual clock).
    pub fn open_with(fs: F, clock: C, options: Options) -> Result<Self> {
        let location = fs.location();
        Self::open_inner(fs, clock, options).map_err(|e| e.in_store(&location))
    }

    fn open_inner(fs: F, clock: C, options: Options) -> Result<Self> {
        let _open = tracing::info_span!("open", store = %fs.location().display()).entered();
        options.validate()?;
        let lock = fs.lock(Path::new(LOCK_FILE)).map_err(Error::locking)?;
        let now = clock.now();
        let (keys, keys_opened) = KeyStore::open(
            &fs,
            OpenMode {
                partitions: options.partitions,
                recovery: options.recovery_mode,
                writable: true,
            },
        )?;
        let keys = Arc::new(keys);
        let watermark = keys.watermark();
        let recovered = recovery::recover(
            &fs,
            now,
            watermark,
            options.recovery_mode,
            options.seq_lease,
        )?;
        let counters = Arc::new(Counters::default());
        counters
            .logs_waiting
            .store(recovered.report.logs_waiting as u64, Ordering::Relaxed);
        counters.applied_seq.store(watermark, Ordering::Relaxed);
        counters
            .written_seq
            .store(recovered.last_kept_seq, Ordering::Relaxed);
        let report = recovered.report.clone();
        let machines = Machines::build(recovered, &keys, &options, now);
        counters.publish_pending_bytes(&machines.index);
        let index = Arc::new(Mutex::new(machines.index));
        let fs = Arc::new(fs);
        let (events, inbox) = CommitRuntime::channel();
        let clock = Arc::new(clock);
        let writes = WriteRuntime::start(
            Arc::clone(&fs),
            Arc::clone(&clock),
            machines.queue,
            machines.writer,
            machines.rotation,
            &options,
            Arc::clone(&index),
            events.clone(),
            Arc::clone(&counters),
        )?;
        let room = writes.room_signal();
        let setup = CommitSetup {
            fs: Arc::clone(&fs),
            store: Arc::clone(&keys),
            dispatcher: machines.dispatcher,
            pacing: machines.pacing,
            committers: machines.committers,
            rotate_interval_ms: options.rotate_interval_ms,
            clock,
            index: Arc::clone(&index),
            counters: Arc::clone(&counters),
            on_retired: Box::new(move || room.notify_all()),
        };
        let commits = CommitRuntime::start(setup, events, inbox)?;
        Ok(Store {
            location: fs.location(),
            options,
            writes,
            commits,
            fs,
            keys,
            keys_opened,
            index,
            counters,
            recovery: report,
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

    /// What opening the key store found and did (cuts, removals, damage skipped).
    pub fn key_store_report(&self) -> &OpenReport {
        &self.keys_opened
    }

    /// The key store's partitions (fixed when the store was created).
    pub fn partitions(&self) -> u32 {
        self.keys.partitions()
    }

    /// Appends `payload` to `key` with the store's default durability.
    pub fn append(&self, key: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Result<Seq> {
        self.append_with(key, payload, self.options.durability)
    }

    /// Appends `payload` to `key`, returning once it is as durable as `durability` says.
    pub fn append_with(
        &self,
        key: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        durability: Durability,
    ) -> Result<Seq> {
        let record = self.record(Kind::Append, key.as_ref(), payload.as_ref())?;
        self.submit_one(record, durability, WhenFull::Wait)
    }

    /// Like [`Store::append`], but fails with [`Error::QueueFull`] instead of waiting
    /// when the write queue is full.
    pub fn try_append(&self, key: impl AsRef<[u8]>, payload: impl AsRef<[u8]>) -> Result<Seq> {
        let record = self.record(Kind::Append, key.as_ref(), payload.as_ref())?;
        self.submit_one(record, self.options.durability, WhenFull::Fail)
    }

    /// One record's request: its seq once it is as durable as `durability` says.
    fn submit_one(&self, record: LogRecord, durability: Durability, full: WhenFull) -> Result<Seq> {
        let range = self.named(self.writes.submit(vec![record], durability, full))?;
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
        let batch = self.batch(records)?;
        let submitted = self.writes.submit(batch, durability, WhenFull::Wait);
        let SeqRange { first, last } = self.named(submitted)?;
        Ok((first..=last).map(Seq).collect())
    }

    /// Like [`Store::append_batch`], but fails with [`Error::QueueFull`] (or
    /// [`Error::Backlogged`]) instead of waiting for room.
    pub fn try_append_batch<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(K, V)],
    ) -> Result<Vec<Seq>> {
        let batch = self.batch(records)?;
        let submitted = self
            .writes
            .submit(batch, self.options.durability, WhenFull::Fail);
        let SeqRange { first, last } = self.named(submitted)?;
        Ok((first..=last).map(Seq).collect())
    }

    /// A batch's records, checked: not empty, not too long, every key and payload valid.
    fn batch<K: AsRef<[u8]>, V: AsRef<[u8]>>(&self, records: &[(K, V)]) -> Result<Vec<LogRecord>> {
        if records.is_empty() {
            return Err(Error::EmptyBatch);
        }
        if records.len() > BATCH_LEN_MAX {
            return Err(Error::BatchTooLarge {
                len: records.len(),
                max: BATCH_LEN_MAX,
            });
        }
        records
            .iter()
            .map(|(key, payload)| self.record(Kind::Append, key.as_ref(), payload.as_ref()))
            .collect()
    }

    /// Deletes `key` and all its records, through the log like an append. A later
    /// append starts the key afresh.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<Seq> {
        self.delete_with(key, self.options.durability)
    }

    /// [`Store::delete`] with an explicit durability.
    pub fn delete_with(&self, key: impl AsRef<[u8]>, durability: Durability) -> Result<Seq> {
        let record = self.record(Kind::Delete, key.as_ref(), &[])?;
        self.submit_one(record, durability, WhenFull::Wait)
    }

    /// Like [`Store::delete`], but fails with [`Error::QueueFull`] instead of waiting.
    pub fn try_delete(&self, key: impl AsRef<[u8]>) -> Result<Seq> {
        let record = self.record(Kind::Delete, key.as_ref(), &[])?;
        self.submit_one(record, self.options.durability, WhenFull::Fail)
    }

    /// Drops `key`'s records with a seq below `before`, through the log like a delete:
    /// once it returns, reads of the key start at `before`, and no replay, crash or
    /// compaction brings the dropped records back. A `before` past the key's newest
    /// record drops them all but keeps the key's later appends: a truncate never reaches
    /// past its own seq. Returns the truncate's own seq.
    pub fn truncate(&self, key: impl AsRef<[u8]>, before: Seq) -> Result<Seq> {
        self.truncate_with(key, before, self.options.durability)
    }

    /// [`Store::truncate`] with an explicit durability.
    pub fn truncate_with(
        &self,
        key: impl AsRef<[u8]>,
        before: Seq,
        durability: Durability,
    ) -> Result<Seq> {
        let record = self.record(Kind::Truncate, key.as_ref(), &truncate_payload(before.0))?;
        self.submit_one(record, durability, WhenFull::Wait)
    }

    /// Like [`Store::truncate`], but fails with [`Error::QueueFull`] instead of waiting.
    pub fn try_truncate(&self, key: impl AsRef<[u8]>, before: Seq) -> Result<Seq> {
        let record = self.record(Kind::Truncate, key.as_ref(), &truncate_payload(before.0))?;
        self.submit_one(record, self.options.durability, WhenFull::Fail)
    }

    /// Makes every write queued before the call `Sync`-durable (it survives a power
    /// loss), whatever durability it asked for, with at most one fdatasync of the log.
    /// Unlike [`Store::flush`], it does not wait for the key store.
    pub fn sync(&self) -> Result<()> {
        self.named(self.writes.sync())
    }

    /// The async form of [`Store::sync`].
    pub fn sync_async(&self) -> impl Future<Output = Result<()>> + '_ {
        let barrier = self.writes.sync_async();
        async move { self.named(barrier.await).map(|_| ()) }
    }

    /// The async form of [`Store::append`]: resolves once the record is as durable as
    /// the store's default asks. The write is queued at the future's first poll that
    /// finds room in the queue (it waits for room without blocking a thread); see
    /// "Async writes and cancellation" in the crate docs for what dropping it means.
    pub fn append_async(
        &self,
        key: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
    ) -> impl Future<Output = Result<Seq>> + '_ {
        self.append_with_async(key, payload, self.options.durability)
    }

    /// The async form of [`Store::append_with`].
    pub fn append_with_async(
        &self,
        key: impl AsRef<[u8]>,
        payload: impl AsRef<[u8]>,
        durability: Durability,
    ) -> impl Future<Output = Result<Seq>> + '_ {
        let record = self.record(Kind::Append, key.as_ref(), payload.as_ref());
        self.submit_one_async(record, durability)
    }

    /// The async form of [`Store::append_batch`].
    pub fn append_batch_async<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(K, V)],
    ) -> impl Future<Output = Result<Vec<Seq>>> + '_ {
        self.append_batch_with_async(records, self.options.durability)
    }

    /// The async form of [`Store::append_batch_with`].
    pub fn append_batch_with_async<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        records: &[(K, V)],
        durability: Durability,
    ) -> impl Future<Output = Result<Vec<Seq>>> + '_ {
        let batch = self.batch(records);
        async move {
            let range = self.named(self.writes.submit_async(batch?, durability).await)?;
            Ok((range.first..=range.last).map(Seq).collect())
        }
    }

    /// The async form of [`Store::delete`].
    pub fn delete_async(&self, key: impl AsRef<[u8]>) -> impl Future<Output = Result<Seq>> + '_ {
        self.delete_with_async(key, self.options.durability)
    }

    /// The async form of [`Store::delete_with`].
    pub fn delete_with_async(
        &self,
        key: impl AsRef<[u8]>,
        durability: Durability,
    ) -> impl Future<Output = Result<Seq>> + '_ {
        let record = self.record(Kind::Delete, key.as_ref(), &[]);
        self.submit_one_async(record, durability)
    }

    /// The async form of [`Store::truncate`].
    pub fn truncate_async(
        &self,
        key: impl AsRef<[u8]>,
        before: Seq,
    ) -> impl Future<Output = Result<Seq>> + '_ {
        self.truncate_with_async(key, before, self.options.durability)
    }

    /// The async form of [`Store::truncate_with`].
    pub fn truncate_with_async(
        &self,
        key: impl AsRef<[u8]>,
        before: Seq,
        durability: Durability,
    ) -> impl Future<Output = Result<Seq>> + '_ {
        let record = self.record(Kind::Truncate, key.as_ref(), &truncate_payload(before.0));
        self.submit_one_async(record, durability)
    }

    /// One record's async request. A bad key or payload fails at the first poll.
    async fn submit_one_async(
        &self,
        record: Result<LogRecord>,
        durability: Durability,
    ) -> Result<Seq> {
        let range = self.named(self.writes.submit_async(vec![record?], durability).await)?;
        Ok(Seq(range.first))
    }

    /// The key's records in seq order: every record whose append has returned, whether
    /// it is still in a log or already in the key store. Empty for an unknown or deleted
    /// key. Reads the key's whole history; see [`Store::records`] and [`Store::tail`].
    pub fn read(&self, key: impl AsRef<[u8]>) -> Result<Vec<Record>> {
        self.records(key, Seq(0), usize::MAX)
    }

    /// The first `limit` of the key's records whose seq is above `after`, in seq order
    /// (read-your-writes, as [`Store::read`]). Its cost grows with the records above
    /// `after` that the key store holds, not with the key's history before them: a
    /// reader that tails a key passes the last seq it saw.
    pub fn records(&self, key: impl AsRef<[u8]>, after: Seq, limit: usize) -> Result<Vec<Record>> {
        self.scan(key, after, limit).map(Records::into_vec)
    }

    /// The same records as [`Store::records`], their payloads left in the buffers the key
    /// store read them into: no allocation per record, which is what a reader of long
    /// histories wants.
    ///
    /// ```
    /// # use writelog::{Options, Seq, Store};
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let store = Store::open(dir.path(), Options::default())?;
    /// store.append("sensor", [1u8, 2])?;
    /// store.append("sensor", [3u8])?;
    /// let records = store.scan("sensor", Seq(0), usize::MAX)?;
    /// let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
    /// assert_eq!((records.len(), bytes), (2, 3));
    /// # Ok::<(), writelog::Error>(())
    /// ```
    pub fn scan(&self, key: impl AsRef<[u8]>, after: Seq, limit: usize) -> Result<Records> {
        let key = key.as_ref();
        self.check_key(key)?;
        // The pending index first, then the key store (see `index::records`).
        let pending = self.lock_index().ops(key);
        self.named(index::records(
            &*self.fs, &self.keys, pending, key, after.0, limit,
        ))
    }

    /// The key's records with a seq above `after`.
    pub fn read_from(&self, key: impl AsRef<[u8]>, after: Seq) -> Result<Vec<Record>> {
        self.records(key, after, usize::MAX)
    }

    /// The key's last `count` records, in seq order. Reads only the newest of the key's
    /// groups in the key store.
    pub fn tail(&self, key: impl AsRef<[u8]>, count: usize) -> Result<Vec<Record>> {
        let key = key.as_ref();
        self.check_key(key)?;
        let pending = self.lock_index().ops(key);
        self.named(index::tail(&*self.fs, &self.keys, pending, key, count).map(Records::into_vec))
    }

    /// The key's last record, if it has any.
    pub fn last(&self, key: impl AsRef<[u8]>) -> Result<Option<Record>> {
        Ok(self.tail(key, 1)?.pop())
    }

    /// Every key that holds at least one record, sorted. From the key store's index and
    /// the pending index: no record is read, except the last pending one of keys with
    /// pending operations.
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        let pending_keys = self.lock_index().keys();
        let listed = index::keys(&*self.fs, &self.keys, pending_keys, |key| {
            self.lock_index().ops(key)
        });
        self.named(listed)
    }

    /// Returns once everything acknowledged before the call is in the key store and the
    /// logs that carried it are removed. Rotates the active log at once rather than
    /// waiting for the interval.
    pub fn flush(&self) -> Result<()> {
        self.named(self.flush_inner())
    }

    fn flush_inner(&self) -> Result<()> {
        let target = self.writes.flush_upto();
        if self.counters.applied_seq.load(Ordering::SeqCst) < target {
            self.writes.request_rotation(target)?;
        }
        self.commits.hurry(target);
        self.commits
            .shared()
            .wait_applied(target, || self.writes.poisoned())
    }

    /// The store's counters.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let appends = c.appends.load(Ordering::Relaxed);
        let batches = c.passes.load(Ordering::Relaxed);
        let applied_seq = c.applied_seq.load(Ordering::Relaxed);
        let (keystore_segments, keystore_bytes) = self.keys.segments_and_bytes();
        let (records_waiting, pending_bytes) = {
            let index = self.lock_index();
            (index.len() as u64, index.bytes() as u64)
        };
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
            records_waiting,
            pending_bytes,
            commit_lag: c
                .written_seq
                .load(Ordering::Relaxed)
                .saturating_sub(applied_seq),
            applied_seq,
            records_applied: c.records_applied.load(Ordering::Relaxed),
            commit_passes: c.commit_passes.load(Ordering::Relaxed),
            keystore_runs: c.runs_written.load(Ordering::Relaxed),
            keystore_bytes_written: c.keystore_bytes_written.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
            compaction_bytes_written: c.compaction_bytes_written.load(Ordering::Relaxed),
            compaction_micros: c.compaction_micros.load(Ordering::Relaxed),
            keystore_segments,
            keystore_bytes,
            keystore_index_bytes: self.keys.index_bytes(),
            keystore_damage_skipped: self.keys.damage_skipped(),
            corrupt_skipped: c.corrupt_skipped.load(Ordering::Relaxed),
        }
    }

    /// Writes and syncs everything acknowledged, stops the threads and releases the lock.
    /// Logs not yet applied stay and are applied after the next open. Dropping the store
    /// does the same, discarding any error.
    pub fn close(mut self) -> Result<()> {
        let written = self.writes.close();
        let committed = self.commits.stop();
        self.named(written.and(committed))
    }

    /// `result` with its error as a `Store` reports it ([`Error::in_store`]).
    fn named<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|e| e.in_store(&self.location))
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, PendingIndex> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_key(&self, key: &[u8]) -> Result<()> {
        crate::options::check_key(key, self.options.max_key_len)
    }

    fn record(&self, kind: Kind, key: &[u8], payload: &[u8]) -> Result<LogRecord> {
        self.check_key(key)?;
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
