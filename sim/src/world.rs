//! One seeded run: the store's machines driven from one thread over [`SimFs`], a workload,
//! crashes, and the oracle.
//!
//! Everything is derived from the seed through one ChaCha8 stream: the options, the fault
//! mix (swarm testing: each seed turns some faults on, at its own rates), the workload and
//! the schedule. Nothing else (no clock, no hash order, no thread) reaches the run, so a
//! seed's trace digest is the same on every run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use writelog::clock::Timestamp;
use writelog::format::{
    block_len, crc64, truncate_floor, BadReason, DecodeLimits, Kind, LogDecoder, LOG_HEADER_LEN,
};
use writelog::fs::Fs;
use writelog::index::{self, PendingIndex, Record};
use writelog::keystore::{KeyStore, OpenMode};
use writelog::machine::build::Machines;
use writelog::machine::commit::{CommitWork, Committer};
use writelog::machine::compact::CompactPolicy;
use writelog::machine::dispatch::Dispatcher;
use writelog::machine::pacing::{Backlog, CommitPacing};
use writelog::machine::recovery;
use writelog::machine::rotation::{Rotated, Rotation};
use writelog::machine::writer::{LogRecord, Request, SubmitQueue, Writer};
use writelog::machine::{LogId, READING_DIR, WRITING_DIR};
use writelog::Seq;
use writelog::{Durability, Options, RecoveryMode};

use crate::simfs::{CrashKind, IoFaultCounts, IoFaultRates, SimFs};

/// Recoveries tried with the seed's I/O faults on before one on a quiet disk.
const RECOVERY_TRIES_NOISY: u32 = 8;

/// What one seed chose and what happened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Steps run.
    pub steps: u64,
    /// Requests submitted (appends, batches, deletes).
    pub submitted: u64,
    /// Process crashes injected.
    pub process_crashes: u64,
    /// Power losses injected.
    pub power_losses: u64,
    /// Crashes that hit during recovery.
    pub crashes_in_recovery: u64,
    /// Crashes that hit a write, sync or rename in flight.
    pub crashes_mid_io: u64,
    /// Applied logs put back into `reading/`.
    pub replays: u64,
    /// Clock steps back.
    pub clock_steps_back: u64,
    /// Clock jumps ahead.
    pub clock_jumps_ahead: u64,
    /// Injected I/O errors by kind (EIO on sync, read and write; short reads and writes;
    /// ENOSPC). None crashes: the store fails the call, poisons if it must, and reopens.
    pub io: IoFaultCounts,
    /// Reads that failed with an injected error (the oracle skips them: an error is an
    /// answer that loses nothing).
    pub reads_failed: u64,
    /// Bits flipped in the durable bytes of finished logs.
    pub bit_rots: u64,
    /// Stale blocks (a copy of an applied log's block, its checksum intact) spliced into
    /// finished logs.
    pub stale_blocks: u64,
    /// Corruptions the `Strict` recovery mode refused (each then repaired by the operator).
    pub refusals: u64,
    /// Oracle checks made.
    pub checks: u64,
    /// Index checkpoints the committers wrote.
    pub checkpoints: u64,
    /// Compactions that swapped their partition in.
    pub compactions: u64,
    /// Records compactions dropped by retention.
    pub retained_out: u64,
    /// The trace digest: the same for the same seed on every run.
    pub digest: u64,
}

/// The token of a sync barrier's request (other requests carry their first seq).
const BARRIER_TOKEN: u64 = u64::MAX;

/// A request as the model knows it.
#[derive(Clone, Debug)]
struct Submitted {
    records: Vec<LogRecord>,
    /// Whether the caller was answered (for `None`: when queued).
    acked: bool,
}

/// The store under simulation: the machines and what the runtime would hold.
struct Node {
    queue: SubmitQueue<u64>,
    writer: Writer<SimFs>,
    rotation: Rotation,
    dispatcher: Dispatcher,
    keys: KeyStore,
    committers: Vec<Committer<SimFs>>,
    inbox: Vec<VecDeque<CommitWork>>,
    index: PendingIndex,
    /// When the dispatcher may hand logs out, on the simulated clock.
    pacing: CommitPacing,
}

/// The knobs a seed picks.
#[derive(Clone, Debug)]
struct Knobs {
    committers: usize,
    /// Key-store partitions of a store this seed creates.
    partitions: u32,
    /// A committer starts a new segment past this many bytes.
    segment_bytes_max: u64,
    /// Per step: a bit flipped in the durable bytes of a segment, an index checkpoint or
    /// the MANIFEST.
    key_rot_rate: f64,
    /// A partition's changed index entries past this many bytes become a checkpoint.
    index_delta_bytes_max: u64,
    /// Per step: a segment's run overwritten by an earlier run of the same segment, its
    /// checksums intact (a misdirected write).
    stale_run_rate: f64,
    /// When a committer compacts a partition after a pass (`min_bytes` `u64::MAX`:
    /// never).
    compaction: CompactPolicy,
    /// The dispatcher's pacing interval on the simulated clock (0: always due).
    commit_interval_ms: u64,
    rotate_interval_ms: u64,
    rotate_bytes_max: u64,
    keys: u32,
    crash_rate: f64,
    power_loss_share: f64,
    crash_in_recovery: f64,
    replay_rate: f64,
    clock_back_rate: f64,
    clock_jump_rate: f64,
    io: IoFaultRates,
    bit_rot_rate: f64,
    stale_block_rate: f64,
    recovery_mode: RecoveryMode,
    /// Zeros the writer writes ahead in the active log (0: none).
    log_prealloc_bytes: u64,
    crash_on_io_only: bool,
    big_payloads: bool,
    steps: u64,
}

/// One operation of a scripted run: what the `sim_ops` fuzz target feeds the simulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptOp {
    /// Append `payload` to key `k{key}`.
    Append {
        key: u8,
        payload: Vec<u8>,
        durability: Durability,
    },
    /// Append to several keys atomically.
    Batch {
        keys: Vec<u8>,
        durability: Durability,
    },
    /// Delete key `k{key}`.
    Delete { key: u8, durability: Durability },
    /// Read key `k{key}` and check it against the model.
    Read { key: u8 },
    /// One writer pass.
    WriterPass,
    /// Rotate the active log (even before its interval).
    Rotate,
    /// Hand the next finished log to the committers.
    Dispatch,
    /// One pass of committer `committer % committers`.
    Commit { committer: u8 },
    /// Retire what every committer is done with.
    Retire,
    /// The process dies.
    Crash,
    /// The machine loses power.
    PowerLoss,
    /// An applied log is put back into `reading/`.
    Replay,
    /// The wall clock moves by this many milliseconds (back when negative).
    Clock { ms: i16 },
}

/// A failed oracle check.
#[derive(Clone, Debug)]
pub struct Failure {
    /// The step at which it failed.
    pub step: u64,
    /// What the oracle saw.
    pub message: String,
    /// The trace so far (when tracing).
    pub trace: Vec<String>,
}

type Step<T> = Result<T, StepError>;

/// Why a step stopped: a crash or an injected error (expected, handled by a restart), a
/// corruption refused as the recovery mode demands (repaired, then a restart), or an
/// oracle failure.
enum StepError {
    Crash,
    Refused,
    Oracle(String),
}

/// A corruption planted in a finished log, remembered so that a refusal can be told from
/// a false alarm and repaired, and so that a retired copy kept for replays is pristine.
#[derive(Clone, Debug)]
struct Corruption {
    /// The log, `reading/tx-….log`.
    path: PathBuf,
    /// Its bytes before the fault.
    pristine: Vec<u8>,
}

/// Which records a read asks for.
#[derive(Clone, Copy, Debug)]
enum Want {
    All,
    After(u64, usize),
    Last(usize),
}

/// A fault planted in the key store (a segment or the MANIFEST): the region it changed,
/// as it was and as planted, so a refusal can be told from a false alarm and repaired
/// (the file may have grown since, so only the region is put back).
#[derive(Clone, Debug)]
struct KeyDamage {
    path: PathBuf,
    offset: usize,
    original: Vec<u8>,
    planted: Vec<u8>,
    /// For a file replaced whole (the MANIFEST) or removed whole (a checkpoint): its
    /// bytes just after the fault. It is repaired only while it still holds exactly them.
    whole: Option<Vec<u8>>,
}

