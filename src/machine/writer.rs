//! The writer: the group-commit pass that writes a batch of requests (taken from the
//! [`SubmitQueue`](crate::machine::submit_queue::SubmitQueue)) to the active log with
//! one write and at most one fdatasync.

use std::path::Path;

use crate::error::Error;
use crate::failure::Failure;
use crate::format::{self, Block};
use crate::fs::{Fs, FsFile};
use crate::machine::submit_queue::Request;
use crate::options::Durability;

/// The log file being written, with what the writer knows of it.
///
/// The file may run past its blocks into zeros the writer wrote ahead (preallocation), so
/// that the fdatasync of a later pass, which overwrites them, has no file size to commit.
/// Recovery cuts such a zero tail like a crash's; [`Writer::seal`] cuts it before a log
/// leaves `writing/`, so a finished log is exactly its blocks.
pub struct ActiveLog<F: Fs> {
    file: F::File,
    /// Bytes of blocks in the file, header included: where the next pass writes.
    pub bytes: u64,
    /// The file's length: `bytes` plus the zeros written ahead. Invariant: at least
    /// `bytes`.
    pub allocated: u64,
    /// Records in the file.
    pub records: u64,
    /// Passes that wrote to the file.
    pub passes: u64,
    /// Whether bytes were written (or the file cut) since the last fdatasync.
    pub unsynced: bool,
}

impl<F: Fs> ActiveLog<F> {
    /// Creates `path` as a new, empty log: header written, fdatasync'd. The caller makes
    /// its directory entry durable.
    pub fn create(fs: &F, path: &Path) -> std::io::Result<Self> {
        let mut file = fs.create(path)?;
        let mut header = Vec::with_capacity(format::LOG_HEADER_LEN);
        format::encode_log_header(&mut header);
        file.write_at(0, &header)?;
        file.sync_data()?;
        Ok(ActiveLog {
            file,
            bytes: header.len() as u64,
            allocated: header.len() as u64,
            records: 0,
            passes: 0,
            unsynced: false,
        })
    }

    /// fdatasyncs the file if anything was written since the last time; returns whether
    /// it synced.
    pub fn sync(&mut self) -> std::io::Result<bool> {
        if !self.unsynced {
            return Ok(false);
        }
        self.file.sync_data()?;
        self.unsynced = false;
        Ok(true)
    }
}

/// What one pass wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassOutcome {
    /// The seq of the last record written; every seq up to it is written to the OS.
    pub last_seq: u64,
    /// Whether the pass fdatasync'd, making every seq up to `last_seq` durable.
    pub synced: bool,
    /// Requests in the pass.
    pub requests: u64,
    /// Records in the pass.
    pub records: u64,
    /// Payload bytes in the pass.
    pub payload_bytes: u64,
}

/// Why the writer acknowledges nothing more: the failure, cause and all.
#[derive(Clone, Debug)]
pub struct Poisoned(pub Failure);

impl Poisoned {
    /// Poison from an I/O error of the writer's step `during`, met `action` the path.
    pub fn io(during: &str, action: &'static str, path: &Path, source: std::io::Error) -> Self {
        let path = path.to_path_buf();
        Poisoned(Failure::caused(
            during,
            Error::Io {
                action,
                path,
                source,
            },
        ))
    }

    /// Poison from an I/O error of the writer's step `during` on the active log.
    fn active_log(during: &str, action: &'static str, source: std::io::Error) -> Self {
        Self::io(
            during,
            action,
            Path::new(crate::machine::WRITING_LOG),
            source,
        )
    }
}

/// The group-commit writer. Owns the active log; one driver calls it.
pub struct Writer<F: Fs> {
    log: ActiveLog<F>,
    buf: Vec<u8>,
    /// Invariant: every seq written so far is at most `last_seq`, and the next pass starts
    /// above it.
    last_seq: u64,
    /// Zeros written ahead of the blocks whenever a pass runs past the allocated end (0:
    /// none; the file grows with each pass).
    prealloc_bytes: u64,
    /// The length the previous log was sealed at (0 before the first rotation). The first
    /// outgrowing of a log writes zeros up to it, so that under a steady load a log is
    /// extended once rather than every `prealloc_bytes`: each extension's fdatasync
    /// commits a size change and writes the zeros, and with 256 KiB steps those were
    /// about the slowest 1 % of passes. (The writer alone, `bench --commit-ms 100000`,
    /// five pairs: p99 875–1,355 µs against 1,352–1,557 µs with fixed steps, at equal
    /// appends/s. Extending to 1.5 times the previous length gave a lower p99 still,
    /// 892–1,010 µs, but fewer appends/s in three pairs of three, and a higher p99.9.)
    previous_log_bytes: u64,
    /// Whether this log writes zeros ahead: the previous log's passes averaged fewer than
    /// [`LARGE_PASS_BYTES`] (true for the first log).
    zeros_pay: bool,
    /// Invariant: every seq at or below is fdatasync'd; `synced_upto <= last_seq`.
    synced_upto: u64,
    poisoned: Option<Poisoned>,
}

