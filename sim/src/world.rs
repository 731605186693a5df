//! One seeded run: the store's machines driven from one thread over [`SimFs`], a workload,
//! crashes, and the oracle.
//!
//! Everything is derived from the seed through one ChaCha8 stream: the options, the fault
//! mix (swarm testing: each seed turns some faults on, at its own rates), the workload and
//! the schedule. Nothing else (no clock, no hash order, no thread) reaches the run, so a
//! seed's trace digest is the same on every run.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use writelog::clock::Timestamp;
use writelog::format::{crc64, Kind};
use writelog::fs::Fs;
use writelog::index::{fold, PendingIndex, Record};
use writelog::keystore;
use writelog::machine::commit::{CommitWork, Committer};
use writelog::machine::dispatch::Dispatcher;
use writelog::machine::recovery;
use writelog::machine::rotation::{Rotated, Rotation};
use writelog::machine::writer::{LogRecord, Request, SubmitQueue, Writer};
use writelog::machine::{parse_log_file_name, reading_path, READING_DIR, WRITING_DIR};
use writelog::{Durability, RecoveryMode};

use crate::simfs::{CrashKind, SimFs};

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
    /// fdatasyncs and directory fsyncs answered with EIO (each poisons; the store reopens).
    pub sync_eio: u64,
    /// Oracle checks made.
    pub checks: u64,
    /// The trace digest: the same for the same seed on every run.
    pub digest: u64,
}

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
    committers: Vec<Committer>,
    inbox: Vec<VecDeque<CommitWork>>,
    index: PendingIndex,
}