impl KeyDamage {
    /// Puts the region back. A segment's damaged region lies in what the MANIFEST made
    /// durable, which is never cut or written over, so it still holds what was planted; a
    /// MANIFEST or checkpoint replaced since holds other bytes and needs no repair.
    fn repair(&self, fs: &SimFs) {
        if let Some(whole) = &self.whole {
            if fs.peek(&self.path).as_ref() != Some(whole) {
                return;
            }
        }
        if fs
            .peek_at(&self.path, self.offset, self.planted.len())
            .as_ref()
            == Some(&self.planted)
        {
            fs.patch(&self.path, self.offset, &self.original);
        }
    }
}

impl From<writelog::Error> for StepError {
    fn from(e: writelog::Error) -> Self {
        StepError::Oracle(format!("unexpected store error: {e}"))
    }
}

/// One simulation.
pub struct World {
    rng: ChaCha8Rng,
    knobs: Knobs,
    fs: SimFs,
    now: u64,
    node: Option<Node>,
    /// Every request that may still be in the store, by first seq.
    history: BTreeMap<u64, Submitted>,
    /// Every seq at or below must survive any crash.
    durable_upto: u64,
    /// Every seq at or below must survive a process crash.
    written_upto: u64,
    /// The highest seq that ever reached a finished log (rotated, or finished by
    /// recovery). Such a record may be in the key store even if its log is damaged later,
    /// so new seqs must always start above it, or the key store would skip a new record
    /// as a duplicate of the old one.
    finished_upto: u64,
    /// Keys ever used.
    keys_used: BTreeSet<Vec<u8>>,
    /// Bytes of logs retired, kept to be put back (a replay fault).
    retired_logs: Vec<(LogId, Vec<u8>)>,
    /// Corruptions planted in logs still in `reading/`.
    corruptions: Vec<Corruption>,
    /// Faults planted in the key store, not yet refused or repaired.
    key_damage: Vec<KeyDamage>,
    /// Seqs the recovery mode may drop because of a planted corruption (`PointInTime`,
    /// `SkipCorrupt`): each may read as present or absent, nothing else may change.
    maybe_lost: BTreeSet<u64>,
    summary: Summary,
    trace_on: bool,
    trace: Vec<String>,
    digest_input: Vec<u8>,
    step: u64,
}

/// The backlog bounds of the simulated store: the dispatcher hands out at most this many
/// logs at once, and its pacing hurries past half of either.
const PACING_BACKLOG_LOGS: usize = 16;
const PACING_BACKLOG_BYTES: usize = 1 << 20;

/// A policy under which nothing is ever compacted.
const NO_COMPACTION: CompactPolicy = CompactPolicy::NEVER;

