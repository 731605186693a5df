//! One seeded run: the store's machines driven from one thread over [`SimFs`], a workload,
//! crashes, and the oracle.
//!
//! Everything is derived from the seed through one ChaCha8 stream: the options, the fault
//! mix (swarm testing: each seed turns some faults on, at its own rates), the workload and
//! the schedule. Nothing else (no clock, no hash order, no thread) reaches the run, so a
//! seed's trace digest is the same on every run.
//!
//! Laid out by concern (after TigerBeetle's `src/testing/`): this module holds the world
//! and its run loop; `knobs` what a seed picks, `workload` the requests, `script` the
//! scripted runs, `faults` every fault and the restart after it, `oracle` the model and
//! its checks, and `steps` the machines' steps as the runtime would drive them.

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
use writelog::machine::dispatch::{Dispatcher, IndexTrim};
use writelog::machine::pacing::{Backlog, CommitPacing};
use writelog::machine::recovery;
use writelog::machine::rotation::{Rotated, Rotation};
use writelog::machine::seq_lease;
use writelog::machine::submit_queue::{
    Admission, BacklogBounds, BacklogLoad, Held, LogRecord, Request, SubmitQueue,
};
use writelog::machine::writer::Writer;
use writelog::machine::{LogId, READING_DIR, WRITING_DIR};
use writelog::Seq;
use writelog::{Durability, Options, RecoveryMode};

mod checks;
mod commit_side;
mod faults;
mod knobs;
mod oracle;
mod script;
mod steps;
mod workload;

use faults::{Corruption, KeyDamage};
use knobs::{Knobs, NO_COMPACTION};
pub use script::ScriptOp;
use steps::Node;
use workload::Submitted;

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
    /// Flushes that had something to wait for.
    pub flushes: u64,
    /// Requests held because the pending memory was full (each asks for a rotation).
    pub backlogged: u64,
    /// The trace digest: the same for the same seed on every run.
    pub digest: u64,
}

/// The model of the active log, for the rotation policy.
#[derive(Clone, Copy, Debug)]
struct LogModel {
    /// When it was opened, on the simulated clock.
    opened_at: u64,
    /// Records written to it.
    records: u64,
    /// Its bytes: the header and the blocks (not the zeros written ahead).
    bytes: u64,
}

impl LogModel {
    /// A fresh log, opened at `now`.
    fn opened_at(now: u64) -> Self {
        LogModel {
            opened_at: now,
            records: 0,
            bytes: LOG_HEADER_LEN as u64,
        }
    }
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
    /// The highest seq the queue ever handed out, whether its record survived or not:
    /// new seqs must always start above it (the seq lease), so a seq names one record.
    handed_upto: u64,
    /// The last seq a request turned away for want of lease needs (0: none): the writer's
    /// next step must lease it.
    lease_demand: u64,
    /// Seqs handed out since the writer's last look at the lease.
    handed_since_lease_step: u64,
    /// The model's last seq holding a record (of a request queued, or kept by recovery):
    /// what a flush waits for.
    last_record_seq: u64,
    /// The seq a flush in progress waits for to be applied (0: none).
    flush_waits: u64,
    /// The last log in `reading/` when the store opened, until every log up to it is
    /// retired or gone: a flush waits for those too (the model, from the files alone).
    found_at_open: Option<LogId>,
    /// The highest seq a rotation was asked for since the restart (by a flush, or by a
    /// full pending memory): the log must rotate once every seq up to it is written.
    rotation_asked: u64,
    /// The model of the active log, for the rotation policy.
    log_model: LogModel,
    /// When the dispatcher last handed logs out (the simulated clock), for the pacing
    /// policy.
    last_handout: Option<u64>,
    /// The encoded bytes of each request queued and not yet taken by a writer pass, in
    /// queue order (a sync barrier's are 0).
    queued: VecDeque<u64>,
    /// The seq after which the current run's seqs started (recovery's).
    run_started_after: u64,
    /// Set by a clean close: the last seq handed out (or the run's start), which the next
    /// run's seqs must follow at once.
    closed_after: Option<u64>,
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
    /// Batches (their seqs) a lenient recovery mode drops for damage in a log no
    /// committer ever got: each must read absent whole or present whole, never in part.
    whole_batches: Vec<Vec<u64>>,
    /// Finished logs ever handed to the committers (a batch of one may be partly applied
    /// when damage comes: it is exempt from `whole_batches`).
    dispatched_logs: BTreeSet<PathBuf>,
    summary: Summary,
    trace_on: bool,
    trace: Vec<String>,
    digest_input: Vec<u8>,
    step: u64,
}

impl World {
    /// A world for `seed`.
    pub fn new(seed: u64, trace_on: bool) -> Self {
        let (knobs, mut rng) = Knobs::draw(seed);
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
            handed_upto: 0,
            lease_demand: 0,
            last_record_seq: 0,
            flush_waits: 0,
            found_at_open: None,
            rotation_asked: 0,
            log_model: LogModel::opened_at(0),
            last_handout: None,
            queued: VecDeque::new(),
            run_started_after: 0,
            closed_after: None,
            handed_since_lease_step: 0,
            keys_used: BTreeSet::new(),
            retired_logs: Vec::new(),
            corruptions: Vec::new(),
            key_damage: Vec::new(),
            maybe_lost: BTreeSet::new(),
            whole_batches: Vec::new(),
            dispatched_logs: BTreeSet::new(),
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
            2..4 => self.flush(),
            4..40 => self.submit(),
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

    /// The last seq handed out in this run, or, before any, the seq the run started after.
    fn last_handed_out(&self) -> u64 {
        self.run_started_after.max(self.handed_upto)
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
}

fn io_error(e: std::io::Error) -> writelog::Error {
    writelog::Error::Io {
        action: "simulating",
        path: ".".into(),
        source: e,
    }
}
