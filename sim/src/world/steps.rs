//! The machines' steps, as the runtime would drive them: recovery, writer passes and
//! rotation here (the commit side's in `commit_side.rs`), and the drain at the end.

use super::checks::check_rotation_timeout;
use super::*;

/// The bytes of a writer pass beyond its first request (the runtime's `pass_bytes_max`).
const PASS_BYTES_MAX: usize = 64 << 10;

/// The store under simulation: the machines and what the runtime would hold.
pub(super) struct Node {
    pub(super) queue: SubmitQueue<u64>,
    pub(super) writer: Writer<SimFs>,
    pub(super) rotation: Rotation,
    pub(super) dispatcher: Dispatcher,
    pub(super) keys: KeyStore,
    pub(super) committers: Vec<Committer<SimFs>>,
    pub(super) inbox: Vec<VecDeque<CommitWork>>,
    pub(super) index: PendingIndex,
    /// When the dispatcher may hand logs out, on the simulated clock.
    pub(super) pacing: CommitPacing,
    /// Finished logs not yet retired, as the runtime counts them for admission.
    pub(super) logs_waiting: u64,
}

impl World {
    /// Runs the production recovery code and checks what it kept.
    pub(super) fn recover(&mut self) -> Step<()> {
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
        let lease_seqs = self.knobs.seq_lease;
        let now = Timestamp(self.now);
        let recovered = match recovery::recover(&self.fs, now, watermark, mode, lease_seqs) {
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
        // After a clean close the rest of the seq lease went back: under `Strict` (no room
        // left for damage) new seqs continue right after the last one handed out.
        if let Some(last_out) = self.closed_after.take() {
            if mode == RecoveryMode::Strict && next_after != last_out {
                return Err(StepError::Oracle(format!(
                    "after a clean close with seq {last_out} the last handed out, new seqs \
                     start at {}",
                    next_after + 1
                )));
            }
        }
        self.run_started_after = next_after;
        if next_after < self.handed_upto {
            return Err(StepError::Oracle(format!(
                "seq {} was handed out before the crash, yet new seqs start at {}",
                self.handed_upto,
                next_after + 1
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
        self.last_record_seq = last_seq;
        self.flush_waits = 0;
        self.rotation_asked = 0;
        self.log_model = LogModel::opened_at(self.now);
        // What recovery left in `reading/`, from the files behind the store's back.
        let reading = self.fs.file_names_in(Path::new(READING_DIR));
        self.found_at_open = LogId::all_in(&reading).last().copied();
        self.last_handout = None;
        self.queued.clear();
        // The same constructor as `Store`, from options the knobs make.
        let logs_waiting = recovered.report.logs_waiting as u64;
        let machines = Machines::build(recovered, &keys, &self.options(), Timestamp(self.now));
        assert_eq!(
            machines.queue.next_seq(),
            next_after + 1,
            "seqs go on after recovery's"
        );
        self.lease_demand = 0;
        self.handed_since_lease_step = 0;
        self.node = Some(Node {
            queue: machines.queue,
            writer: machines.writer,
            rotation: machines.rotation,
            dispatcher: machines.dispatcher,
            keys,
            committers: machines.committers,
            inbox: vec![VecDeque::new(); self.knobs.committers],
            index: machines.index,
            pacing: machines.pacing,
            logs_waiting,
        });
        self.check_all_reads()
    }

    pub(super) fn writer_pass(&mut self) -> Step<()> {
        // As the runtime's writer: a lease running low is extended, durably, first.
        let fs = self.fs.clone();
        if let Some(upto) = self.node()?.queue.lease_wanted() {
            self.crash_or(seq_lease::reserve(&fs, upto))?;
            self.node()?.queue.grant_lease(upto);
            self.note(format!("seq lease up to {upto}"));
        }
        self.handed_since_lease_step = 0;
        // Liveness: a request that waited for the lease fits once the writer has stepped
        // (in the runtime, its caller would wait for ever otherwise).
        if self.lease_demand > 0 {
            let lease = self.node()?.queue.lease();
            if !lease.covers(self.lease_demand) {
                return Err(StepError::Oracle(format!(
                    "a request waits for seqs up to {}, yet the lease ends at {}",
                    self.lease_demand, lease.upto
                )));
            }
            self.lease_demand = 0;
        }
        let node = self.node()?;
        let pass: Vec<Request<u64>> = node.queue.take_pass(PASS_BYTES_MAX);
        if pass.is_empty() {
            return Ok(());
        }
        let outcome = match node.writer.write_pass(&pass) {
            Ok(outcome) => outcome,
            Err(poisoned) => return Err(self.poisoned_step("a writer pass", &poisoned.0)),
        };
        for request in &pass {
            // The writer machine decides whom to release, as the runtime asks it; every
            // caller of a finished pass is released (else it would wait forever).
            let last = request.first_seq + request.records.len() as u64 - 1;
            let node = self.node()?;
            if node.writer.released_upto(request.durability) < last {
                return Err(StepError::Oracle(format!(
                    "a {:?} request up to {last} is not released after its pass",
                    request.durability
                )));
            }
            if let Some(submitted) = self.history.get_mut(&request.token) {
                submitted.acked = true;
            }
            self.require(request.durability, last);
        }
        self.written_upto = self.written_upto.max(outcome.last_seq);
        let taken: u64 = pass.iter().map(|r| r.encoded_len as u64).sum();
        self.check_pass_size(pass.len())?;
        self.log_model.records += outcome.records;
        self.log_model.bytes += taken;
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

    pub(super) fn rotate(&mut self, force: bool) -> Step<()> {
        let now = Timestamp(self.now);
        let fs = self.fs.clone();
        let expected = self.rotation_policy();
        let node = self.node()?;
        check_rotation_timeout(&node.rotation, &node.writer, now)?;
        let due = node.rotation.is_due(now, &node.writer);
        if due != expected {
            return Err(StepError::Oracle(format!(
                "the rotation is due: {due}, yet the policy says {expected} (log {:?}, a \
                 rotation asked up to {}, written up to {})",
                self.log_model, self.rotation_asked, self.written_upto
            )));
        }
        if !force && !due {
            return Ok(());
        }
        self.log_model = LogModel::opened_at(self.now);
        let node = self.node()?;
        let rotated = match node.rotation.rotate(&fs, &mut node.writer, now) {
            Ok(rotated) => rotated,
            Err(poisoned) => return Err(self.poisoned_step("a rotation", &poisoned.0)),
        };
        let last = node.writer.last_seq();
        if let Rotated::Finished { log: name, .. } = rotated {
            node.dispatcher.expect(name, last);
            node.logs_waiting += 1;
            self.durable_upto = self.durable_upto.max(last);
            self.finished_upto = self.finished_upto.max(last);
            self.note(format!("rotated {name}"));
        }
        Ok(())
    }

    /// The pass the writer took is the one its bound makes, from the model's queue: the
    /// first request, then each next one while the pass's bytes stay within
    /// `PASS_BYTES_MAX` (so a pass is as large as the bound lets it be, and never larger).
    fn check_pass_size(&mut self, taken: usize) -> Step<()> {
        let mut expected = 0;
        let mut bytes = 0;
        for &size in &self.queued {
            if expected > 0 && bytes + size > PASS_BYTES_MAX as u64 {
                break;
            }
            bytes += size;
            expected += 1;
        }
        if taken != expected {
            return Err(StepError::Oracle(format!(
                "the writer took {taken} requests, yet the pass bound makes it {expected} of \
                 {:?}",
                self.queued
            )));
        }
        self.queued.drain(..taken);
        Ok(())
    }

    /// The rotation policy, from the model alone: the log rotates when it holds records
    /// and every seq a rotation was asked for (by a flush, or by a full pending memory) is
    /// written, or its interval passed, or the clock stepped back behind its opening, or it
    /// is full.
    fn rotation_policy(&self) -> bool {
        let LogModel {
            opened_at,
            records,
            bytes,
        } = self.log_model;
        let asked = self.rotation_asked;
        let asked_and_written = asked > self.finished_upto && self.written_upto >= asked;
        let interval_us = self.knobs.rotate_interval_ms * 1000;
        records > 0
            && (asked_and_written
                || self.now >= opened_at + interval_us
                || self.now < opened_at
                || bytes >= self.knobs.rotate_bytes_max)
    }

    /// Faults off: write everything, rotate, apply and retire every log, then check that
    /// everything drained and that the key store alone equals the model.
    pub(super) fn drain(&mut self) -> Step<()> {
        self.fs.schedule_crash(u64::MAX / 2);
        // A flush: hand-outs are due until everything is applied.
        self.node()?.pacing.hurry(u64::MAX);
        self.flush_waits = u64::MAX;
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
    pub(super) fn close_and_reopen(&mut self) -> Step<()> {
        let fs = self.fs.clone();
        let node = self.node()?;
        for committer in &mut node.committers {
            committer.checkpoint_all(&fs, &node.keys)?;
        }
        let watermark = node.keys.watermark();
        node.keys.write_manifest(&fs, watermark)?;
        // As the runtime's close: the rest of the seq lease goes back.
        if let Some(upto) = node.queue.lease_at_close() {
            seq_lease::reserve(&fs, upto)?;
        }
        self.node = None;
        self.closed_after = Some(self.last_handed_out());
        self.note("closed".into());
        self.recover()
    }
}