impl World {
    /// A world for `seed`.
    pub fn new(seed: u64, trace_on: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let knobs = Knobs {
            committers: rng.random_range(1..=4),
            partitions: 1,
            segment_bytes_max: 1 << 20,
            key_rot_rate: 0.0,
            stale_run_rate: 0.0,
            index_delta_bytes_max: 2048,
            compaction: NO_COMPACTION,
            commit_interval_ms: 0,
            rotate_interval_ms: [1, 5, 20, 100][rng.random_range(0..4)],
            rotate_bytes_max: [4096, 16384, 1 << 20][rng.random_range(0..3)],
            keys: [1, 3, 8, 40][rng.random_range(0..4)],
            crash_rate: [0.0, 0.002, 0.01, 0.03][rng.random_range(0..4)],
            power_loss_share: [0.0, 0.5, 1.0][rng.random_range(0..3)],
            crash_in_recovery: [0.0, 0.3][rng.random_range(0..2)],
            replay_rate: [0.0, 0.02][rng.random_range(0..2)],
            clock_back_rate: [0.0, 0.01][rng.random_range(0..2)],
            clock_jump_rate: [0.0, 0.005][rng.random_range(0..2)],
            io: IoFaultRates {
                sync_eio: [0.0, 0.0, 0.003, 0.02][rng.random_range(0..4)],
                ..IoFaultRates::default()
            },
            bit_rot_rate: 0.0,
            stale_block_rate: 0.0,
            recovery_mode: RecoveryMode::Strict,
            log_prealloc_bytes: 0,
            crash_on_io_only: rng.random_bool(0.5),
            big_payloads: rng.random_bool(0.2),
            steps: rng.random_range(200..1200),
        };
        // The later fault kinds come from a stream of their own, so that adding them left
        // every earlier seed's draws (and its story, when they are off) as it was.
        let mut more = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0002);
        let pick = |rng: &mut ChaCha8Rng, rates: &[f64]| rates[rng.random_range(0..rates.len())];
        let mut knobs = knobs;
        knobs.io.read_eio = pick(&mut more, &[0.0, 0.0, 0.002, 0.01]);
        knobs.io.short_read = pick(&mut more, &[0.0, 0.0, 0.002]);
        knobs.io.write_eio = pick(&mut more, &[0.0, 0.0, 0.003, 0.02]);
        knobs.io.enospc = pick(&mut more, &[0.0, 0.0, 0.001, 0.005]);
        knobs.bit_rot_rate = pick(&mut more, &[0.0, 0.0, 0.003, 0.01]);
        knobs.stale_block_rate = pick(&mut more, &[0.0, 0.0, 0.003]);
        knobs.recovery_mode = [
            RecoveryMode::Strict,
            RecoveryMode::Strict,
            RecoveryMode::PointInTime,
            RecoveryMode::SkipCorrupt,
        ][more.random_range(0..4)];
        knobs.log_prealloc_bytes = [0, 64, 512, 4096][more.random_range(0..4)];
        // The key store's knobs, from a stream of their own (as above).
        let mut keys = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0003);
        knobs.partitions = [1, 2, 3, 8][keys.random_range(0..4)];
        knobs.segment_bytes_max = [4096, 16384, 1 << 20][keys.random_range(0..3)];
        knobs.key_rot_rate = pick(&mut keys, &[0.0, 0.0, 0.003, 0.01]);
        knobs.stale_run_rate = pick(&mut keys, &[0.0, 0.0, 0.003]);
        knobs.index_delta_bytes_max = [1, 256, 1 << 30][keys.random_range(0..3)];
        // Three seeds in four compact, some after every pass that grows a partition.
        knobs.compaction = CompactPolicy {
            min_bytes: [u64::MAX, 1024, 4096, 16384][keys.random_range(0..4)],
            space_percent: [110, 150, 200][keys.random_range(0..3)],
            retain_records: u64::MAX,
            retain_bytes: u64::MAX,
        };
        knobs.commit_interval_ms = [0, 0, 2, 20][keys.random_range(0..4)];
        // Retention in one `Strict` seed in three (the oracle takes a read that keeps at
        // least that many of the model's newest records; lenient losses are not mixed in).
        // By records, by payload bytes (small payloads are 0..40 bytes), or both.
        let retain = [
            (u64::MAX, u64::MAX),
            (u64::MAX, u64::MAX),
            (2, u64::MAX),
            (5, u64::MAX),
            (u64::MAX, 60),
            (4, 200),
        ][keys.random_range(0..6)];
        if knobs.recovery_mode == RecoveryMode::Strict {
            (
                knobs.compaction.retain_records,
                knobs.compaction.retain_bytes,
            ) = retain;
        }
        let fs = SimFs::new();
        fs.set_crash_on_io_only(knobs.crash_on_io_only);
        fs.set_io_faults(
            knobs.io,
            ChaCha8Rng::seed_from_u64(rng.random_range(0..u64::MAX)),
        );
        World {
            rng,
            knobs,
            fs,
            now: 1_000_000_000,
            node: None,
            history: BTreeMap::new(),
            durable_upto: 0,
            written_upto: 0,
            finished_upto: 0,
            keys_used: BTreeSet::new(),
            retired_logs: Vec::new(),
            corruptions: Vec::new(),
            key_damage: Vec::new(),
            maybe_lost: BTreeSet::new(),
            summary: Summary::default(),
            trace_on,
            trace: Vec::new(),
            digest_input: Vec::new(),
            step: 0,
        }
    }

    fn note(&mut self, event: String) {
        self.digest_input.extend_from_slice(event.as_bytes());
        self.digest_input.push(b'\n');
        if self.trace_on {
            self.trace.push(format!("[{}] {event}", self.step));
        }
    }

    fn fail(&self, message: String) -> Failure {
        Failure {
            step: self.step,
            message,
            trace: self.trace.clone(),
        }
    }

    /// A world that runs a script instead of a seeded workload: two committers, no random
    /// faults; `seed` only decides what of the unsynced state a power loss keeps.
    pub fn scripted(seed: u64) -> Self {
        let mut world = World::new(seed, false);
        world.knobs = Knobs {
            committers: 2,
            partitions: 3,
            segment_bytes_max: 4096,
            key_rot_rate: 0.0,
            stale_run_rate: 0.0,
            index_delta_bytes_max: 2048,
            compaction: NO_COMPACTION,
            commit_interval_ms: 0,
            rotate_interval_ms: 5,
            rotate_bytes_max: 4096,
            keys: 8,
            crash_rate: 0.0,
            power_loss_share: 0.0,
            crash_in_recovery: 0.0,
            replay_rate: 0.0,
            clock_back_rate: 0.0,
            clock_jump_rate: 0.0,
            io: IoFaultRates::default(),
            bit_rot_rate: 0.0,
            stale_block_rate: 0.0,
            recovery_mode: RecoveryMode::Strict,
            log_prealloc_bytes: 512,
            crash_on_io_only: false,
            big_payloads: false,
            steps: 0,
        };
        world
            .fs
            .set_io_faults(IoFaultRates::default(), ChaCha8Rng::seed_from_u64(0));
        world
    }

    /// Runs `ops` with the oracle after each, then the quiet drain and liveness checks.
    pub fn run_script(mut self, ops: &[ScriptOp]) -> Result<Summary, Failure> {
        self.restart_after(None)?;
        for op in ops {
            self.step += 1;
            let done = match op.clone() {
                ScriptOp::Crash => {
                    self.restart_after(Some(CrashKind::Process))?;
                    Ok(())
                }
                ScriptOp::PowerLoss => {
                    self.restart_after(Some(CrashKind::PowerLoss))?;
                    Ok(())
                }
                ScriptOp::Replay => {
                    self.plant_replay();
                    Ok(())
                }
                ScriptOp::Clock { ms } => {
                    let delta = i64::from(ms) * 1000;
                    self.now = self.now.saturating_add_signed(delta).max(1);
                    Ok(())
                }
                ScriptOp::Append {
                    key,
                    payload,
                    durability,
                } => {
                    let record = LogRecord {
                        kind: Kind::Append,
                        key: format!("k{key}").into_bytes(),
                        payload,
                    };
                    self.submit_records(vec![record], durability)
                }
                ScriptOp::Batch { keys, durability } if !keys.is_empty() => {
                    let records = keys
                        .iter()
                        .map(|k| LogRecord {
                            kind: Kind::Append,
                            key: format!("k{k}").into_bytes(),
                            payload: vec![*k],
                        })
                        .collect();
                    self.submit_records(records, durability)
                }
                ScriptOp::Batch { .. } => Ok(()),
                ScriptOp::Delete { key, durability } => {
                    let record = LogRecord {
                        kind: Kind::Delete,
                        key: format!("k{key}").into_bytes(),
                        payload: Vec::new(),
                    };
                    self.submit_records(vec![record], durability)
                }
                ScriptOp::Read { key } => self.check_key(format!("k{key}").into_bytes()),
                ScriptOp::WriterPass => self.writer_pass(),
                ScriptOp::Rotate => self.rotate(true),
                ScriptOp::Dispatch => self.dispatch(),
                ScriptOp::Commit { committer } => {
                    self.commit_one(usize::from(committer) % self.knobs.committers)
                }
                ScriptOp::Retire => self.retire(),
            };
            match done {
                Ok(()) => {}
                Err(StepError::Oracle(message)) => return Err(self.fail(message)),
                Err(StepError::Crash | StepError::Refused) => {
                    return Err(self.fail("a fault while the script injected none".into()))
                }
            }
        }
        self.drain_and_summarize()
    }

    /// Runs the seed to the end: the workload with faults, then a quiet drain and the
    /// liveness checks.
    pub fn run(mut self) -> Result<Summary, Failure> {
        self.note(format!("knobs {:?}", self.knobs));
        self.restart_after(None)?;
        while self.step < self.knobs.steps {
            self.step += 1;
            match self.one_step() {
                Ok(()) => {}
                Err(StepError::Oracle(message)) => return Err(self.fail(message)),
                Err(StepError::Crash) if !self.fs.crashed() => {
                    // An injected error poisoned the store: it is closed and reopened.
                    self.note("poisoned by an injected error: reopen".into());
                    self.restart_after(Some(CrashKind::Process))?;
                }
                Err(StepError::Refused) => {
                    // The store refused a corruption and the operator repaired it.
                    self.restart_after(Some(CrashKind::Process))?;
                }
                Err(StepError::Crash) => {
                    let kind = if self.rng.random_bool(self.knobs.power_loss_share) {
                        CrashKind::PowerLoss
                    } else {
                        CrashKind::Process
                    };
                    self.restart_after(Some(kind))?;
                }
            }
        }
        self.drain_and_summarize()
    }

    /// Faults off: the drain and the liveness checks, then the summary and its digest.
    fn drain_and_summarize(mut self) -> Result<Summary, Failure> {
        match self.drain() {
            Ok(()) => {}
            Err(StepError::Oracle(message)) => return Err(self.fail(message)),
            Err(StepError::Crash | StepError::Refused) => {
                return Err(self.fail("a fault while faults were off".into()))
            }
        }
        self.summary.steps = self.step;
        self.summary.crashes_mid_io = self.fs.crashes_mid_io();
        self.summary.io = self.fs.injected();
        self.summary.digest = crc64(&self.digest_input);
        Ok(self.summary)
    }

    /// Applies a crash (if any), recovers (crashing again inside recovery when the seed
    /// says so), and checks the recovered state against the model.
    fn restart_after(&mut self, crash: Option<CrashKind>) -> Result<(), Failure> {
        let mut crash = crash;
        let mut attempts = 0;
        loop {
            if let Some(kind) = crash {
                match kind {
                    CrashKind::Process => self.summary.process_crashes += 1,
                    CrashKind::PowerLoss => self.summary.power_losses += 1,
                }
                self.note(format!("crash {kind:?} after {} fs calls", self.fs.calls()));
                self.node = None;
                if self.trace_on {
                    let described = self.fs.describe(Path::new(writelog::machine::WRITING_LOG));
                    self.trace.push(format!("    before restart: {described}"));
                    let manifest = self
                        .fs
                        .describe(Path::new(writelog::keystore::manifest::MANIFEST_FILE));
                    self.trace.push(format!("    before restart: {manifest}"));
                }
                self.fs.restart(kind, &mut self.rng);
                if self.trace_on {
                    let described = self.fs.describe(Path::new(writelog::machine::WRITING_LOG));
                    self.trace.push(format!("    after restart: {described}"));
                    let manifest = self
                        .fs
                        .describe(Path::new(writelog::keystore::manifest::MANIFEST_FILE));
                    self.trace.push(format!("    after restart: {manifest}"));
                }
                // A process crash keeps what was written (it is in the page cache), but only
                // until a power loss: across a chain of crashes, what must survive is the
                // written level if no crash in the chain lost power, else the synced level.
                if kind == CrashKind::PowerLoss {
                    self.written_upto = self.durable_upto;
                }
                if self.rng.random_bool(self.knobs.crash_in_recovery) && attempts < 5 {
                    self.fs.schedule_crash(self.rng.random_range(1..40));
                }
            }
            attempts += 1;
            // A disk that fails every few calls can fail every recovery of a large store:
            // past a few tries the operator recovers on a quiet disk (faults resume after).
            if attempts == RECOVERY_TRIES_NOISY {
                self.fs
                    .set_io_faults(IoFaultRates::default(), ChaCha8Rng::seed_from_u64(0));
            }
            if self
                .rng
                .random_bool((self.knobs.replay_rate * 10.0).min(1.0))
            {
                self.plant_replay();
            }
            match self.recover() {
                Ok(()) => {
                    if attempts >= RECOVERY_TRIES_NOISY {
                        let seed = self.rng.random_range(0..u64::MAX);
                        self.fs
                            .set_io_faults(self.knobs.io, ChaCha8Rng::seed_from_u64(seed));
                    }
                    break;
                }
                Err(StepError::Refused) => crash = None,
                Err(StepError::Crash) => {
                    self.summary.crashes_in_recovery += 1;
                    crash = Some(if self.rng.random_bool(self.knobs.power_loss_share) {
                        CrashKind::PowerLoss
                    } else {
                        CrashKind::Process
                    });
                }
                Err(StepError::Oracle(message)) => return Err(self.fail(message)),
            }
        }
        if self
            .rng
            .random_bool((self.knobs.crash_rate * 50.0).min(1.0))
        {
            self.fs.schedule_crash(self.rng.random_range(1..300));
        }
        Ok(())
    }

    /// Puts an applied log back into `reading/`, under its own or a later name.
    fn plant_replay(&mut self) {
        if self.retired_logs.is_empty() {
            return;
        }
        let i = self.rng.random_range(0..self.retired_logs.len());
        let (log, bytes) = self.retired_logs[i].clone();
        let name = if self.rng.random_bool(0.5) {
            log
        } else {
            LogId::at(log.ts() + self.rng.random_range(1..1_000_000_000u64))
        };
        if !self.fs.plant(&name.path(), &bytes) {
            return;
        }
        self.summary.replays += 1;
        self.note(format!("replay {name}"));
    }

    /// What a failed open or recovery means: corruption refused (planted, or an oracle
    /// failure), a crash or injected error, or an oracle failure.
    fn open_failed(&mut self, e: writelog::Error) -> StepError {
        match e {
            writelog::Error::Corrupt {
                path,
                offset,
                reason,
            } if !self.fs.crashed() => self.refused(&path, offset, reason),
            _ if self.fs.crashed() || self.fs.take_injected_error() => StepError::Crash,
            e => StepError::from(e),
        }
    }

    /// Runs the production recovery code and checks what it kept.
    fn recover(&mut self) -> Step<()> {
        let mode = self.knobs.recovery_mode;
        let open_mode = OpenMode {
            partitions: self.knobs.partitions,
            recovery: mode,
            writable: true,
        };
        let (keys, opened) = match KeyStore::open(&self.fs, open_mode) {
            Ok(opened) => opened,
            Err(e) => return Err(self.open_failed(e)),
        };
        let watermark = keys.watermark();
        let opened = format!(
            "key store opened: {} runs, cut {:?}, removed {:?}, damage {:?}",
            opened.runs, opened.cut, opened.removed, opened.damage
        );
        let recovered = match recovery::recover(&self.fs, Timestamp(self.now), watermark, mode) {
            Ok(recovered) => recovered,
            Err(e) => return Err(self.open_failed(e)),
        };
        self.note(opened);
        if self.trace_on {
            let runs = self.describe_runs();
            self.trace.push(format!("    runs: {runs:?}"));
        }
        // What survived is judged by the records found; new seqs start at `next_after`,
        // which may leave room for seqs that damage hides.
        let last_seq = recovered.last_kept_seq;
        let next_after = recovered.last_seq;
        self.note(format!(
            "recovered last_seq {last_seq} watermark {watermark} unapplied {} leftover {:?}",
            recovered.unapplied.len(),
            recovered.report.leftover
        ));
        // Oracle: nothing that had to survive is lost (seqs never handed out, which
        // recovery skips to leave room for what damage hides, are not records); no batch
        // is cut; new seqs never reuse one that may be in the key store.
        let must_keep = self.written_upto.max(self.durable_upto);
        let lost = must_keep > last_seq
            && self
                .history
                .range(last_seq + 1..=must_keep)
                .any(|(first, _)| !self.maybe_lost.contains(first));
        if lost {
            return Err(StepError::Oracle(format!(
                "acknowledged seqs up to {must_keep} had to survive, recovery found only up to {last_seq}",
            )));
        }
        if next_after < self.finished_upto {
            return Err(StepError::Oracle(format!(
                "seq {} reached a finished log, yet new seqs start at {}",
                self.finished_upto,
                next_after + 1
            )));
        }
        for (first, request) in &self.history {
            let last = first + request.records.len() as u64 - 1;
            if *first <= last_seq && last > last_seq && !self.maybe_lost.contains(first) {
                return Err(StepError::Oracle(format!(
                    "batch {first}..={last} cut at {last_seq}"
                )));
            }
        }
        // What survived is exactly the requests at or below last_seq.
        // (A batch the recovery mode may have dropped stays: it may have been applied.)
        let maybe_lost = &self.maybe_lost;
        self.history
            .retain(|first, _| *first <= last_seq || maybe_lost.contains(first));
        self.durable_upto = last_seq;
        self.written_upto = last_seq;
        self.finished_upto = self.finished_upto.max(last_seq);
        // The same constructor as `Store`, from options the knobs make.
        let machines = Machines::build(recovered, &keys, &self.options(), Timestamp(self.now));
        self.node = Some(Node {
            queue: SubmitQueue::new(next_after + 1, 1 << 20),
            writer: machines.writer,
            rotation: machines.rotation,
            dispatcher: machines.dispatcher,
            keys,
            committers: machines.committers,
            inbox: vec![VecDeque::new(); self.knobs.committers],
            index: machines.index,
            pacing: machines.pacing,
        });
        self.check_all_reads()
    }

    /// The store's options as this seed's knobs set them (what `Machines::build` takes).
    fn options(&self) -> Options {
        let k = &self.knobs;
        let (retain, retain_bytes) = (k.compaction.retain_records, k.compaction.retain_bytes);
        Options {
            committers: k.committers,
            partitions: k.partitions,
            recovery_mode: k.recovery_mode,
            rotate_interval_ms: k.rotate_interval_ms,
            rotate_bytes_max: k.rotate_bytes_max,
            log_prealloc_bytes: k.log_prealloc_bytes,
            segment_bytes_max: k.segment_bytes_max,
            // The committer's bound is this over the partitions.
            index_memory_max: k
                .index_delta_bytes_max
                .saturating_mul(u64::from(k.partitions)),
            compaction_min_bytes: k.compaction.min_bytes,
            compaction_space_percent: k.compaction.space_percent,
            retain_records: (retain != u64::MAX).then_some(retain),
            retain_bytes: (retain_bytes != u64::MAX).then_some(retain_bytes),
            commit_interval_ms: k.commit_interval_ms,
            backlog_logs_max: PACING_BACKLOG_LOGS,
            backlog_bytes_max: PACING_BACKLOG_BYTES,
            ..Options::default()
        }
    }

    /// The model's records for every key: the history applied in seq order.
    fn model(&self) -> BTreeMap<Vec<u8>, Vec<Record>> {
        let mut model: BTreeMap<Vec<u8>, Vec<Record>> = BTreeMap::new();
        for (first, request) in &self.history {
            for (i, record) in request.records.iter().enumerate() {
                let seq = first + i as u64;
                match record.kind {
                    Kind::Append => model.entry(record.key.clone()).or_default().push(Record {
                        seq: Seq(seq),
                        payload: record.payload.clone(),
                    }),
                    Kind::Delete => {
                        model.remove(&record.key);
                    }
                    Kind::Truncate => {
                        let floor = truncate_floor(seq, &record.payload).expect("submitted whole");
                        if let Some(records) = model.get_mut(&record.key) {
                            records.retain(|r| r.seq.0 >= floor);
                        }
                    }
                }
            }
        }
        model
    }

    /// Reads `key` as `Store::records` does: all of it (`Want::All`), the records after a
    /// seq up to a limit, or its last records (`Store::tail`).
    fn read_as(&mut self, key: &[u8], want: Want) -> Step<Vec<Record>> {
        let node = self.node.as_ref().ok_or(StepError::Crash)?;
        let pending = node.index.ops(key);
        let read = match want {
            Want::All => index::records(&self.fs, &node.keys, pending, key, 0, usize::MAX),
            Want::After(after, limit) => {
                index::records(&self.fs, &node.keys, pending, key, after, limit)
            }
            Want::Last(count) => index::tail(&self.fs, &node.keys, pending, key, count),
        };
        match read {
            Ok(records) => Ok(records),
            Err(_) if self.is_fault() => Err(StepError::Crash),
            // Damage a `Strict` read must refuse: planted, or an oracle failure.
            Err(writelog::Error::Corrupt {
                path,
                offset,
                reason,
            }) => Err(self.refused(&path, offset, reason)),
            Err(e) => Err(StepError::from(e)),
        }
    }

    fn read(&mut self, key: &[u8]) -> Step<Vec<Record>> {
        self.read_as(key, Want::All)
    }

    /// With nothing the recovery mode may have dropped, the windowed reads agree with the
    /// whole one: the last one and three records, and two records after the middle one.
    fn check_windows(&mut self, key: &[u8], want: &[Record]) -> Step<()> {
        for count in [1, 3] {
            let got = self.read_as(key, Want::Last(count))?;
            let expected = &want[want.len().saturating_sub(count)..];
            if got != expected {
                return Err(StepError::Oracle(format!(
                    "key {:?}: tail({count}) read {:?}, the model says {:?}",
                    String::from_utf8_lossy(key),
                    got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                    expected.iter().map(|r| r.seq).collect::<Vec<_>>()
                )));
            }
        }
        if let Some(middle) = want.get(want.len() / 2) {
            let got = self.read_as(key, Want::After(middle.seq.0, 2))?;
            let from = want.len() / 2 + 1;
            let expected = &want[from..(from + 2).min(want.len())];
            if got != expected {
                return Err(StepError::Oracle(format!(
                    "key {:?}: records(after {}, 2) read {:?}, the model says {:?}",
                    String::from_utf8_lossy(key),
                    middle.seq,
                    got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                    expected.iter().map(|r| r.seq).collect::<Vec<_>>()
                )));
            }
        }
        Ok(())
    }

    /// Every key reads exactly as the model says.
    fn check_all_reads(&mut self) -> Step<()> {
        let model = self.model();
        for key in self.keys_used.clone() {
            self.check_against(&key, &model)?;
        }
        Ok(())
    }

    /// Reads `key` and compares it with what `model` holds for it.
    fn check_against(&mut self, key: &[u8], model: &BTreeMap<Vec<u8>, Vec<Record>>) -> Step<()> {
        let got = match self.read(key) {
            Ok(got) => got,
            // The read failed with an injected error: an error loses nothing.
            Err(StepError::Crash) if !self.fs.crashed() => {
                self.summary.reads_failed += 1;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let want = model.get(key).map(Vec::as_slice).unwrap_or_default();
        self.summary.checks += 1;
        let explained = (!self.maybe_lost.is_empty() && self.possible_read(key, &got))
            || self.retained_suffix(&got, want);
        if got != want && !explained {
            let history: Vec<String> = self
                .history
                .iter()
                .flat_map(|(first, request)| {
                    request
                        .records
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.key == key)
                        .map(move |(i, r)| (first + i as u64, r.kind))
                })
                .map(|(seq, kind)| {
                    let maybe = if self.maybe_lost.contains(&seq) {
                        "?"
                    } else {
                        ""
                    };
                    let kind = match kind {
                        Kind::Append => "",
                        Kind::Delete => "del",
                        Kind::Truncate => "trunc",
                    };
                    format!("{kind}{seq}{maybe}")
                })
                .collect();
            let pending: Vec<u64> = self
                .node
                .as_ref()
                .map(|n| n.index.ops(key).iter().map(|op| op.seq).collect())
                .unwrap_or_default();
            let file = self
                .node
                .as_ref()
                .and_then(|n| n.keys.entry(&self.fs, key).ok().flatten());
            return Err(StepError::Oracle(format!(
                "key {:?}: read {:?}, the model says {:?} (its history, ? where the recovery \
                 mode may drop: {}; key store entry {file:?}, pending {pending:?})",
                String::from_utf8_lossy(key),
                got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                want.iter().map(|r| r.seq).collect::<Vec<_>>(),
                history.join(" ")
            )));
        }
        if got == want || self.retained_suffix(&got, want) {
            match self.check_windows(key, &got) {
                Err(StepError::Crash) if !self.fs.crashed() => self.summary.reads_failed += 1,
                other => other?,
            }
        }
        Ok(())
    }

    /// Under retention: whether `got` is what compactions may have left of `want`: its
    /// newest records, at least as many as retention keeps of `want` now (what a
    /// compaction kept then holds at least that: later records only take from it).
    fn retained_suffix(&self, got: &[Record], want: &[Record]) -> bool {
        let policy = &self.knobs.compaction;
        let (records, bytes) = (policy.retain_records, policy.retain_bytes);
        if records == u64::MAX && bytes == u64::MAX {
            return false;
        }
        // Worked out here, not by the machine's own `Retained::kept`: the model's.
        let mut payload_bytes = 0u64;
        let fit = want
            .iter()
            .rev()
            .take_while(|r| {
                payload_bytes += r.payload.len() as u64;
                payload_bytes <= bytes
            })
            .count();
        let guaranteed = (want.len() as u64).min(records).min(fit.max(1) as u64);
        want.ends_with(got) && got.len() as u64 >= guaranteed
    }

    /// With records the recovery mode may have dropped: whether `got` is what `key`'s
    /// history leaves for some choice of which of them were dropped. Each candidate for
    /// the floor that took effect (0, or the floor a delete or truncate sets; floors only
    /// rise) is tried: every delete or truncate not in `maybe_lost` must lie at or under
    /// it, and above it every append not in `maybe_lost` must be read, in order, and
    /// nothing else.
    fn possible_read(&self, key: &[u8], got: &[Record]) -> bool {
        struct Op<'a> {
            seq: u64,
            /// The floor a delete or truncate sets; `None` for an append.
            floor: Option<u64>,
            payload: &'a [u8],
            maybe: bool,
        }
        let mut ops = Vec::new();
        for (first, request) in &self.history {
            for (i, record) in request.records.iter().enumerate() {
                if record.key == key {
                    let seq = first + i as u64;
                    let floor = match record.kind {
                        Kind::Append => None,
                        Kind::Delete => Some(seq + 1),
                        Kind::Truncate => truncate_floor(seq, &record.payload),
                    };
                    ops.push(Op {
                        seq,
                        floor,
                        payload: &record.payload,
                        maybe: self.maybe_lost.contains(&seq),
                    });
                }
            }
        }
        let floors = std::iter::once(0).chain(ops.iter().filter_map(|op| op.floor));
        'candidate: for cut in floors {
            if ops
                .iter()
                .any(|op| !op.maybe && op.floor.is_some_and(|floor| floor > cut))
            {
                continue;
            }
            let mut read = got.iter().peekable();
            for op in ops.iter().filter(|op| op.floor.is_none() && op.seq >= cut) {
                match read.peek() {
                    Some(record) if record.seq.0 == op.seq => {
                        if record.payload != op.payload {
                            continue 'candidate;
                        }
                        read.next();
                    }
                    _ if op.maybe => {}
                    _ => continue 'candidate,
                }
            }
            if read.next().is_none() {
                return true;
            }
        }
        false
    }

    /// The store refused the corruption at `path` (`offset`): right only if one was
    /// planted there. The operator then puts the pristine log back.
    fn refused(&mut self, path: &Path, offset: u64, reason: BadReason) -> StepError {
        if let Some(i) = self.key_damage.iter().position(|d| d.path == path) {
            let damage = self.key_damage.remove(i);
            damage.repair(&self.fs);
            self.summary.refusals += 1;
            self.note(format!(
                "refused key-store damage in {} at {offset}: repaired",
                path.display()
            ));
            return StepError::Refused;
        }
        let Some(i) = self.corruptions.iter().position(|c| c.path == path) else {
            return StepError::Oracle(format!(
                "the store refused {} at offset {offset} ({reason}), where no corruption was planted",
                path.display()
            ));
        };
        let corruption = self.corruptions.remove(i);
        self.fs.replace(&corruption.path, &corruption.pristine);
        self.summary.refusals += 1;
        self.note(format!(
            "refused corruption in {} at {offset}: repaired",
            path.display()
        ));
        StepError::Refused
    }

    /// A fault of the medium in a finished log: a flipped bit, or (`stale`) a copy of an
    /// applied log's block spliced in at a block boundary, its checksum intact. Under
    /// `PointInTime` and `SkipCorrupt` the seqs the mode may drop join `maybe_lost`.
    fn plant_corruption(&mut self, stale: bool) {
        let logs: Vec<(PathBuf, Vec<u8>)> = self
            .fs
            .files()
            .into_iter()
            .filter(|(path, _)| {
                path.parent() == Some(Path::new(READING_DIR))
                    && path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(LogId::parse)
                        .is_some()
            })
            .collect();
        if logs.is_empty() {
            return;
        }
        let (path, bytes) = logs[self.rng.random_range(0..logs.len())].clone();
        if self.corruptions.iter().any(|c| c.path == path) {
            return;
        }
        // The batches as (offset, end, seqs, block offsets); only pristine logs are hit.
        let Ok(batches) = LogDecoder::new(&bytes, DecodeLimits::default())
            .map(|item| {
                item.map(|batch| {
                    let mut at = batch.offset as usize;
                    let mut starts = Vec::new();
                    for block in &batch.blocks {
                        starts.push(at);
                        at += block_len(block.key.len(), block.payload.len());
                    }
                    let seqs: Vec<u64> = batch.blocks.iter().map(|b| b.seq).collect();
                    (batch.offset as usize, batch.end as usize, seqs, starts)
                })
            })
            .collect::<Result<Vec<_>, _>>()
        else {
            return;
        };
        if batches.is_empty() {
            return;
        }
        // `hit`: the batch the fault breaks (None: it falls between batches);
        // `from`: the first batch `PointInTime` may stop at.
        let (hit, from) = if stale {
            let Some(block) = self.stale_block() else {
                return;
            };
            let boundaries: Vec<usize> = batches
                .iter()
                .flat_map(|b| b.3.iter().copied())
                .chain(std::iter::once(batches[batches.len() - 1].1))
                .collect();
            let at = boundaries[self.rng.random_range(0..boundaries.len())];
            let mut spliced = bytes[..at].to_vec();
            spliced.extend_from_slice(&block);
            spliced.extend_from_slice(&bytes[at..]);
            if !self.fs.replace(&path, &spliced) {
                return;
            }
            self.summary.stale_blocks += 1;
            self.note(format!("stale block into {} at {at}", path.display()));
            let hit = batches.iter().position(|b| b.0 < at && at < b.1);
            let from = batches.iter().position(|b| b.0 >= at || b.1 > at);
            (hit, from)
        } else {
            let offset = self.rng.random_range(LOG_HEADER_LEN..bytes.len());
            let flipped = bytes[offset] ^ (1 << self.rng.random_range(0..8u32));
            if self.fs.rot(&path, offset, &[flipped]).is_none() {
                return;
            }
            self.summary.bit_rots += 1;
            self.note(format!("bit rot in {} at {offset}", path.display()));
            let hit = batches.iter().position(|b| b.0 <= offset && offset < b.1);
            (hit, hit)
        };
        let dropped: Vec<u64> = match self.knobs.recovery_mode {
            RecoveryMode::Strict => Vec::new(),
            RecoveryMode::SkipCorrupt => hit.map(|i| batches[i].2.clone()).unwrap_or_default(),
            RecoveryMode::PointInTime => from
                .map(|i| batches[i..].iter().flat_map(|b| b.2.clone()).collect())
                .unwrap_or_default(),
        };
        self.maybe_lost.extend(dropped);
        self.corruptions.push(Corruption {
            path,
            pristine: bytes,
        });
    }

    /// One intact block of a retired log, bytes and all.
    fn stale_block(&mut self) -> Option<Vec<u8>> {
        if self.retired_logs.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..self.retired_logs.len());
        let bytes = &self.retired_logs[i].1;
        let mut blocks = Vec::new();
        for batch in LogDecoder::new(bytes, DecodeLimits::default()).flatten() {
            let mut at = batch.offset as usize;
            for block in &batch.blocks {
                let len = block_len(block.key.len(), block.payload.len());
                blocks.push(bytes.get(at..at + len)?.to_vec());
                at += len;
            }
        }
        if blocks.is_empty() {
            return None;
        }
        let pick = self.rng.random_range(0..blocks.len());
        Some(blocks.swap_remove(pick))
    }

    /// A fault of the medium in the key store: a flipped bit in the durable bytes of a
    /// segment or the MANIFEST, or (`stale`) a segment's run overwritten by an earlier run
    /// of that segment. Under `Strict` a read or open that meets it must refuse; under the
    /// lenient modes every record of the partition's keys may be lost (a damaged run
    /// index hides the runs after it; a damaged group header, the key's older groups).
    fn plant_key_damage(&mut self, stale: bool) {
        let manifest = Path::new(writelog::keystore::manifest::MANIFEST_FILE);
        // What the MANIFEST names, and how far: only that can be corruption (bytes past a
        // segment's durable length are crash damage, cut and written again on open).
        let Some(named) = self
            .fs
            .peek(manifest)
            .and_then(|bytes| writelog::keystore::manifest::decode(&bytes).ok())
        else {
            return;
        };
        let mut recorded: BTreeMap<PathBuf, usize> = named
            .segments
            .iter()
            .map(|s| {
                (
                    writelog::keystore::segment_path(s.partition, s.segment),
                    s.durable_len as usize,
                )
            })
            .collect();
        if !stale {
            recorded.insert(manifest.to_path_buf(), usize::MAX);
            for c in &named.checkpoints {
                recorded.insert(
                    writelog::keystore::checkpoint::checkpoint_path(c.partition, c.number),
                    usize::MAX,
                );
            }
        }
        let files: Vec<(PathBuf, Vec<u8>)> = self
            .fs
            .files()
            .into_iter()
            .filter_map(|(path, mut bytes)| {
                bytes.truncate(*recorded.get(&path)?);
                Some((path, bytes))
            })
            .filter(|(path, bytes)| {
                !bytes.is_empty() && !self.key_damage.iter().any(|d| &d.path == path)
            })
            .collect();
        if files.is_empty() {
            return;
        }
        let (path, bytes) = files[self.rng.random_range(0..files.len())].clone();
        let (offset, planted) = if stale {
            let runs = segment_runs(&bytes);
            if runs.len() < 2 {
                return;
            }
            let later = self.rng.random_range(1..runs.len());
            let earlier = self.rng.random_range(0..later);
            let (from, len) = runs[earlier];
            let at = runs[later].0;
            let fits = len.min(bytes.len() - at);
            (at, bytes[from..from + fits].to_vec())
        } else {
            let offset = self.rng.random_range(0..bytes.len());
            (
                offset,
                vec![bytes[offset] ^ (1 << self.rng.random_range(0..8u32))],
            )
        };
        let Some(original) = self.fs.rot(&path, offset, &planted) else {
            return;
        };
        if stale {
            self.summary.stale_blocks += 1;
        } else {
            self.summary.bit_rots += 1;
        }
        self.note(format!(
            "key-store damage in {} at {offset} (stale {stale})",
            path.display()
        ));
        if self.knobs.recovery_mode != RecoveryMode::Strict && path != manifest {
            let partition = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix('p'))
                .and_then(|n| n.parse::<u32>().ok());
            let partitions = self.knobs.partitions;
            // Only records that reached a finished log can be in the key store.
            let finished_upto = self.finished_upto;
            let hit: Vec<u64> = self
                .history
                .iter()
                .filter(|(first, request)| {
                    **first + request.records.len() as u64 - 1 <= finished_upto
                })
                .flat_map(|(first, request)| {
                    request
                        .records
                        .iter()
                        .enumerate()
                        .filter_map(move |(i, r)| {
                            (Some(writelog::keystore::partition_for(&r.key, partitions))
                                == partition)
                                .then_some(first + i as u64)
                        })
                })
                .collect();
            self.maybe_lost.extend(hit);
        }
        let replaced_whole = path.extension().is_none_or(|e| e != "dat");
        let whole = replaced_whole.then(|| self.fs.peek(&path)).flatten();
        self.key_damage.push(KeyDamage {
            path,
            offset,
            original,
            planted,
            whole,
        });
    }

    /// The runs of every segment, as (path, offset, first seq, last seq), for traces.
    fn describe_runs(&self) -> Vec<String> {
        use writelog::keystore::segment::decode_run_header;
        let mut out = Vec::new();
        for (path, bytes) in self.fs.files() {
            if path.extension().is_some_and(|e| e == "dat") {
                for (at, len) in segment_runs(&bytes) {
                    if let Ok(run) = decode_run_header(&bytes[at..], len as u64) {
                        out.push(format!(
                            "{}@{at}:{}..={}",
                            path.display(),
                            run.first_seq,
                            run.last_seq
                        ));
                    }
                }
            }
        }
        out
    }

    fn one_step(&mut self) -> Step<()> {
        if self.knobs.key_rot_rate > 0.0 && self.rng.random_bool(self.knobs.key_rot_rate) {
            self.plant_key_damage(false);
        }
        if self.knobs.stale_run_rate > 0.0 && self.rng.random_bool(self.knobs.stale_run_rate) {
            self.plant_key_damage(true);
        }
        if self.knobs.bit_rot_rate > 0.0 && self.rng.random_bool(self.knobs.bit_rot_rate) {
            self.plant_corruption(false);
        }
        if self.knobs.stale_block_rate > 0.0 && self.rng.random_bool(self.knobs.stale_block_rate) {
            self.plant_corruption(true);
        }
        self.now += self.rng.random_range(0..3_000);
        if self.rng.random_bool(self.knobs.clock_jump_rate) {
            self.now += self.rng.random_range(1_000_000..3_600_000_000u64);
            self.summary.clock_jumps_ahead += 1;
            self.note(format!("clock ahead to {}", self.now));
        }
        if self.rng.random_bool(self.knobs.clock_back_rate) {
            self.now -= self.rng.random_range(0..500_000u64).min(self.now - 1);
            self.summary.clock_steps_back += 1;
            self.note(format!("clock back to {}", self.now));
        }
        if self.rng.random_bool(self.knobs.crash_rate) && !self.fs.crashed() {
            self.fs.schedule_crash(self.rng.random_range(1..20));
        }
        match self.rng.random_range(0..100u32) {
            0..2 => self.submit_sync_barrier(),
            2..40 => self.submit(),
            40..60 => self.writer_pass(),
            60..68 => self.rotate(false),
            68..78 => self.dispatch(),
            78..90 => self.commit(),
            90..95 => self.retire(),
            _ => self.check_one_read(),
        }
    }

    /// Whether an error came from an injected fault: a crash, or an EIO (which poisons
    /// the store: the user closes and reopens it, a restart without power loss).
    fn is_fault(&self) -> bool {
        self.fs.crashed() || self.fs.take_injected_error()
    }

    fn node(&mut self) -> Step<&mut Node> {
        self.node.as_mut().ok_or(StepError::Crash)
    }

    fn crash_or<T>(&self, result: writelog::Result<T>) -> Step<T> {
        result.map_err(|e| {
            if self.is_fault() {
                StepError::Crash
            } else {
                StepError::from(e)
            }
        })
    }

    fn submit(&mut self) -> Step<()> {
        let keys = self.knobs.keys;
        let key = |rng: &mut ChaCha8Rng| format!("k{}", rng.random_range(0..keys)).into_bytes();
        let payload = |rng: &mut ChaCha8Rng, big: bool| {
            let len = if big && rng.random_bool(0.1) {
                rng.random_range(1000..5000)
            } else {
                rng.random_range(0..40)
            };
            (0..len)
                .map(|_| rng.random_range(0..=255u32) as u8)
                .collect::<Vec<u8>>()
        };
        let big = self.knobs.big_payloads;
        let next_seq = self.node()?.queue.next_seq();
        let records: Vec<LogRecord> = match self.rng.random_range(0..10u32) {
            0 if self.rng.random_bool(0.5) => vec![LogRecord {
                kind: Kind::Delete,
                key: key(&mut self.rng),
                payload: Vec::new(),
            }],
            // Keep from a recent seq, now and then one past the key's newest record.
            0 => vec![LogRecord {
                kind: Kind::Truncate,
                key: key(&mut self.rng),
                payload: writelog::format::truncate_payload(
                    next_seq.saturating_sub(self.rng.random_range(0..40)) + 2,
                ),
            }],
            1..3 => (0..self.rng.random_range(2..5))
                .map(|_| LogRecord {
                    kind: Kind::Append,
                    key: key(&mut self.rng),
                    payload: payload(&mut self.rng, big),
                })
                .collect(),
            _ => vec![LogRecord {
                kind: Kind::Append,
                key: key(&mut self.rng),
                payload: payload(&mut self.rng, big),
            }],
        };
        let durability =
            [Durability::Sync, Durability::Buffered, Durability::None][self.rng.random_range(0..3)];
        self.submit_records(records, durability)
    }

    /// Queues one request, enters it in the pending index and the model.
    fn submit_records(&mut self, records: Vec<LogRecord>, durability: Durability) -> Step<()> {
        for record in &records {
            self.keys_used.insert(record.key.clone());
        }
        let node = self.node()?;
        let encoded: usize = records.iter().map(LogRecord::encoded_len).sum();
        if !node.queue.has_room(encoded) {
            return Ok(());
        }
        let first = node.queue.next_seq();
        for (i, record) in records.iter().enumerate() {
            node.index
                .insert(first + i as u64, record.kind, &record.key, &record.payload);
        }
        let range = node.queue.push(records.clone(), durability, first);
        self.history.insert(
            range.first,
            Submitted {
                records,
                acked: durability == Durability::None,
            },
        );
        self.summary.submitted += 1;
        self.note(format!(
            "submit {}..={} {durability:?}",
            range.first, range.last
        ));
        Ok(())
    }

    /// Queues a sync barrier (`Store::sync`): once its pass is done, every seq queued
    /// before it must survive a power loss, whatever durability it asked for.
    fn submit_sync_barrier(&mut self) -> Step<()> {
        let node = self.node()?;
        let covers = node.queue.push_sync_barrier(BARRIER_TOKEN);
        self.note(format!("sync barrier covering up to {covers}"));
        Ok(())
    }

    fn writer_pass(&mut self) -> Step<()> {
        let node = self.node()?;
        let pass: Vec<Request<u64>> = node.queue.take_pass(64 << 10);
        if pass.is_empty() {
            return Ok(());
        }
        let outcome = match node.writer.write_pass(&pass) {
            Ok(outcome) => outcome,
            Err(poisoned) => return Err(self.poisoned_step("a writer pass", &poisoned.0)),
        };
        for request in &pass {
            if let Some(submitted) = self.history.get_mut(&request.token) {
                submitted.acked = true;
            }
            // Oracle input: each request, once its pass is done, is as durable as it
            // asked (a barrier covers every seq before it), whatever the pass reports.
            let last = request.first_seq + request.records.len() as u64 - 1;
            match request.durability {
                Durability::Sync => self.durable_upto = self.durable_upto.max(last),
                Durability::Buffered => self.written_upto = self.written_upto.max(last),
                Durability::None => {}
            }
        }
        self.written_upto = self.written_upto.max(outcome.last_seq);
        if outcome.synced {
            self.durable_upto = self.durable_upto.max(outcome.last_seq);
        }
        self.note(format!(
            "pass upto {} synced {}",
            outcome.last_seq, outcome.synced
        ));
        if self.trace_on {
            let described = self.fs.describe(Path::new(writelog::machine::WRITING_LOG));
            self.trace.push(format!("    {described}"));
        }
        Ok(())
    }

    /// The writer poisoned itself during `what`: a restart after an injected fault or a
    /// crash, an oracle failure otherwise.
    fn poisoned_step(&self, what: &str, why: &writelog::Failure) -> StepError {
        if self.is_fault() {
            StepError::Crash
        } else {
            StepError::Oracle(format!("{what} poisoned the writer without a fault: {why}"))
        }
    }

    fn rotate(&mut self, force: bool) -> Step<()> {
        let now = Timestamp(self.now);
        let fs = self.fs.clone();
        let node = self.node()?;
        if !force && !node.rotation.is_due(now, node.writer.log()) {
            return Ok(());
        }
        let rotated = match node.rotation.rotate(&fs, &mut node.writer, now) {
            Ok(rotated) => rotated,
            Err(poisoned) => return Err(self.poisoned_step("a rotation", &poisoned.0)),
        };
        let last = node.writer.last_seq();
        if let Rotated::Finished { log: name, .. } = rotated {
            node.dispatcher.expect(name, last);
            self.durable_upto = self.durable_upto.max(last);
            self.finished_upto = self.finished_upto.max(last);
            self.note(format!("rotated {name}"));
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Step<()> {
        let names = self.crash_or(self.fs.list(Path::new(READING_DIR)).map_err(io_error))?;
        let logs = LogId::all_in(&names);
        let fs = self.fs.clone();
        let now = Timestamp(self.now);
        let node = self.node()?;
        let Some(name) = node.dispatcher.next_log(&logs) else {
            return Ok(());
        };
        // The pacing machine decides, as in the runtime: a hand-out starts only when due
        // (it covers every log waiting, which the steps that follow dispatch one by one).
        if node.dispatcher.in_flight() == 0 {
            let waiting = logs.len() as u64;
            let backlog = Backlog {
                watermark: node.dispatcher.watermark(),
                logs_not_handed_out: waiting,
                pending_bytes: node.index.bytes() as u64,
            };
            if !node.pacing.is_due(now, &backlog) {
                return Ok(());
            }
            node.pacing.handed_out(now);
        }
        let bytes = match fs.read(&name.path()) {
            Ok(bytes) => bytes,
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            Err(e) => return Err(StepError::Oracle(format!("reading {name}: {e}"))),
        };
        let dispatched = match node.dispatcher.dispatch(name, &bytes) {
            Ok(dispatched) => dispatched,
            Err(writelog::Error::Corrupt {
                path,
                offset,
                reason,
            }) => return Err(self.refused(&path, offset, reason)),
            Err(e) => return Err(e.into()),
        };
        for (committer, work) in dispatched.work {
            node.inbox[committer].push_back(work);
        }
        self.note(format!(
            "dispatched {name} routed {} dups {}",
            dispatched.routed, dispatched.duplicates
        ));
        Ok(())
    }

    fn commit(&mut self) -> Step<()> {
        let pick = self.rng.random_range(0..self.knobs.committers);
        self.commit_one(pick)
    }

    /// Committer `id` takes everything in its inbox in one pass.
    fn commit_one(&mut self, id: usize) -> Step<()> {
        let fs = self.fs.clone();
        let node = self.node()?;
        if node.inbox[id].is_empty() {
            return Ok(());
        }
        let work: Vec<CommitWork> = node.inbox[id].drain(..).collect();
        let outcome = match node.committers[id].commit(&fs, &node.keys, &work) {
            Ok(outcome) => outcome,
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            // A lookup or a checkpoint merge that met damage `Strict` must refuse.
            Err(writelog::Error::Corrupt {
                path,
                offset,
                reason,
            }) => return Err(self.refused(&path, offset, reason)),
            Err(e) => return Err(StepError::from(e)),
        };
        for &log in &outcome.logs_done {
            node.dispatcher.handle_committed(id, log);
        }
        self.summary.checkpoints += outcome.checkpoints;
        self.note(format!(
            "committer {id} applied {} skipped {} checkpoints {}",
            outcome.applied, outcome.skipped, outcome.checkpoints
        ));
        self.compact_if_due(id)
    }

    /// After a pass, as the runtime does when a committer is idle: compacts the partition
    /// of committer `id`'s that its policy says is due, if any.
    fn compact_if_due(&mut self, id: usize) -> Step<()> {
        let fs = self.fs.clone();
        let policy = self.knobs.compaction;
        let node = self.node()?;
        // Busy when the committer's inbox holds more work (as the runtime sees it).
        let busy = !node.inbox[id].is_empty();
        let due = node.committers[id].partition_due(&node.keys, &policy, busy);
        let outcome = match node.committers[id].compact_due(&fs, &node.keys, busy) {
            Ok(outcome) => outcome,
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            Err(e) => return Err(StepError::from(e)),
        };
        match (due, outcome) {
            (Some(partition), Some(done)) => {
                assert_eq!(partition, done.partition, "the partition due is compacted");
                self.summary.compactions += 1;
                self.summary.retained_out += done.retained_out;
                self.note(format!(
                    "committer {id} compacted partition {partition}: {} -> {} bytes, {} keys, {} records",
                    done.bytes_before, done.bytes_after, done.keys, done.records
                ));
            }
            (Some(partition), None) => self.note(format!(
                "committer {id} left partition {partition} uncompacted: damage"
            )),
            (None, outcome) => assert!(outcome.is_none(), "nothing due, nothing compacted"),
        }
        Ok(())
    }

    fn retire(&mut self) -> Step<()> {
        let fs = self.fs.clone();
        let Some(finished) = self.node()?.dispatcher.take_finished() else {
            return Ok(());
        };
        // Copies for later replays, taken behind the store's back (no fs call counted).
        let mut copies = Vec::new();
        for &log in &finished.logs {
            let path = log.path();
            let pristine = self.corruptions.iter().find(|c| c.path == path);
            if let Some(corruption) = pristine {
                copies.push((log, corruption.pristine.clone()));
            } else if let Some(bytes) = fs.peek(&path) {
                copies.push((log, bytes));
            }
        }
        let node = self.node()?;
        match node.dispatcher.finish(&fs, &node.keys, &finished) {
            Ok(()) => {}
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            Err(e) => return Err(StepError::from(e)),
        }
        node.index.trim(finished.watermark);
        let retired: BTreeSet<PathBuf> = finished.logs.iter().map(|l| l.path()).collect();
        self.corruptions.retain(|c| !retired.contains(&c.path));
        self.retired_logs.extend(copies);
        let names: Vec<String> = finished.logs.iter().map(|l| l.file_name()).collect();
        self.note(format!(
            "retired {names:?} watermark {}",
            finished.watermark
        ));
        Ok(())
    }

    fn check_one_read(&mut self) -> Step<()> {
        let pick = self.rng.random_range(0..self.keys_used.len().max(1));
        match self.keys_used.iter().nth(pick).cloned() {
            Some(key) => self.check_key(key),
            None => Ok(()),
        }
    }

    /// Reads `key` and checks it against the model.
    fn check_key(&mut self, key: Vec<u8>) -> Step<()> {
        let model = self.model();
        self.check_against(&key, &model)
    }

    /// Faults off: write everything, rotate, apply and retire every log, then check that
    /// everything drained and that the key store alone equals the model.
    fn drain(&mut self) -> Step<()> {
        self.fs.schedule_crash(u64::MAX / 2);
        // A flush: hand-outs are due until everything is applied.
        let node = self.node()?;
        let watermark = node.dispatcher.watermark();
        node.pacing.hurry(u64::MAX, watermark);
        self.fs
            .set_io_faults(IoFaultRates::default(), ChaCha8Rng::seed_from_u64(0));
        // Under `Strict`, a corruption not yet met would stop the drain: the operator
        // repairs it first (the refusals met during the run were checked already).
        if self.knobs.recovery_mode == RecoveryMode::Strict {
            for corruption in std::mem::take(&mut self.corruptions) {
                self.fs.replace(&corruption.path, &corruption.pristine);
            }
            for damage in std::mem::take(&mut self.key_damage) {
                damage.repair(&self.fs);
            }
        }
        for _ in 0..10_000 {
            let node = self.node()?;
            if node.queue.is_empty() {
                break;
            }
            self.writer_pass()?;
        }
        self.rotate(true)?;
        for _ in 0..10_000 {
            self.dispatch()?;
            for committer in 0..self.knobs.committers {
                self.commit_one(committer)?;
            }
            self.retire()?;
            let names = self.crash_or(self.fs.list(Path::new(READING_DIR)).map_err(io_error))?;
            let node = self.node()?;
            if node.dispatcher.in_flight() == 0 && LogId::all_in(&names).is_empty() {
                break;
            }
        }
        // Liveness: every log drained and removed; one writing/tx.log; nothing pending.
        let reading = self.crash_or(self.fs.list(Path::new(READING_DIR)).map_err(io_error))?;
        if !LogId::all_in(&reading).is_empty() {
            return Err(StepError::Oracle(format!(
                "logs left in reading/ after the drain: {reading:?}"
            )));
        }
        let writing = self.crash_or(self.fs.list(Path::new(WRITING_DIR)).map_err(io_error))?;
        if writing != ["tx.log"] {
            return Err(StepError::Oracle(format!(
                "writing/ holds {writing:?}, not one tx.log"
            )));
        }
        let node = self.node()?;
        if !node.index.is_empty() {
            return Err(StepError::Oracle(format!(
                "{} records still pending after the drain",
                node.index.len()
            )));
        }
        self.check_all_reads()?;
        let model = self.model();
        let listed = self.crash_or(
            self.node
                .as_ref()
                .ok_or(StepError::Crash)?
                .keys
                .keys(&self.fs),
        )?;
        let expected: Vec<Vec<u8>> = model
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        self.summary.checks += 1;
        let possible = |key: &Vec<u8>| self.keys_used.contains(key);
        let explained = !self.maybe_lost.is_empty() && listed.iter().all(possible);
        if listed != expected && !explained {
            return Err(StepError::Oracle(format!(
                "the key store lists {} keys, the model {}",
                listed.len(),
                expected.len()
            )));
        }
        self.note("drained".into());
        self.close_and_reopen()
    }

    /// A clean close as the runtime makes it (each committer checkpoints its partitions'
    /// index, then a MANIFEST names the checkpoints), a reopen, and every read again.
    fn close_and_reopen(&mut self) -> Step<()> {
        let fs = self.fs.clone();
        let node = self.node()?;
        for committer in &mut node.committers {
            committer.checkpoint_all(&fs, &node.keys)?;
        }
        let watermark = node.keys.watermark();
        node.keys.write_manifest(&fs, watermark)?;
        self.node = None;
        self.note("closed".into());
        self.recover()
    }
}

/// The runs of a segment's bytes, as (offset, length), up to the first that does not
/// decode.
fn segment_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
    use writelog::keystore::segment::{decode_run_header, SEGMENT_HEADER_LEN};
    let mut runs = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        let Ok(run) = decode_run_header(&bytes[at..], (bytes.len() - at) as u64) else {
            break;
        };
        runs.push((at, run.run_len as usize));
        at += run.run_len as usize;
    }
    runs
}

fn io_error(e: std::io::Error) -> writelog::Error {
    writelog::Error::Io {
        action: "simulating",
        path: ".".into(),
        source: e,
    }
}