/// The seq up to which a caller that asked for `durability` may be released, when every
/// seq up to `written` is written to the OS and every seq up to `synced` fdatasync'd: the
/// one rule by which the runtime wakes callers and the simulator counts them answered.
pub fn release_level(durability: Durability, written: u64, synced: u64) -> u64 {
    match durability {
        Durability::Sync => synced,
        Durability::Buffered => written,
        Durability::None => u64::MAX,
    }
}

/// The mean pass, in bytes, from which zeros ahead cost more than they save. Zeros cost
/// their bytes written once more (as much again as the blocks that overwrite them); an
/// extension costs one metadata write in the fdatasync that commits it, about what the
/// device writes sequentially in the time of one small random write. So a load of large
/// passes (big payloads) extends its log with each pass instead.
pub const LARGE_PASS_BYTES: u64 = 64 << 10;

impl<F: Fs> Writer<F> {
    /// A writer appending to `log`, whose last written seq (in any log) is `last_seq`,
    /// writing `prealloc_bytes` of zeros ahead each time a pass that fdatasyncs outgrows
    /// the file.
    pub fn new(log: ActiveLog<F>, last_seq: u64, prealloc_bytes: u64) -> Self {
        Writer {
            log,
            buf: Vec::new(),
            last_seq,
            prealloc_bytes,
            previous_log_bytes: 0,
            zeros_pay: true,
            synced_upto: last_seq,
            poisoned: None,
        }
    }

    /// Every seq at or below is fdatasync'd.
    pub fn synced_upto(&self) -> u64 {
        self.synced_upto
    }

    /// The seq up to which callers asking `durability` may be released now
    /// ([`release_level`] of what this writer wrote and synced).
    pub fn released_upto(&self, durability: Durability) -> u64 {
        release_level(durability, self.last_seq, self.synced_upto)
    }

    /// The active log.
    pub fn log(&self) -> &ActiveLog<F> {
        &self.log
    }

    /// The seq of the last record written.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Why the writer is poisoned, if it is.
    pub fn poisoned(&self) -> Option<&Poisoned> {
        self.poisoned.as_ref()
    }

    /// Writes `requests` (in queue order) to the log with one write, then fdatasyncs once
    /// if any of them asks for [`Durability::Sync`]. Every request of a successful pass is
    /// then as durable as it asked, so the driver acknowledges exactly the pass's requests. Any I/O error poisons the writer: a
    /// later pass could otherwise leave a hole in what survives, and after a failed
    /// fdatasync the kernel may have dropped the dirty pages.
    pub fn write_pass<T>(&mut self, requests: &[Request<T>]) -> Result<PassOutcome, Poisoned> {
        if let Some(poisoned) = &self.poisoned {
            return Err(poisoned.clone());
        }
        let (mut outcome, wants_sync) = self.encode_pass(requests);
        if self.buf.is_empty() {
            // Only barriers (or nothing): sync what earlier passes left unsynced.
            if wants_sync {
                outcome.synced = self.sync()?;
            }
            return Ok(outcome);
        }
        let blocks_len = self.buf.len() as u64;
        let end = self.log.bytes + blocks_len;
        if end > self.log.allocated && wants_sync && self.zeros_pay {
            let zeros = self.zeros_ahead(end);
            self.buf.resize(self.buf.len().saturating_add(zeros), 0);
        }
        if let Err(e) = self.log.file.write_at(self.log.bytes, &self.buf) {
            return Err(self.poison(Poisoned::active_log("the log's write", "writing", e)));
        }
        self.log.allocated = self
            .log
            .allocated
            .max(self.log.bytes + self.buf.len() as u64);
        self.log.bytes = end;
        assert!(
            self.log.bytes <= self.log.allocated,
            "the blocks never run past the file's allocated end"
        );
        self.log.records += outcome.records;
        self.log.passes += 1;
        self.log.unsynced = true;
        self.last_seq = outcome.last_seq;
        if wants_sync {
            outcome.synced = self.sync()?;
        }
        Ok(outcome)
    }

