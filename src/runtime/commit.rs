//! The dispatcher thread and the committer threads.
//!
//! The dispatcher owns the [`Dispatcher`] machine. It waits on one channel of events
//! (a log finished, a committer done, stop), lists `reading/` when a log may have
//! arrived, hands each new log's work to the committers' channels, and retires logs in
//! order as committers report them durable: watermark first, then removal. After
//! retiring it trims the pending index and wakes callers held back by the backlog bound.
//! Each committer thread owns a [`Committer`] machine and takes every piece of work
//! waiting in one pass, so a backlog of logs costs one sync call per pass, not per log.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use super::Counters;
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, IoContext, Result};
use crate::failure::Failure;
use crate::fs::Fs;
use crate::index::PendingIndex;
use crate::keystore::KeyStore;
use crate::machine::commit::{CommitWork, Committer};
use crate::machine::dispatch::Dispatcher;
use crate::machine::pacing::{Backlog, CommitPacing};
use crate::machine::{LogId, READING_DIR};

/// Pending operations trimmed per hold of the index's lock (about a millisecond's work).
const TRIM_STEP_OPS: usize = 4096;

/// What the dispatcher thread is told.
#[derive(Debug)]
pub(crate) enum DispatchEvent {
    /// A log was rotated into `reading/`, holding blocks up to `last_seq`.
    LogFinished { log: LogId, last_seq: u64 },
    /// A committer finished a pass.
    Committed {
        committer: usize,
        outcome: std::result::Result<Vec<LogId>, Failure>,
    },
    /// Hand out logs without pacing until this seq is applied (a `flush` waits for it).
    Urgent(u64),
    /// Stop dispatching and let the committers go.
    Stop,
}

/// The applied watermark and the commit side's failure, for `flush` to wait on.
#[derive(Debug, Default)]
struct CommitState {
    applied: u64,
    /// Every log found in `reading/` when the store opened has been retired (replayed
    /// copies of applied logs included, which move no watermark).
    found_at_open_retired: bool,
    failed: Option<Failure>,
    stopped: bool,
}

/// What the store's callers share with the commit threads.
#[derive(Debug, Default)]
pub(crate) struct CommitShared {
    state: Mutex<CommitState>,
    applied_changed: Condvar,
}

impl CommitShared {
    fn lock(&self) -> MutexGuard<'_, CommitState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the applied watermark reaches `seq` and every log found at open is
    /// retired, or the commit side fails or stops, or `give_up()` says so (checked every
    /// few milliseconds).
    pub(crate) fn wait_applied(&self, seq: u64, give_up: impl Fn() -> Option<Error>) -> Result<()> {
        let mut state = self.lock();
        loop {
            if state.applied >= seq && state.found_at_open_retired {
                return Ok(());
            }
            if let Some(failed) = &state.failed {
                return Err(Error::CommitFailed(failed.clone()));
            }
            if state.stopped {
                return Err(Error::Closed);
            }
            if let Some(error) = give_up() {
                return Err(error);
            }
            state = self
                .applied_changed
                .wait_timeout(state, Duration::from_millis(20))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// The commit side's failure, if any.
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.lock().failed.clone()
    }
}

/// The dispatcher thread (which owns the committer threads).
pub(crate) struct CommitRuntime {
    events: Sender<DispatchEvent>,
    shared: Arc<CommitShared>,
    thread: Option<JoinHandle<()>>,
}

/// What the dispatcher needs to start: its machines, built by `machine::build`, and
/// what it shares with the store.
pub(crate) struct CommitSetup<F: Fs> {
    pub fs: Arc<F>,
    pub store: Arc<KeyStore>,
    pub dispatcher: Dispatcher,
    pub pacing: CommitPacing,
    /// One per committer thread.
    pub committers: Vec<Committer<F>>,
    pub rotate_interval_ms: u64,
    /// The store's clock: pacing reads time from it only.
    pub clock: Arc<dyn Clock>,
    pub index: Arc<Mutex<PendingIndex>>,
    pub counters: Arc<Counters>,
    /// Called after logs retire, to wake callers held back by the backlog bound.
    pub on_retired: Box<dyn Fn() + Send>,
}

impl CommitRuntime {
    /// A channel for events, made before the writer starts so it can announce logs.
    pub(crate) fn channel() -> (Sender<DispatchEvent>, Receiver<DispatchEvent>) {
        channel()
    }

