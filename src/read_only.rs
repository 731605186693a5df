//! [`ReadOnlyStore`]: a store opened to read, changing nothing on disk.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::format::{DecodeLimits, LogDecoder};
use crate::fs::{Fs, RealFs};
use crate::index::{self, PendingIndex, Record};
use crate::keystore::{KeyStore, OpenMode, OpenReport, KEYS_DIR};
use crate::machine::dispatch::route_log;
use crate::machine::{LogId, LOCK_FILE, READING_DIR, WRITING_LOG};
use crate::options::Options;
use crate::records::Records;
use crate::seq::Seq;

/// A store opened with [`crate::Store::open_read_only`]: reads see every record the store
/// holds, in its key store or still in its logs (applied again in memory, as recovery
/// would), and nothing on disk is created, cut, renamed or removed.
///
/// It holds a shared lock on the store's `LOCK`: any number of read-only opens may share
/// a store, and none while a writable `Store` has it open (either way, the later open
/// fails with [`Error::Locked`]). What it reads is the store as it was at the open.
pub struct ReadOnlyStore {
    location: PathBuf,
    fs: RealFs,
    keys: KeyStore,
    keys_opened: OpenReport,
    /// The records of the logs the key store does not hold yet.
    pending: PendingIndex,
    max_key_len: usize,
    _lock: <RealFs as Fs>::Lock,
}

impl ReadOnlyStore {
    /// Opens the store in `dir` to read. Fails, creating nothing, when `dir` holds no
    /// store; damage follows `options.recovery_mode`, as for a writable open, except
    /// that nothing is repaired: a torn log tail is left in place and not read.
    pub(crate) fn open(dir: &Path, options: &Options) -> Result<ReadOnlyStore> {
        options.validate()?;
        let location = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        if !dir.join(LOCK_FILE).is_file() || !dir.join(KEYS_DIR).is_dir() {
            return Err(Error::NoStore(location));
        }
        Self::open_in(dir, options).map_err(|e| e.in_store(&location))
    }

    fn open_in(dir: &Path, options: &Options) -> Result<ReadOnlyStore> {
        let _open = tracing::info_span!("open_read_only", store = %dir.display()).entered();
        // The directory exists: `RealFs::new` creates nothing.
        let fs = RealFs::new(dir).io("opening", Path::new(""))?;
        let lock = fs
            .lock_shared(Path::new(LOCK_FILE))
            .map_err(Error::locking)?;
        let mode = OpenMode {
            partitions: options.partitions,
            recovery: options.recovery_mode,
            writable: false,
        };
        let (keys, keys_opened) = KeyStore::open(&fs, mode)?;
        let pending = pending_from_logs(&fs, keys.watermark(), options)?;
        Ok(ReadOnlyStore {
            location: fs.location(),
            fs,
            keys,
            keys_opened,
            pending,
            max_key_len: options.max_key_len,
            _lock: lock,
        })
    }

    /// What opening the key store found (damage skipped, under a lenient mode).
    pub fn key_store_report(&self) -> &OpenReport {
        &self.keys_opened
    }

    /// The key's records in seq order, as [`crate::Store::read`].
    pub fn read(&self, key: impl AsRef<[u8]>) -> Result<Vec<Record>> {
        self.records(key, Seq(0), usize::MAX)
    }

    /// The first `limit` of the key's records above `after`, as [`crate::Store::records`].
    pub fn records(&self, key: impl AsRef<[u8]>, after: Seq, limit: usize) -> Result<Vec<Record>> {
        self.scan(key, after, limit).map(Records::into_vec)
    }

    /// The same records, their payloads left in the buffers read, as [`crate::Store::scan`].
    pub fn scan(&self, key: impl AsRef<[u8]>, after: Seq, limit: usize) -> Result<Records> {
        let key = self.checked(key.as_ref())?;
        let read = index::records(
            &self.fs,
            &self.keys,
            self.pending.ops(key),
            key,
            after.0,
            limit,
        );
        read.map_err(|e| e.in_store(&self.location))
    }

    /// The key's last `count` records, as [`crate::Store::tail`].
    pub fn tail(&self, key: impl AsRef<[u8]>, count: usize) -> Result<Vec<Record>> {
        let key = self.checked(key.as_ref())?;
        let read = index::tail(&self.fs, &self.keys, self.pending.ops(key), key, count);
        read.map(Records::into_vec)
            .map_err(|e| e.in_store(&self.location))
    }

    /// The key's last record, if it has any.
    pub fn last(&self, key: impl AsRef<[u8]>) -> Result<Option<Record>> {
        Ok(self.tail(key, 1)?.pop())
    }

    /// Every key that holds at least one record, sorted, as [`crate::Store::keys`].
    pub fn keys(&self) -> Result<Vec<Vec<u8>>> {
        let listed = index::keys(&self.fs, &self.keys, self.pending.keys(), |key| {
            self.pending.ops(key)
        });
        listed.map_err(|e| e.in_store(&self.location))
    }

    fn checked<'k>(&self, key: &'k [u8]) -> Result<&'k [u8]> {
        crate::options::check_key(key, self.max_key_len).map(|()| key)
    }
}

/// The records above `watermark` of the finished logs, then of the leftover log's intact
/// prefix (its crash tail is left unread, as recovery would cut it), in seq order.
fn pending_from_logs<F: Fs>(fs: &F, watermark: u64, options: &Options) -> Result<PendingIndex> {
    let mut pending = PendingIndex::new();
    let mut routed_upto = watermark;
    let reading = Path::new(READING_DIR);
    let mut logs: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let names = match fs.len(reading).io("inspecting", reading)? {
        Some(_) => fs.list(reading).io("listing", reading)?,
        None => Vec::new(),
    };
    for log in LogId::all_in(&names) {
        let path = log.path();
        let bytes = fs.read(&path).io("reading", &path)?;
        logs.push((path, bytes));
    }
    let leftover = Path::new(WRITING_LOG);
    if fs.len(leftover).io("inspecting", leftover)?.is_some() {
        let bytes = fs.read(leftover).io("reading", leftover)?;
        let mut decoder = LogDecoder::new(&bytes, DecodeLimits::default());
        decoder
            .by_ref()
            .take_while(|item| item.is_ok())
            .for_each(drop);
        let intact = usize::try_from(decoder.valid_prefix_len()).unwrap_or(bytes.len());
        logs.push((leftover.into(), bytes[..intact.min(bytes.len())].to_vec()));
    }
    for (path, bytes) in logs {
        let routed = route_log(&path, &bytes, options.recovery_mode, routed_upto)?;
        for record in &routed.records {
            pending.insert(record.seq, record.kind, &record.key, &record.payload);
        }
        routed_upto = routed.last_routed_seq;
    }
    Ok(pending)
}