    /// Encodes the pass's blocks into the buffer; its outcome so far (nothing synced) and
    /// whether any request asked for `Sync`.
    fn encode_pass<T>(&mut self, requests: &[Request<T>]) -> (PassOutcome, bool) {
        self.buf.clear();
        let mut outcome = PassOutcome {
            last_seq: self.last_seq,
            synced: false,
            requests: requests.len() as u64,
            records: 0,
            payload_bytes: 0,
        };
        let mut wants_sync = false;
        for request in requests {
            assert!(
                request.first_seq == outcome.last_seq + 1,
                "seqs are consecutive in queue order: expected {}, got {}",
                outcome.last_seq + 1,
                request.first_seq
            );
            if request.records.is_empty() {
                // A sync barrier: no bytes, only the fdatasync below.
                assert!(
                    request.durability == Durability::Sync,
                    "only a sync barrier holds no records"
                );
                wants_sync = true;
                continue;
            }
            let batch_len =
                u32::try_from(request.records.len()).expect("batch length checked on submit");
            for (i, record) in request.records.iter().enumerate() {
                let block = Block {
                    seq: request.first_seq + i as u64,
                    kind: record.kind,
                    batch_first: i == 0,
                    batch_left: batch_len - 1 - i as u32,
                    key: &record.key,
                    payload: &record.payload,
                };
                format::encode_block(&mut self.buf, &block);
                outcome.payload_bytes += record.payload.len() as u64;
            }
            outcome.records += request.records.len() as u64;
            outcome.last_seq = request.first_seq + request.records.len() as u64 - 1;
            wants_sync |= request.durability == Durability::Sync;
        }
        (outcome, wants_sync)
    }

    /// The zeros to write ahead of a pass whose blocks end at `end`, outgrowing the file.
    /// Only a pass that will fdatasync, under a load of small passes (`zeros_pay`), writes
    /// them: the next passes then overwrite allocated bytes and their fdatasyncs commit no
    /// size change. A pass that does not sync has no size change to commit, so it writes
    /// no zeros: with `Durability::None` they would only double the bytes the writer
    /// copies into the page cache.
    fn zeros_ahead(&self, end: u64) -> usize {
        if self.prealloc_bytes == 0 {
            return 0;
        }
        let target = end
            .saturating_add(self.prealloc_bytes)
            .max(self.previous_log_bytes);
        usize::try_from(target - end).unwrap_or(usize::MAX)
    }

    /// fdatasyncs the active log if it holds unsynced bytes; returns whether it synced.
    pub fn sync(&mut self) -> Result<bool, Poisoned> {
        if let Some(poisoned) = &self.poisoned {
            return Err(poisoned.clone());
        }
        let synced = self.log.sync().map_err(|e| {
            self.poison(Poisoned::active_log(
                "the log's fdatasync",
                "fdatasyncing",
                e,
            ))
        })?;
        self.synced_upto = self.last_seq;
        debug_assert!(!self.log.unsynced, "nothing unsynced after a sync");
        Ok(synced)
    }

    /// Cuts the zeros written ahead off the active log and fdatasyncs it: the file is
    /// then exactly its blocks, whole on disk, ready to leave `writing/` (rotation) or to
    /// be found by the next open (close). Returns whether it synced.
    pub fn seal(&mut self) -> Result<bool, Poisoned> {
        if let Some(poisoned) = &self.poisoned {
            return Err(poisoned.clone());
        }
        if self.log.allocated > self.log.bytes {
            if let Err(e) = self.log.file.truncate(self.log.bytes) {
                let why = Poisoned::active_log("sealing the log", "cutting the zeros ahead of", e);
                return Err(self.poison(why));
            }
            self.log.allocated = self.log.bytes;
            self.log.unsynced = true;
        }
        self.sync()
    }