    /// Starts the dispatcher and the committers.
    pub(crate) fn start<F: Fs>(
        mut setup: CommitSetup<F>,
        events: Sender<DispatchEvent>,
        inbox: Receiver<DispatchEvent>,
    ) -> Result<Self> {
        let shared = Arc::new(CommitShared::default());
        shared.lock().applied = setup.dispatcher.watermark();
        let mut work_senders = Vec::new();
        let mut committer_threads = Vec::new();
        for committer in std::mem::take(&mut setup.committers) {
            let id = committer.id();
            let (work_tx, work_rx) = channel::<Vec<CommitWork>>();
            work_senders.push(work_tx);
            let driver = CommitterDriver {
                committer,
                fs: Arc::clone(&setup.fs),
                store: Arc::clone(&setup.store),
                work: work_rx,
                done: events.clone(),
                counters: Arc::clone(&setup.counters),
                clock: Arc::clone(&setup.clock),
            };
            // The runtime owns the threads: this is one of them.
            #[allow(clippy::disallowed_methods)]
            let thread = std::thread::Builder::new()
                .name(format!("writelog-commit-{id}"))
                .spawn(move || driver.run())
                .map_err(spawn_error)?;
            committer_threads.push(thread);
        }
        let pacing = setup.pacing.clone();
        let thread_shared = Arc::clone(&shared);
        let stop_counters = Arc::clone(&setup.counters);
        // The runtime owns the threads: this is one of them.
        #[allow(clippy::disallowed_methods)]
        let thread = std::thread::Builder::new()
            .name("writelog-dispatch".into())
            .spawn(move || {
                let _stopped = StoppedOnExit(Arc::clone(&thread_shared), stop_counters);
                let mut driver = DispatchDriver {
                    setup,
                    shared: thread_shared,
                    work_senders,
                    pacing,
                };
                if let Err(e) = driver.run(&inbox) {
                    let failure = Failure::caused("the dispatcher", e);
                    driver.shared.lock().failed.get_or_insert(failure);
                    driver.shared.applied_changed.notify_all();
                }
                // The drop guard sets the flag too (for a panic); set here first so that
                // the callers woken next see it at once.
                driver
                    .setup
                    .counters
                    .commit_stopped
                    .store(true, Ordering::SeqCst);
                (driver.setup.on_retired)();
                // Closing the work channels lets every committer finish, checkpoint its
                // partitions' index and exit; a MANIFEST then names the checkpoints, so the
                // next open reads no run. (Best effort: a checkpoint no MANIFEST names is
                // removed at open, and the runs are read instead.)
                driver.work_senders.clear();
                let mut clean = driver.shared.failure().is_none();
                for thread in committer_threads {
                    clean &= thread.join().unwrap_or(false);
                }
                if clean {
                    let store = &driver.setup.store;
                    let _ = store.write_manifest(&*driver.setup.fs, store.watermark());
                }
            })
            .map_err(spawn_error)?;
        Ok(CommitRuntime {
            events,
            shared,
            thread: Some(thread),
        })
    }

    /// What callers wait on.
    pub(crate) fn shared(&self) -> &CommitShared {
        &self.shared
    }

    /// Asks the dispatcher to hand out logs without pacing until `upto` is applied.
    pub(crate) fn hurry(&self, upto: u64) {
        let _ = self.events.send(DispatchEvent::Urgent(upto));
    }

    /// Stops the dispatcher and the committers and waits for them. Logs not yet retired
    /// stay and are applied after the next open.
    pub(crate) fn stop(&mut self) -> Result<()> {
        let _ = self.events.send(DispatchEvent::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                let failure = Failure::without_cause("the dispatcher thread panicked");
                return Err(Error::CommitFailed(failure));
            }
        }
        match self.shared.failure() {
            Some(failed) => Err(Error::CommitFailed(failed)),
            None => Ok(()),
        }
    }
}