/// The knobs a seed picks.
#[derive(Clone, Debug)]
struct Knobs {
    committers: usize,
    rotate_interval_ms: u64,
    rotate_bytes_max: u64,
    keys: u32,
    crash_rate: f64,
    power_loss_share: f64,
    crash_in_recovery: f64,
    replay_rate: f64,
    clock_back_rate: f64,
    clock_jump_rate: f64,
    sync_eio_rate: f64,
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

/// Why a step stopped: a crash (expected, handled) or an oracle failure.
enum StepError {
    Crash,
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
    /// Keys ever used.
    keys_used: BTreeSet<Vec<u8>>,
    /// Bytes of logs retired, kept to be put back (a replay fault).
    retired_logs: Vec<(String, Vec<u8>)>,
    summary: Summary,
    trace_on: bool,
    trace: Vec<String>,
    digest_input: Vec<u8>,
    step: u64,
}

impl World {
    /// A world for `seed`.
    pub fn new(seed: u64, trace_on: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let knobs = Knobs {
            committers: rng.random_range(1..=4),
            rotate_interval_ms: [1, 5, 20, 100][rng.random_range(0..4)],
            rotate_bytes_max: [4096, 16384, 1 << 20][rng.random_range(0..3)],
            keys: [1, 3, 8, 40][rng.random_range(0..4)],
            crash_rate: [0.0, 0.002, 0.01, 0.03][rng.random_range(0..4)],
            power_loss_share: [0.0, 0.5, 1.0][rng.random_range(0..3)],
            crash_in_recovery: [0.0, 0.3][rng.random_range(0..2)],
            replay_rate: [0.0, 0.02][rng.random_range(0..2)],
            clock_back_rate: [0.0, 0.01][rng.random_range(0..2)],
            clock_jump_rate: [0.0, 0.005][rng.random_range(0..2)],
            sync_eio_rate: [0.0, 0.0, 0.003, 0.02][rng.random_range(0..4)],
            crash_on_io_only: rng.random_bool(0.5),
            big_payloads: rng.random_bool(0.2),
            steps: rng.random_range(200..1200),
        };
        let fs = SimFs::new();
        fs.set_crash_on_io_only(knobs.crash_on_io_only);
        fs.set_sync_eio(
            knobs.sync_eio_rate,
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
            keys_used: BTreeSet::new(),
            retired_logs: Vec::new(),
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
            rotate_interval_ms: 5,
            rotate_bytes_max: 4096,
            keys: 8,
            crash_rate: 0.0,
            power_loss_share: 0.0,
            crash_in_recovery: 0.0,
            replay_rate: 0.0,
            clock_back_rate: 0.0,
            clock_jump_rate: 0.0,
            sync_eio_rate: 0.0,
            crash_on_io_only: false,
            big_payloads: false,
            steps: 0,
        };
        world.fs.set_sync_eio(0.0, ChaCha8Rng::seed_from_u64(0));
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
                Err(StepError::Crash) => {
                    return Err(self.fail("a fault while the script injected none".into()))
                }
            }
        }
        match self.drain() {
            Ok(()) => {}
            Err(StepError::Oracle(message)) => return Err(self.fail(message)),
            Err(StepError::Crash) => return Err(self.fail("a crash while faults were off".into())),
        }
        self.summary.steps = self.step;
        self.summary.digest = crc64(&self.digest_input);
        Ok(self.summary)
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
                    // An EIO poisoned the store: it is closed and reopened.
                    self.note("poisoned by EIO: reopen".into());
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
        match self.drain() {
            Ok(()) => {}
            Err(StepError::Oracle(message)) => return Err(self.fail(message)),
            Err(StepError::Crash) => return Err(self.fail("a crash while faults were off".into())),
        }
        self.summary.steps = self.step;
        self.summary.crashes_mid_io = self.fs.crashes_mid_io();
        self.summary.sync_eio = self.fs.eio_total();
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
                }
                self.fs.restart(kind, &mut self.rng);
                if self.trace_on {
                    let described = self.fs.describe(Path::new(writelog::machine::WRITING_LOG));
                    self.trace.push(format!("    after restart: {described}"));
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
            if self
                .rng
                .random_bool((self.knobs.replay_rate * 10.0).min(1.0))
            {
                self.plant_replay();
            }
            match self.recover() {
                Ok(()) => break,
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
        let (name, bytes) = self.retired_logs[i].clone();
        let name = if self.rng.random_bool(0.5) {
            name
        } else {
            let ts = parse_log_file_name(&name).unwrap_or(0)
                + self.rng.random_range(1..1_000_000_000u64);
            writelog::machine::log_file_name(ts)
        };
        if !self.fs.plant(&reading_path(&name), &bytes) {
            return;
        }
        self.summary.replays += 1;
        self.note(format!("replay {name}"));
    }

    /// Runs the production recovery code and checks what it kept.
    fn recover(&mut self) -> Step<()> {
        let fs = &self.fs;
        let crash = |e: writelog::Error| {
            if fs.crashed() || fs.take_eio() {
                StepError::Crash
            } else {
                StepError::from(e)
            }
        };
        keystore::create_dirs(fs).map_err(crash)?;
        let watermark = keystore::read_watermark(fs).map_err(crash)?;
        let recovered = recovery::recover(fs, Timestamp(self.now), watermark, RecoveryMode::Strict)
            .map_err(crash)?;
        let last_seq = recovered.last_seq;
        self.note(format!(
            "recovered last_seq {last_seq} watermark {watermark} unapplied {} leftover {:?}",
            recovered.unapplied.len(),
            recovered.report.leftover
        ));
        // Oracle: nothing that had to survive is lost; no batch is cut.
        let must_keep = self.written_upto.max(self.durable_upto);
        if last_seq < must_keep {
            return Err(StepError::Oracle(format!(
                "acknowledged seqs up to {must_keep} had to survive, recovery found only up to {last_seq}",
            )));
        }
        for (first, request) in &self.history {
            let last = first + request.records.len() as u64 - 1;
            if *first <= last_seq && last > last_seq {
                return Err(StepError::Oracle(format!(
                    "batch {first}..={last} cut at {last_seq}"
                )));
            }
        }
        // What survived is exactly the requests at or below last_seq.
        self.history.retain(|first, _| *first <= last_seq);
        self.durable_upto = last_seq;
        self.written_upto = last_seq;
        let mut index = PendingIndex::new();
        for record in &recovered.unapplied {
            index.insert(record.seq, record.kind, &record.key, &record.payload);
        }
        self.node = Some(Node {
            queue: SubmitQueue::new(last_seq + 1, 1 << 20),
            writer: Writer::new(recovered.log, last_seq),
            rotation: Rotation::new(
                self.knobs.rotate_interval_ms,
                self.knobs.rotate_bytes_max,
                Timestamp(self.now),
                recovered.last_log_ts,
            ),
            dispatcher: Dispatcher::new(self.knobs.committers, RecoveryMode::Strict, watermark, 16),
            committers: (0..self.knobs.committers)
                .map(|_| Committer::new(64))
                .collect(),
            inbox: vec![VecDeque::new(); self.knobs.committers],
            index,
        });
        self.check_all_reads()
    }

    /// The model's records for every key: the history applied in seq order.
    fn model(&self) -> BTreeMap<Vec<u8>, Vec<Record>> {
        let mut model: BTreeMap<Vec<u8>, Vec<Record>> = BTreeMap::new();
        for (first, request) in &self.history {
            for (i, record) in request.records.iter().enumerate() {
                let seq = first + i as u64;
                match record.kind {
                    Kind::Append => model.entry(record.key.clone()).or_default().push(Record {
                        seq,
                        payload: record.payload.clone(),
                    }),
                    Kind::Delete => {
                        model.remove(&record.key);
                    }
                }
            }
        }
        model
    }

    fn read(&self, key: &[u8]) -> Step<Vec<Record>> {
        let node = self.node.as_ref().ok_or(StepError::Crash)?;
        let pending = node.index.ops(key);
        let located = keystore::locate(&self.fs, key).map_err(|e| {
            if self.is_fault() {
                StepError::Crash
            } else {
                StepError::from(e)
            }
        })?;
        Ok(fold(located.file, pending))
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
        let got = self.read(key)?;
        let want = model.get(key).map(Vec::as_slice).unwrap_or_default();
        self.summary.checks += 1;
        if got != want {
            return Err(StepError::Oracle(format!(
                "key {:?}: read {:?}, the model says {:?}",
                String::from_utf8_lossy(key),
                got.iter().map(|r| r.seq).collect::<Vec<_>>(),
                want.iter().map(|r| r.seq).collect::<Vec<_>>()
            )));
        }
        Ok(())
    }

    fn one_step(&mut self) -> Step<()> {
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
            0..40 => self.submit(),
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
        self.fs.crashed() || self.fs.take_eio()
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
        let records: Vec<LogRecord> = match self.rng.random_range(0..10u32) {
            0 => vec![LogRecord {
                kind: Kind::Delete,
                key: key(&mut self.rng),
                payload: Vec::new(),
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

    fn writer_pass(&mut self) -> Step<()> {
        let node = self.node()?;
        let pass: Vec<Request<u64>> = node.queue.take_pass(64 << 10);
        if pass.is_empty() {
            return Ok(());
        }
        let outcome = node
            .writer
            .write_pass(&pass)
            .map_err(|_| StepError::Crash)?;
        for request in &pass {
            if let Some(submitted) = self.history.get_mut(&request.token) {
                submitted.acked = true;
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

    fn rotate(&mut self, force: bool) -> Step<()> {
        let now = Timestamp(self.now);
        let fs = self.fs.clone();
        let node = self.node()?;
        if !force && !node.rotation.is_due(now, node.writer.log()) {
            return Ok(());
        }
        let rotated = node
            .rotation
            .rotate(&fs, &mut node.writer, now)
            .map_err(|_| StepError::Crash)?;
        let last = node.writer.last_seq();
        if let Rotated::Finished { name, .. } = rotated {
            self.durable_upto = self.durable_upto.max(last);
            self.note(format!("rotated {name}"));
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Step<()> {
        let names = self.crash_or(self.fs.list(Path::new(READING_DIR)).map_err(io_error))?;
        let fs = self.fs.clone();
        let node = self.node()?;
        let Some(name) = node.dispatcher.next_log(&names).map(str::to_owned) else {
            return Ok(());
        };
        let bytes = match fs.read(&reading_path(&name)) {
            Ok(bytes) => bytes,
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            Err(e) => return Err(StepError::Oracle(format!("reading {name}: {e}"))),
        };
        let dispatched = node.dispatcher.dispatch(&name, &bytes)?;
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
        let outcome = match node.committers[id].commit(&fs, &work) {
            Ok(outcome) => outcome,
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            Err(e) => return Err(StepError::from(e)),
        };
        for log in &outcome.logs_done {
            node.dispatcher.handle_committed(id, log);
        }
        self.note(format!(
            "committer {id} applied {} skipped {}",
            outcome.applied, outcome.skipped
        ));
        Ok(())
    }

    fn retire(&mut self) -> Step<()> {
        let fs = self.fs.clone();
        let node = self.node()?;
        let Some(finished) = node.dispatcher.take_finished() else {
            return Ok(());
        };
        let mut copies = Vec::new();
        for log in &finished.logs {
            if let Ok(bytes) = fs.read(&reading_path(log)) {
                copies.push((log.clone(), bytes));
            }
        }
        match node.dispatcher.finish(&fs, &finished) {
            Ok(()) => {}
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            Err(e) => return Err(StepError::from(e)),
        }
        node.index.trim(finished.watermark);
        self.retired_logs.extend(copies);
        self.note(format!(
            "retired {:?} watermark {}",
            finished.logs, finished.watermark
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
        self.fs.set_sync_eio(0.0, ChaCha8Rng::seed_from_u64(0));
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
            if node.dispatcher.in_flight() == 0
                && !names.iter().any(|n| parse_log_file_name(n).is_some())
            {
                break;
            }
        }
        // Liveness: every log drained and removed; one writing/tx.log; nothing pending.
        let reading = self.crash_or(self.fs.list(Path::new(READING_DIR)).map_err(io_error))?;
        if reading.iter().any(|n| parse_log_file_name(n).is_some()) {
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
        let listed = self.crash_or(keystore::list_keys(&self.fs))?;
        let expected: Vec<Vec<u8>> = model
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        self.summary.checks += 1;
        if listed != expected {
            return Err(StepError::Oracle(format!(
                "the key store lists {} keys, the model {}",
                listed.len(),
                expected.len()
            )));
        }
        self.note("drained".into());
        Ok(())
    }
}

fn io_error(e: std::io::Error) -> writelog::Error {
    writelog::Error::Io {
        action: "simulating",
        path: ".".into(),
        source: e,
    }
}