    /// Marks the writer poisoned for `why` (unless it is already: the first failure is
    /// the one kept) and returns the poison.
    pub fn poison(&mut self, why: Poisoned) -> Poisoned {
        self.poisoned.get_or_insert(why).clone()
    }

    /// Swaps in a new active log (rotation) and hands back the old one.
    pub fn replace_log(&mut self, log: ActiveLog<F>) -> ActiveLog<F> {
        assert!(!self.log.unsynced, "a log is synced before it is replaced");
        assert!(
            self.log.allocated == self.log.bytes,
            "a log is sealed (its zero tail cut) before it is replaced"
        );
        self.previous_log_bytes = self.log.bytes;
        if let Some(mean_pass) = self.log.bytes.checked_div(self.log.passes) {
            self.zeros_pay = mean_pass < LARGE_PASS_BYTES;
        }
        std::mem::replace(&mut self.log, log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{DecodeLimits, LogDecoder};
    use crate::fs::MemFs;
    use crate::machine::submit_queue::tests::record;
    use crate::machine::submit_queue::SubmitQueue;

    fn writer(fs: &MemFs) -> Writer<MemFs> {
        preallocating_writer(fs, 0)
    }

    /// A writer on a new `d/tx.log` that writes `prealloc_bytes` of zeros ahead.
    fn preallocating_writer(fs: &MemFs, prealloc_bytes: u64) -> Writer<MemFs> {
        fs.create_dir_all(Path::new("d")).unwrap();
        let log = ActiveLog::create(fs, Path::new("d/tx.log")).unwrap();
        Writer::new(log, 0, prealloc_bytes)
    }

    #[test]
    fn a_pass_is_one_write_and_one_sync_and_decodes_back_as_batches() {
        let fs = MemFs::new();
        let mut writer = writer(&fs);
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20);
        queue.push(vec![record("a", "1")], Durability::Buffered, ());
        queue.push(
            vec![record("b", "2"), record("c", "3")],
            Durability::Sync,
            (),
        );
        queue.push(vec![record("d", "4")], Durability::None, ());
        let syncs_before = fs.file_syncs();
        let outcome = writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        assert_eq!(outcome.last_seq, 4);
        assert!(outcome.synced);
        assert_eq!(fs.file_syncs() - syncs_before, 1);
        assert_eq!((outcome.records, outcome.payload_bytes), (4, 4));
        assert_eq!(
            writer.synced_upto(),
            4,
            "the pass's fdatasync covers all of it"
        );
        assert!(
            !writer.seal().unwrap(),
            "a synced log with no zeros ahead seals without another fdatasync"
        );
        let bytes = fs.read(Path::new("d/tx.log")).unwrap();
        let batches: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default())
            .map(|b| {
                b.unwrap()
                    .blocks
                    .iter()
                    .map(|b| (b.seq, b.key.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            batches,
            vec![
                vec![(1, b"a".to_vec())],
                vec![(2, b"b".to_vec()), (3, b"c".to_vec())],
                vec![(4, b"d".to_vec())]
            ]
        );
    }

    /// A writer on `d/tx.log` that writes 4 KiB of zeros ahead, with its queue and the
    /// lengths the zeros-ahead tests reckon with.
    struct ZerosAhead {
        fs: MemFs,
        writer: Writer<MemFs>,
        queue: SubmitQueue<()>,
        /// The encoded length of `record("k", "v")`.
        one: u64,
        /// The log header's length.
        header: u64,
    }

    impl ZerosAhead {
        const PATH: &'static str = "d/tx.log";

        fn new() -> Self {
            let fs = MemFs::new();
            let writer = preallocating_writer(&fs, 4096);
            ZerosAhead {
                fs,
                writer,
                queue: SubmitQueue::new(1, 1 << 20),
                one: record("k", "v").encoded_len() as u64,
                header: format::LOG_HEADER_LEN as u64,
            }
        }

        /// Writes one pass of one `record("k", "v")` at `durability`.
        fn pass(&mut self, durability: Durability) {
            self.queue.push(vec![record("k", "v")], durability, ());
            self.writer
                .write_pass(&self.queue.take_pass(1 << 20))
                .unwrap();
        }

        /// The log file's length.
        fn file_len(&self) -> Option<u64> {
            self.fs.len(Path::new(Self::PATH)).unwrap()
        }
    }

    #[test]
    fn zeros_are_written_ahead_once_per_outgrowing_and_sealing_cuts_them() {
        let mut t = ZerosAhead::new();
        let (one, header) = (t.one, t.header);

        t.pass(Durability::Sync);
        assert_eq!(t.writer.log().bytes, header + one);
        assert_eq!(t.writer.log().allocated, header + one + 4096);
        assert_eq!(t.file_len(), Some(header + one + 4096));

        t.pass(Durability::Sync);
        assert_eq!(
            t.file_len(),
            Some(header + one + 4096),
            "a pass that fits overwrites zeros: the file does not grow"
        );
        let bytes = t.fs.read(Path::new(ZerosAhead::PATH)).unwrap();
        let items: Vec<_> = LogDecoder::new(&bytes, DecodeLimits::default()).collect();
        assert_eq!(items.len(), 3, "two batches, then the zeros");
        assert_eq!(
            items[2].as_ref().unwrap_err().reason,
            format::BadReason::ZeroFilled
        );

        assert!(t.writer.seal().unwrap(), "a cut is synced");
        assert_eq!(t.file_len(), Some(header + 2 * one));
        assert_eq!(t.writer.log().allocated, t.writer.log().bytes);
        let bytes = t.fs.read(Path::new(ZerosAhead::PATH)).unwrap();
        assert!(LogDecoder::new(&bytes, DecodeLimits::default()).all(|item| item.is_ok()));
    }

    #[test]
    fn a_pass_that_does_not_sync_writes_no_zeros_ahead() {
        let mut t = ZerosAhead::new();
        let (one, header) = (t.one, t.header);

        t.pass(Durability::None);
        t.pass(Durability::Buffered);
        assert_eq!(
            t.file_len(),
            Some(header + 2 * one),
            "no fdatasync follows, so there is no size change to spare it"
        );
        assert_eq!(t.writer.log().allocated, t.writer.log().bytes);

        t.pass(Durability::Sync);
        assert_eq!(
            t.file_len(),
            Some(header + 3 * one + 4096),
            "the first syncing pass writes the zeros ahead"
        );
    }

    #[test]
    fn a_new_log_is_extended_at_once_to_the_length_the_previous_one_reached() {
        let fs = MemFs::new();
        fs.create_dir_all(Path::new("d")).unwrap();
        let log = ActiveLog::create(&fs, Path::new("d/a.log")).unwrap();
        let mut writer = Writer::new(log, 0, 64);
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20);
        let header = format::LOG_HEADER_LEN as u64;
        let one = record("k", "v").encoded_len() as u64;
        for _ in 0..20 {
            queue.push(vec![record("k", "v")], Durability::Sync, ());
            writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        }
        writer.seal().unwrap();
        let first_len = writer.log().bytes;
        assert_eq!(first_len, header + 20 * one);
        assert!(
            first_len > header + one + 64,
            "the first log outgrew its 64-byte steps"
        );

        let next = ActiveLog::create(&fs, Path::new("d/b.log")).unwrap();
        writer.replace_log(next);
        queue.push(vec![record("k", "v")], Durability::Sync, ());
        writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        assert_eq!(
            writer.log().allocated,
            first_len,
            "one extension reaches the previous log's length"
        );
        for _ in 1..20 {
            queue.push(vec![record("k", "v")], Durability::Sync, ());
            writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        }
        assert_eq!(
            fs.len(Path::new("d/b.log")).unwrap(),
            Some(first_len),
            "the same load fits without another extension"
        );
        queue.push(vec![record("k", "v")], Durability::Sync, ());
        writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        assert_eq!(
            writer.log().allocated,
            first_len + one + 64,
            "past it, the usual step"
        );
    }

    #[test]
    fn after_a_log_of_large_passes_the_next_log_grows_with_its_passes() {
        let fs = MemFs::new();
        let mut writer = preallocating_writer(&fs, 4096);
        let mut queue = SubmitQueue::<()>::new(1, 1 << 30);
        let large = "x".repeat(LARGE_PASS_BYTES as usize);
        let mut sync_pass = |writer: &mut Writer<MemFs>, payload: &str| {
            queue.push(vec![record("k", payload)], Durability::Sync, ());
            writer.write_pass(&queue.take_pass(1 << 30)).unwrap();
        };
        sync_pass(&mut writer, &large);
        assert_eq!(
            writer.log().allocated,
            writer.log().bytes + 4096,
            "the first log, with nothing to go by, writes zeros ahead"
        );
        sync_pass(&mut writer, &large);
        writer.seal().unwrap();

        let next = ActiveLog::create(&fs, Path::new("d/b.log")).unwrap();
        writer.replace_log(next);
        for payload in [large.as_str(), "v", large.as_str()] {
            sync_pass(&mut writer, payload);
            assert_eq!(
                fs.len(Path::new("d/b.log")).unwrap(),
                Some(writer.log().bytes),
                "no zeros ahead, even for a small pass: the load writes large ones"
            );
        }
        writer.seal().unwrap();

        let small = ActiveLog::create(&fs, Path::new("d/c.log")).unwrap();
        writer.replace_log(small);
        sync_pass(&mut writer, "v");
        assert!(
            writer.log().allocated > writer.log().bytes,
            "the previous log's mean pass, two large and one small, was under \
             LARGE_PASS_BYTES, so zeros ahead pay again"
        );
    }

    #[test]
    fn a_pass_without_sync_requests_does_not_sync() {
        let fs = MemFs::new();
        let mut writer = writer(&fs);
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20);
        queue.push(vec![record("a", "1")], Durability::Buffered, ());
        let syncs_before = fs.file_syncs();
        let outcome = writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        assert!(!outcome.synced);
        assert_eq!(fs.file_syncs(), syncs_before);
        assert_eq!(writer.synced_upto(), 0, "nothing is synced yet");
        assert!(
            writer.sync().unwrap(),
            "the unsynced bytes are synced on demand"
        );
        assert!(!writer.sync().unwrap(), "and only once");
    }

    #[test]
    fn a_sync_barrier_takes_no_seq_and_syncs_only_what_is_unsynced() {
        let fs = MemFs::new();
        let mut writer = writer(&fs);
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20);
        queue.push(vec![record("a", "1")], Durability::None, ());
        assert_eq!(
            queue.push_sync_barrier(()),
            1,
            "it covers the seq before it"
        );
        assert_eq!(queue.next_seq(), 2, "and takes none");
        let syncs_before = fs.file_syncs();
        let outcome = writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        assert!(
            outcome.synced,
            "the barrier's pass syncs the unsynced record"
        );
        assert_eq!((outcome.last_seq, outcome.records), (1, 1));
        assert_eq!(fs.file_syncs(), syncs_before + 1);
        // Alone, after a pass that did not sync: one fdatasync, no bytes.
        queue.push(vec![record("b", "2")], Durability::Buffered, ());
        writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        let bytes = writer.log().bytes;
        queue.push_sync_barrier(());
        let outcome = writer.write_pass(&queue.take_pass(1 << 20)).unwrap();
        assert!(outcome.synced && outcome.last_seq == 2 && outcome.records == 0);
        assert_eq!(writer.log().bytes, bytes, "a barrier writes nothing");
        // Nothing left unsynced: a barrier costs no fdatasync.
        queue.push_sync_barrier(());
        let syncs_before = fs.file_syncs();
        assert!(!writer.write_pass(&queue.take_pass(1 << 20)).unwrap().synced);
        assert_eq!(fs.file_syncs(), syncs_before);
    }

    #[test]
    fn a_failed_fsync_poisons_the_writer_for_good() {
        let fs = MemFs::new();
        let mut writer = writer(&fs);
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20);
        queue.push(vec![record("a", "1")], Durability::Sync, ());
        fs.fail_next_sync();
        assert!(writer.write_pass(&queue.take_pass(1 << 20)).is_err());
        queue.push(vec![record("b", "2")], Durability::Sync, ());
        assert!(
            writer.write_pass(&queue.take_pass(1 << 20)).is_err(),
            "poisoned for good"
        );
        assert!(writer.poisoned().is_some());
    }

    #[test]
    fn a_failed_write_poisons_the_writer() {
        let fs = MemFs::new();
        let mut writer = writer(&fs);
        let mut queue = SubmitQueue::<()>::new(1, 1 << 20);
        queue.push(vec![record("a", "1")], Durability::Buffered, ());
        fs.fail_next_append();
        assert!(writer.write_pass(&queue.take_pass(1 << 20)).is_err());
        assert_eq!(writer.last_seq(), 0, "nothing counts as written");
    }
}