impl Drop for CommitRuntime {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Marks the commit side stopped when the dispatcher thread ends, however it ends (a
/// panic included), so that no caller waits on it forever.
struct StoppedOnExit(Arc<CommitShared>, Arc<Counters>);

impl Drop for StoppedOnExit {
    fn drop(&mut self) {
        // Callers held by the backlog bound look at this flag every few milliseconds.
        self.1.commit_stopped.store(true, Ordering::SeqCst);
        let mut state = self.0.lock();
        if std::thread::panicking() {
            state
                .failed
                .get_or_insert_with(|| Failure::without_cause("the dispatcher thread panicked"));
        }
        state.stopped = true;
        drop(state);
        self.0.applied_changed.notify_all();
    }
}

/// Tells the dispatcher when a committer thread dies of a panic, so the logs it held are
/// not waited on forever.
struct ReportPanic {
    id: usize,
    done: Sender<DispatchEvent>,
}

impl Drop for ReportPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let outcome = Err(Failure::without_cause(format!(
                "committer {} panicked",
                self.id
            )));
            let _ = self.done.send(DispatchEvent::Committed {
                committer: self.id,
                outcome,
            });
        }
    }
}

fn spawn_error(source: std::io::Error) -> Error {
    Error::Io {
        action: "spawning a commit thread for",
        path: ".".into(),
        source,
    }
}

/// One committer thread: its machine, and what it works with.
struct CommitterDriver<F: Fs> {
    committer: Committer<F>,
    fs: Arc<F>,
    store: Arc<KeyStore>,
    work: Receiver<Vec<CommitWork>>,
    done: Sender<DispatchEvent>,
    counters: Arc<Counters>,
    /// The store's clock, for the stats' compaction time only.
    clock: Arc<dyn Clock>,
}

impl<F: Fs> CommitterDriver<F> {
    /// Commits until the work channel closes, then checkpoints the committer's
    /// partitions; `true` when it ended cleanly.
    fn run(mut self) -> bool {
        let id = self.committer.id();
        let _report = ReportPanic {
            id,
            done: self.done.clone(),
        };
        let clean = self.commit_until_closed();
        clean
            && self
                .committer
                .checkpoint_all(&*self.fs, &self.store)
                .is_ok()
    }

    /// Takes the committer's work until its channel closes (`true`) or a pass or a
    /// compaction fails (`false`).
    fn commit_until_closed(&mut self) -> bool {
        /// Pieces of work taken in one pass at the most.
        const PASS_PIECES_MAX: usize = 256;
        // Each message is one handout's work for this committer (every log it covered);
        // handouts queued behind it join the same pass.
        let mut waiting: Option<Vec<CommitWork>> = None;
        loop {
            let mut pass = match waiting.take() {
                Some(first) => first,
                None => match self.work.recv() {
                    Ok(first) => first,
                    Err(_) => return true,
                },
            };
            while pass.len() < PASS_PIECES_MAX {
                match self.work.try_recv() {
                    Ok(pieces) => pass.extend(pieces),
                    Err(_) => break,
                }
            }
            if !self.commit_pass(&pass) {
                return false;
            }
            let busy = match self.work.try_recv() {
                Ok(next) => {
                    waiting = Some(next);
                    true
                }
                Err(TryRecvError::Disconnected) => return true,
                Err(TryRecvError::Empty) => false,
            };
            if let Err(e) = self.compact_due(busy) {
                let during = format!("committer {}'s compaction", self.committer.id());
                self.report(Err(Failure::caused(during, e)));
                return false;
            }
        }
    }

    /// One pass over `pass`, counted and reported; `false` when it failed (or nobody
    /// listens any more).
    fn commit_pass(&mut self, pass: &[CommitWork]) -> bool {
        let _span = tracing::debug_span!(
            "commit_pass",
            committer = self.committer.id(),
            pieces = pass.len()
        )
        .entered();
        let outcome = self.committer.commit(&*self.fs, &self.store, pass);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "a commit pass failed; its logs stay for the next open");
        }
        let failed = outcome.is_err();
        let counters = &self.counters;
        let outcome = outcome
            .map(|o| {
                counters.commit_passes.fetch_add(1, Ordering::Relaxed);
                counters
                    .records_applied
                    .fetch_add(o.applied, Ordering::Relaxed);
                counters.runs_written.fetch_add(o.runs, Ordering::Relaxed);
                counters
                    .keystore_bytes_written
                    .fetch_add(o.bytes, Ordering::Relaxed);
                o.logs_done
            })
            .map_err(|e| Failure::caused(format!("committer {}'s pass", self.committer.id()), e));
        self.report(outcome) && !failed
    }

    /// Tells the dispatcher how a pass (or a compaction) went; `false` when it is gone.
    fn report(&self, outcome: std::result::Result<Vec<LogId>, Failure>) -> bool {
        let committer = self.committer.id();
        self.done
            .send(DispatchEvent::Committed { committer, outcome })
            .is_ok()
    }

    /// Compacts a partition the committer's policy says is due (`busy`: work waits), if
    /// any, and counts it. Work that arrives meanwhile waits, within the backlog bound.
    fn compact_due(&mut self, busy: bool) -> Result<()> {
        let _span =
            tracing::debug_span!("compaction", committer = self.committer.id(), busy).entered();
        let started = self.clock.now();
        let Some(outcome) = self.committer.compact_due(&*self.fs, &self.store, busy)? else {
            return Ok(());
        };
        let micros = self.clock.now().micros_since(started);
        tracing::debug!(
            bytes_written = outcome.bytes_written,
            micros,
            "compacted a partition"
        );
        let counters = &self.counters;
        counters.compactions.fetch_add(1, Ordering::Relaxed);
        counters
            .compaction_bytes_written
            .fetch_add(outcome.bytes_written, Ordering::Relaxed);
        counters
            .keystore_bytes_written
            .fetch_add(outcome.bytes_written, Ordering::Relaxed);
        counters
            .compaction_micros
            .fetch_add(micros, Ordering::Relaxed);
        Ok(())
    }
}

struct DispatchDriver<F: Fs> {
    setup: CommitSetup<F>,
    shared: Arc<CommitShared>,
    work_senders: Vec<Sender<Vec<CommitWork>>>,
    /// When to hand logs out, on the store's clock.
    pacing: CommitPacing,
}

impl<F: Fs> DispatchDriver<F> {
    fn run(&mut self, inbox: &Receiver<DispatchEvent>) -> Result<()> {
        let idle_wait = Duration::from_millis(self.setup.rotate_interval_ms.clamp(5, 1000));
        let mut need_listing = true;
        // A store that found no log at open waits for none.
        self.publish_found_at_open();
        loop {
            // Hand out now if due; otherwise sleep until the interval ends (or an event
            // comes).
            let now = self.setup.clock.now();
            let due = self.handout_due(now);
            let wait = if need_listing && due {
                None
            } else if need_listing {
                Some(Duration::from_micros(self.pacing.poll_timeout(now)))
            } else {
                Some(idle_wait)
            };
            let event = match wait {
                None => inbox.try_recv().ok(),
                Some(wait) => match inbox.recv_timeout(wait) {
                    Ok(event) => Some(event),
                    // Look again now and then: a log may have been put in by hand.
                    Err(RecvTimeoutError::Timeout) => {
                        need_listing = true;
                        None
                    }
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                },
            };
            match event {
                Some(DispatchEvent::Stop) => return Ok(()),
                Some(DispatchEvent::LogFinished { log, last_seq }) => {
                    self.setup.dispatcher.expect(log, last_seq);
                    need_listing = true;
                }
                Some(DispatchEvent::Urgent(upto)) => {
                    need_listing = true;
                    self.pacing.hurry(upto);
                }
                Some(DispatchEvent::Committed { committer, outcome }) => {
                    for log in outcome.map_err(Error::CommitFailed)? {
                        self.setup.dispatcher.handle_committed(committer, log);
                    }
                }
                None => {}
            }
            // Retire and hand out until nothing more retires: a replayed log has no work
            // and is done as soon as it is dispatched.
            loop {
                let retired = self.retire()?;
                let now = self.setup.clock.now();
                if (need_listing || retired) && self.handout_due(now) {
                    need_listing = false;
                    self.pacing.handed_out(now);
                    self.dispatch_new_logs()?;
                } else if retired {
                    need_listing = true;
                }
                if !retired {
                    break;
                }
            }
        }
    }

    /// Tells `flush` once every log found at open is retired (the dispatcher tracks them).
    fn publish_found_at_open(&self) {
        if !self.setup.dispatcher.found_at_open_settled() {
            return;
        }
        let mut state = self.shared.lock();
        if !state.found_at_open_retired {
            state.found_at_open_retired = true;
            drop(state);
            self.shared.applied_changed.notify_all();
        }
    }

    /// Finished logs waiting that are not in the committers' hands yet. Pacing looks at
    /// these only: counting the logs being committed would hand out small batches exactly
    /// when the committers are behind, when large ones (each key's group written once for
    /// more records) help most.
    fn logs_not_handed_out(&self) -> u64 {
        let waiting = self.setup.counters.logs_waiting.load(Ordering::SeqCst);
        waiting.saturating_sub(self.setup.dispatcher.in_flight() as u64)
    }

    /// Whether to hand logs out at `now` (the pacing machine decides).
    fn handout_due(&self, now: Timestamp) -> bool {
        let backlog = Backlog {
            watermark: self.setup.dispatcher.watermark(),
            logs_not_handed_out: self.logs_not_handed_out(),
            pending_bytes: self.setup.counters.pending_bytes.load(Ordering::SeqCst),
        };
        self.pacing.is_due(now, &backlog)
    }

    /// Retires the logs every committer is done with; true when any retired.
    fn retire(&mut self) -> Result<bool> {
        let Some(finished) = self.setup.dispatcher.take_finished() else {
            return Ok(false);
        };
        let trim = self
            .setup
            .dispatcher
            .finish(&*self.setup.fs, &self.setup.store, &finished)?;
        let retired = finished.logs.len() as u64;
        let _ = self.setup.counters.logs_waiting.fetch_update(
            Ordering::SeqCst,
            Ordering::SeqCst,
            |n| Some(n.saturating_sub(retired)),
        );
        let applied = trim.upto();
        // In steps, the lock released between them: an append waits for one step at
        // most, not for the trim of a whole handout (tens of milliseconds at a time).
        loop {
            let mut index = self.setup.index.lock().unwrap_or_else(|e| e.into_inner());
            let more = trim.step(&mut index, TRIM_STEP_OPS);
            self.setup.counters.publish_pending_bytes(&index);
            if !more {
                break;
            }
        }
        self.setup
            .counters
            .applied_seq
            .store(applied, Ordering::SeqCst);
        self.shared.lock().applied = applied;
        self.shared.applied_changed.notify_all();
        self.publish_found_at_open();
        // Fewer logs and less pending memory: callers held by the backlog may go on
        // (async ones have no timeout to look again by).
        (self.setup.on_retired)();
        Ok(true)
    }

    /// Lists `reading/` and hands out every log not yet in flight, up to the bound.
    fn dispatch_new_logs(&mut self) -> Result<()> {
        let reading = Path::new(READING_DIR);
        let logs = LogId::all_in(&self.setup.fs.list(reading).io("listing", reading)?);
        self.setup
            .counters
            .logs_waiting
            .store(logs.len() as u64, Ordering::SeqCst);
        (self.setup.on_retired)();
        self.setup.dispatcher.note_listing(&logs);
        self.publish_found_at_open();
        // Route every log of this handout first, then give each committer its share in
        // one message: a committer's pass then covers the whole handout.
        let mut handout: Vec<Vec<CommitWork>> = vec![Vec::new(); self.work_senders.len()];
        while let Some(log) = self.setup.dispatcher.next_log(&logs) {
            let path = log.path();
            let bytes = self.setup.fs.read(&path).io("reading", &path)?;
            let dispatched = self.setup.dispatcher.dispatch(log, &bytes)?;
            let skipped = dispatched.damage.len() as u64;
            self.setup
                .counters
                .corrupt_skipped
                .fetch_add(skipped, Ordering::Relaxed);
            for (committer, work) in dispatched.work {
                handout[committer].push(work);
            }
        }
        for (committer, work) in handout.into_iter().enumerate() {
            if work.is_empty() {
                continue;
            }
            self.work_senders[committer].send(work).map_err(|_| {
                let gone = format!("committer {committer} stopped");
                Error::CommitFailed(Failure::without_cause(gone))
            })?;
        }
        Ok(())
    }
}
