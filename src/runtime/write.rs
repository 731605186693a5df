//! The writer thread and the state callers share with it.
//!
//! Callers push into the [`SubmitQueue`] under one short-held mutex and, unless their
//! durability is `None`, park until the writer thread reports their last seq written
//! (`Buffered`) or synced (`Sync`). Every request is satisfied by its own pass, so each
//! request carries its caller's thread handle and the writer, after publishing the new
//! levels in atomics, unparks exactly the callers of the pass it finished. Waiters never
//! touch the queue's mutex to learn they are done, so a finished group wakes without a
//! thundering herd on that lock and is back in the queue in time for the next pass.
//! A caller also enters its records into the pending index (read-your-writes) while it
//! holds the queue's lock, so the index receives seqs in order.
//!
//! Async callers ([`Submission`]) go through the same steps, with a [`Waker`] where a
//! thread caller parks: the writer wakes it exactly where it would unpark a thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use super::commit::DispatchEvent;
use super::Counters;
use crate::clock::{Clock, Timestamp};
use crate::error::{Error, Result};
use crate::failure::Failure;
use crate::fs::Fs;
use crate::index::PendingIndex;
use crate::machine::rotation::{Rotated, Rotation};
use crate::machine::seq_lease;
use crate::machine::submit_queue::{
    Admission, BacklogBounds, BacklogLoad, LogRecord, Request, SeqRange, SubmitQueue,
};
use crate::machine::writer::{release_level, Poisoned, Writer};
use crate::options::Durability;

/// Who waits for a request: a parked thread or an async task.
pub(crate) enum Waiter {
    /// A blocking caller, parked in [`WriteRuntime::submit`].
    Thread(Thread),
    /// An async caller: its [`Submission`] polls again when woken.
    Task(Arc<TaskWake>),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Thread(thread) => thread.unpark(),
            Waiter::Task(task) => task.wake(),
        }
    }
}

/// The waker of an async caller's request, replaced at each poll (a task may move
/// between executor threads, and its waker with it).
pub(crate) struct TaskWake(Mutex<Option<Waker>>);

impl TaskWake {
    fn new(waker: &Waker) -> Arc<Self> {
        Arc::new(TaskWake(Mutex::new(Some(waker.clone()))))
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(old) if old.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let waker = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What callers and the writer thread share under one lock.
struct WriteState {
    /// Each request carries whoever waits for it (`None` for callers that do not wait).
    queue: SubmitQueue<Option<Waiter>>,
    /// Async callers waiting for room in the queue or the backlog; woken (all) whenever
    /// room may have appeared, under this lock, so none misses it.
    room_wakers: Vec<Waker>,
    poisoned: Option<Poisoned>,
    closing: bool,
    /// The writer is waiting on `work` (so a submit must wake it).
    writer_idle: bool,
    /// A rotation request on its way to the writer's [`Rotation`] machine (0: none):
    /// from `flush`, or from admission when the pending memory is full.
    rotation_asked: u64,
}

/// The acknowledgement levels. Only the writer thread stores them; they only grow.
struct Acks {
    /// Every seq at or below is written to the OS.
    written: AtomicU64,
    /// Every seq at or below is fdatasync'd.
    synced: AtomicU64,
    /// Set (after `WriteState::poisoned`) when nothing more will be acknowledged.
    poisoned: AtomicBool,
}

impl Acks {
    /// How far callers asking `durability` may be released (the writer machine's rule).
    fn level(&self, durability: Durability) -> u64 {
        let written = self.written.load(Ordering::SeqCst);
        let synced = self.synced.load(Ordering::SeqCst);
        release_level(durability, written, synced)
    }
}

/// How long a caller parks before it checks the poison again on its own.
const CALLER_RECHECK: Duration = Duration::from_millis(100);

struct Shared {
    state: Mutex<WriteState>,
    /// Filled under `state`'s lock, in seq order.
    index: Arc<Mutex<PendingIndex>>,
    backlog: BacklogBounds,
    /// The writer waits here for work.
    work: Condvar,
    /// Callers wait here for room in the queue.
    room: Condvar,
    acks: Acks,
    counters: Arc<Counters>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, WriteState> {
        // The writer thread never panics while holding the lock (its machines return
        // errors); if it ever did, the queue is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the poison, then tells every waiter.
    fn poison(&self, state: &mut WriteState, poisoned: Poisoned) {
        if state.poisoned.is_none() {
            tracing::error!(why = %poisoned.0, "the writer is poisoned: nothing more is acknowledged");
        }
        state.poisoned.get_or_insert(poisoned);
        self.acks.poisoned.store(true, Ordering::SeqCst);
    }

    /// The writer thread panicked: poisons the store, then wakes every caller still
    /// queued or waiting for room (callers whose pass was in flight see the poison on
    /// their next timed wake-up).
    fn poison_after_panic(&self, panic: &(dyn std::any::Any + Send)) {
        let message = panic
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let mut state = self.lock();
        self.poison(
            &mut state,
            Poisoned(Failure::without_cause(format!(
                "the writer thread panicked: {message}"
            ))),
        );
        let left = state.queue.drain();
        let room = std::mem::take(&mut state.room_wakers);
        drop(state);
        wake(left);
        wake_all(room);
        self.room.notify_all();
    }

    /// Fails unless the writer takes requests (not poisoned, not closing).
    fn taking_requests(state: &WriteState) -> Result<()> {
        if let Some(poisoned) = &state.poisoned {
            return Err(Error::Poisoned(poisoned.0.clone()));
        }
        if state.closing {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Queues a sync barrier for `waiter`; returns the last seq it covers.
    fn enqueue_barrier(&self, state: &mut WriteState, waiter: Waiter) -> Result<u64> {
        Self::taking_requests(state)?;
        let last = state.queue.push_sync_barrier(Some(waiter));
        self.wake_writer(state);
        Ok(last)
    }

    /// Wakes every caller waiting for room, threads and tasks.
    fn wake_room(&self) {
        let room = std::mem::take(&mut self.lock().room_wakers);
        wake_all(room);
        self.room.notify_all();
    }

    /// Whether a request of `records` records and `encoded_len` bytes may be queued now
    /// (`Ok(true)`), must wait for room (`Ok(false)`), or fails. The queue's admission
    /// rule decides; this passes on what it asks (a rotation, a writer woken for the
    /// lease) and turns a refusal into the caller's error.
    fn admit(
        &self,
        state: &mut WriteState,
        size: (usize, usize),
        when_full: WhenFull,
    ) -> Result<bool> {
        Self::taking_requests(state)?;
        let load = BacklogLoad {
            logs_waiting: self.counters.logs_waiting.load(Ordering::SeqCst),
            pending_bytes: self.counters.pending_bytes.load(Ordering::SeqCst),
        };
        let held = match state.queue.admit(size, load, self.backlog) {
            Admission::Admit => return Ok(true),
            Admission::Held(held) => held,
        };
        if let Some(upto) = held.rotate_upto {
            state.rotation_asked = state.rotation_asked.max(upto);
        }
        if held.wake_writer() {
            self.wake_writer(state);
        }
        let backlogged = held.backlogged;
        if backlogged && self.counters.commit_stopped.load(Ordering::SeqCst) {
            return Err(Error::CommitFailed(Failure::without_cause(
                "the commit side stopped, so the backlog cannot drain (flush() gives the reason)",
            )));
        }
        match (when_full, backlogged) {
            (WhenFull::Fail, true) => Err(Error::Backlogged {
                logs_waiting: load.logs_waiting,
                pending_bytes: load.pending_bytes,
            }),
            (WhenFull::Fail, false) => Err(Error::QueueFull),
            (WhenFull::Wait, _) => Ok(false),
        }
    }

    /// Enters `records` into the pending index and queues them for `waiter`; the caller
    /// was admitted under this same lock.
    fn enqueue(
        &self,
        state: &mut WriteState,
        index: &mut PendingIndex,
        records: Vec<LogRecord>,
        durability: Durability,
        waiter: Option<Waiter>,
    ) -> SeqRange {
        let range = state.queue.push_indexed(index, records, durability, waiter);
        self.counters.publish_pending_bytes(index);
        self.wake_writer(state);
        range
    }

    fn wake_writer(&self, state: &mut WriteState) {
        if state.writer_idle {
            state.writer_idle = false;
            self.work.notify_one();
        }
    }

    /// Whether `range` is as durable as `durability` asks; the poison once nothing more
    /// will be acknowledged.
    fn settled(&self, range: SeqRange, durability: Durability) -> Option<Result<SeqRange>> {
        if self.acks.level(durability) >= range.last {
            return Some(Ok(range));
        }
        if self.acks.poisoned.load(Ordering::SeqCst) {
            return Some(Err(self.poison_error()));
        }
        None
    }

    fn poison_error(&self) -> Error {
        match &self.lock().poisoned {
            Some(poisoned) => Error::Poisoned(poisoned.0.clone()),
            None => Error::Poisoned(Failure::without_cause("unknown")),
        }
    }
}

/// The writer thread and its handle.
pub(crate) struct WriteRuntime {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Wakes callers waiting for room (the dispatcher calls it after retiring logs).
pub(crate) struct RoomSignal(Arc<Shared>);

impl RoomSignal {
    pub(crate) fn notify_all(&self) {
        self.0.wake_room();
    }
}

/// Whether a submit waits for room or fails at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WhenFull {
    Wait,
    Fail,
}

impl WriteRuntime {
    /// Starts the writer thread over a recovered writer. Finished logs are announced on
    /// `events`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start<F: Fs, C: Clock>(
        fs: Arc<F>,
        clock: Arc<C>,
        queue: SubmitQueue<Option<Waiter>>,
        writer: Writer<F>,
        rotation: Rotation,
        options: &crate::Options,
        index: Arc<Mutex<PendingIndex>>,
        events: std::sync::mpsc::Sender<DispatchEvent>,
        counters: Arc<Counters>,
    ) -> Result<Self> {
        let pass_bytes_max = options.pass_bytes_max;
        let last_seq = writer.last_seq();
        assert_eq!(
            queue.next_seq(),
            last_seq + 1,
            "the queue goes on after the log"
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(WriteState {
                queue,
                poisoned: None,
                closing: false,
                writer_idle: false,
                rotation_asked: 0,
                room_wakers: Vec::new(),
            }),
            index,
            backlog: BacklogBounds {
                logs_max: options.backlog_logs_max as u64,
                bytes_max: options.backlog_bytes_max as u64,
            },
            work: Condvar::new(),
            room: Condvar::new(),
            acks: Acks {
                written: AtomicU64::new(last_seq),
                synced: AtomicU64::new(last_seq),
                poisoned: AtomicBool::new(false),
            },
            counters,
        });
        let thread_shared = Arc::clone(&shared);
        // The runtime owns the threads: this is one of them.
        #[allow(clippy::disallowed_methods)]
        let thread = std::thread::Builder::new()
            .name("writelog-writer".into())
            .spawn(move || {
                let mut driver = WriterDriver {
                    shared: thread_shared,
                    fs,
                    clock,
                    writer,
                    rotation,
                    pass_bytes_max,
                    events,
                    in_flight: Vec::new(),
                };
                let shared = Arc::clone(&driver.shared);
                // A panic in a machine is a bug; it must still release every caller
                // with the poison, never leave one parked for good.
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| driver.run()));
                if let Err(panic) = ran {
                    shared.poison_after_panic(&*panic);
                    wake(std::mem::take(&mut driver.in_flight));
                }
            })
            .map_err(|source| Error::Io {
                action: "spawning the writer thread for",
                path: ".".into(),
                source,
            })?;
        Ok(WriteRuntime {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues a batch and waits until it is as durable as asked.
    pub(crate) fn submit(
        &self,
        records: Vec<LogRecord>,
        durability: Durability,
        when_full: WhenFull,
    ) -> Result<SeqRange> {
        let shared = &*self.shared;
        let size = request_size(&records);
        let mut state = shared.lock();
        // The dispatcher signals `room` when it retires logs; the timeout only guards
        // against a signal sent between the check and the wait.
        while !shared.admit(&mut state, size, when_full)? {
            state = shared
                .room
                .wait_timeout(state, Duration::from_millis(10))
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let waiter =
            (durability != Durability::None).then(|| Waiter::Thread(std::thread::current()));
        let mut index = shared.index.lock().unwrap_or_else(|e| e.into_inner());
        let range = shared.enqueue(&mut state, &mut index, records, durability, waiter);
        drop(index);
        drop(state);
        self.wait(range, durability)
    }

    /// Queues a sync barrier and waits for it: every request queued before is then
    /// `Sync`-durable. Costs one fdatasync when the log holds unsynced bytes, none
    /// otherwise; never waits for the key store.
    pub(crate) fn sync(&self) -> Result<()> {
        let waiter = Waiter::Thread(std::thread::current());
        let last = self
            .shared
            .enqueue_barrier(&mut self.shared.lock(), waiter)?;
        self.wait(
            SeqRange {
                first: last + 1,
                last,
            },
            Durability::Sync,
        )
        .map(|_| ())
    }

    /// Parks until `range` is as durable as asked. The writer stores the level before it
    /// unparks this thread, and an unpark that comes before the park makes the park
    /// return at once: no wake-up is lost.
    fn wait(&self, range: SeqRange, durability: Durability) -> Result<SeqRange> {
        loop {
            if let Some(settled) = self.shared.settled(range, durability) {
                return settled;
            }
            // Timed, so that a caller whose wake-up was lost to a bug still sees the
            // poison.
            std::thread::park_timeout(CALLER_RECHECK);
        }
    }

    /// The async form of [`WriteRuntime::submit`] (always waiting for room).
    pub(crate) fn submit_async(
        &self,
        records: Vec<LogRecord>,
        durability: Durability,
    ) -> Submission<'_> {
        Submission {
            shared: &self.shared,
            step: Step::Queue(records, durability),
        }
    }

    /// The async form of [`WriteRuntime::sync`].
    pub(crate) fn sync_async(&self) -> Submission<'_> {
        Submission {
            shared: &self.shared,
            step: Step::Barrier,
        }
    }

    /// What a flush queued now waits for (the queue decides: see
    /// [`SubmitQueue::flush_upto`]).
    pub(crate) fn flush_upto(&self) -> u64 {
        self.shared.lock().queue.flush_upto()
    }

    /// Asks the writer to rotate once every seq up to `upto` is written, without waiting
    /// for the interval.
    pub(crate) fn request_rotation(&self, upto: u64) -> Result<()> {
        let mut state = self.shared.lock();
        if let Some(poisoned) = &state.poisoned {
            return Err(Error::Poisoned(poisoned.0.clone()));
        }
        state.rotation_asked = state.rotation_asked.max(upto);
        self.shared.wake_writer(&mut state);
        Ok(())
    }

    /// A handle that wakes callers waiting for the backlog to shrink.
    pub(crate) fn room_signal(&self) -> RoomSignal {
        RoomSignal(Arc::clone(&self.shared))
    }

    /// The poison, if the writer is poisoned.
    pub(crate) fn poisoned(&self) -> Option<Error> {
        self.shared
            .acks
            .poisoned
            .load(Ordering::SeqCst)
            .then(|| self.shared.poison_error())
    }

    /// Writes and syncs everything queued, stops the writer thread and waits for it.
    /// Returns the poison if the store was poisoned.
    pub(crate) fn close(&mut self) -> Result<()> {
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        self.shared.wake_room();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                let failure = Failure::without_cause("the writer thread panicked");
                return Err(Error::Poisoned(failure));
            }
        }
        if self.shared.acks.poisoned.load(Ordering::SeqCst) {
            return Err(self.shared.poison_error());
        }
        Ok(())
    }
}

impl Drop for WriteRuntime {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The writer thread's loop: passes, acknowledgements, rotation.
struct WriterDriver<F: Fs, C: Clock> {
    shared: Arc<Shared>,
    fs: Arc<F>,
    clock: Arc<C>,
    writer: Writer<F>,
    rotation: Rotation,
    pass_bytes_max: usize,
    events: std::sync::mpsc::Sender<DispatchEvent>,
    /// The pass being written: kept here, not on the stack, so that callers of a pass
    /// the writer panicked in are still woken with the poison.
    in_flight: Vec<Request<Option<Waiter>>>,
}

impl<F: Fs, C: Clock> WriterDriver<F, C> {
    fn run(&mut self) {
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        loop {
            if state.poisoned.is_some() {
                break;
            }
            // The request goes to the machine that decides when to rotate.
            self.rotation
                .request(std::mem::take(&mut state.rotation_asked));
            if let Some(upto) = state.queue.lease_wanted() {
                state = self.extend_lease(&shared, state, upto);
                continue;
            }
            if !state.queue.is_empty() {
                state = self.write_pass(&shared, state);
            } else if state.closing {
                state = self.seal_at_close(&shared, state);
                break;
            } else {
                let now = self.clock.now();
                if let Some(wait_us) = self.rotation.poll_timeout(now, &self.writer) {
                    // Woken early by a submit, a request or the close.
                    let wait_us = wait_us.clamp(1_000, 1_000_000);
                    state.writer_idle = true;
                    state = shared
                        .work
                        .wait_timeout(state, Duration::from_micros(wait_us))
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|e| e.into_inner().0);
                    state.writer_idle = false;
                    continue;
                }
            }
            let now = self.clock.now();
            if self.rotation.is_due(now, &self.writer) {
                state = self.rotate(&shared, state, now);
            }
        }
        // Wake everyone still queued (poisoned: they get the poison) and every caller
        // waiting for room.
        let left = state.queue.drain();
        let room = std::mem::take(&mut state.room_wakers);
        drop(state);
        self.publish();
        wake(left);
        wake_all(room);
        shared.room.notify_all();
    }

    /// Makes the seq lease up to `upto` durable, with the lock released, then grants it
    /// (or poisons the store: no seq goes out past a durable reservation).
    fn extend_lease<'a>(
        &mut self,
        shared: &'a Shared,
        state: MutexGuard<'a, WriteState>,
        upto: u64,
    ) -> MutexGuard<'a, WriteState> {
        drop(state);
        let reserved = seq_lease::reserve(&*self.fs, upto);
        let mut state = shared.lock();
        match reserved {
            Ok(()) => {
                state.queue.grant_lease(upto);
                drop(state);
                shared.wake_room();
                shared.lock()
            }
            Err(e) => {
                let why = Failure::caused("extending the seq lease", e);
                shared.poison(&mut state, Poisoned(why));
                state
            }
        }
    }

    /// Takes a pass from the queue and writes it with the lock released; wakes its
    /// callers (and those waiting for the room it made).
    fn write_pass<'a>(
        &mut self,
        shared: &'a Shared,
        mut state: MutexGuard<'a, WriteState>,
    ) -> MutexGuard<'a, WriteState> {
        self.in_flight = state.queue.take_pass(self.pass_bytes_max);
        let room = std::mem::take(&mut state.room_wakers);
        drop(state);
        wake_all(room);
        shared.room.notify_all();
        let outcome = {
            let _pass =
                tracing::debug_span!("writer_pass", requests = self.in_flight.len()).entered();
            self.writer.write_pass(&self.in_flight)
        };
        let pass = std::mem::take(&mut self.in_flight);
        match outcome {
            Ok(outcome) => {
                let c = &shared.counters;
                c.appends.fetch_add(outcome.records, Ordering::Relaxed);
                c.payload_bytes
                    .fetch_add(outcome.payload_bytes, Ordering::Relaxed);
                c.passes.fetch_add(1, Ordering::Relaxed);
                if outcome.synced {
                    c.fsyncs.fetch_add(1, Ordering::Relaxed);
                }
                self.publish();
                wake(pass);
                shared.lock()
            }
            Err(poisoned) => {
                let mut state = shared.lock();
                shared.poison(&mut state, poisoned);
                wake(pass);
                state
            }
        }
    }

    /// At a clean close, nothing left queued: seals the log (its last fdatasync) and gives
    /// the rest of the seq lease back.
    fn seal_at_close<'a>(
        &mut self,
        shared: &'a Shared,
        state: MutexGuard<'a, WriteState>,
    ) -> MutexGuard<'a, WriteState> {
        let give_back = state.queue.lease_at_close();
        drop(state);
        let synced = self.writer.seal();
        let mut state = shared.lock();
        match synced {
            Ok(true) => {
                shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(poisoned) => shared.poison(&mut state, poisoned),
        }
        // Best effort: if it fails, the next open only starts further on.
        if let (Some(upto), None) = (give_back, &state.poisoned) {
            let _ = seq_lease::reserve(&*self.fs, upto);
        }
        state
    }

    /// Rotates the active log at `now`, with the lock released, and tells the dispatcher
    /// of the finished log.
    fn rotate<'a>(
        &mut self,
        shared: &'a Shared,
        state: MutexGuard<'a, WriteState>,
        now: Timestamp,
    ) -> MutexGuard<'a, WriteState> {
        let asked = self.rotation.requested_upto();
        drop(state);
        let rotated = {
            let _rotation = tracing::debug_span!("rotation", asked).entered();
            self.rotation.rotate(&*self.fs, &mut self.writer, now)
        };
        let mut state = shared.lock();
        match rotated {
            Ok(Rotated::Finished { log, synced }) => {
                let c = &shared.counters;
                c.rotations.fetch_add(1, Ordering::Relaxed);
                c.logs_waiting.fetch_add(1, Ordering::SeqCst);
                // The dispatcher may have stopped (closing); nothing to tell then.
                let last_seq = self.writer.last_seq();
                let _ = self
                    .events
                    .send(DispatchEvent::LogFinished { log, last_seq });
                if synced {
                    c.fsyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Rotated::Empty) => {}
            Err(poisoned) => shared.poison(&mut state, poisoned),
        }
        self.publish();
        state
    }

    /// Publishes the writer's levels: what it wrote and what it synced.
    fn publish(&self) {
        let written = self.writer.last_seq();
        let synced = self.writer.synced_upto();
        let acks = &self.shared.acks;
        debug_assert!(synced <= written, "nothing is synced before it is written");
        self.shared
            .counters
            .written_seq
            .fetch_max(written, Ordering::Relaxed);
        acks.written.fetch_max(written, Ordering::SeqCst);
        acks.synced.fetch_max(synced, Ordering::SeqCst);
    }
}

/// A request's size as the queue bounds it: its records and their encoded bytes.
fn request_size(records: &[LogRecord]) -> (usize, usize) {
    let encoded_len = records.iter().map(LogRecord::encoded_len).sum();
    (records.len(), encoded_len)
}

/// Wakes the callers of `requests`, after their levels (or the poison) are published.
fn wake(requests: Vec<Request<Option<Waiter>>>) {
    for request in requests {
        if let Some(waiter) = request.token {
            waiter.wake();
        }
    }
}

/// The lock if it is free now (a poisoned one too: the data stays consistent).
fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

fn wake_all(wakers: Vec<Waker>) {
    for waker in wakers {
        waker.wake();
    }
}

/// What an async write has done so far.
enum Step {
    /// Not queued yet: waiting for room (or not polled yet).
    Queue(Vec<LogRecord>, Durability),
    /// A sync barrier, not queued yet.
    Barrier,
    /// Queued, with the seqs it was given: waiting until they are as durable as asked.
    Wait(SeqRange, Durability, Arc<TaskWake>),
    /// Resolved; polling again is a bug of the caller's executor.
    Done,
}

/// An async write: queued at its first poll that finds room, resolved once it is as
/// durable as asked.
///
/// Dropping it before that first poll queues nothing. Dropping it later does not take
/// the write back: it is in the writer's queue, and is written, acknowledged to no one,
/// and applied exactly as if its caller had waited. It is never queued twice.
pub(crate) struct Submission<'a> {
    shared: &'a Shared,
    step: Step,
}

impl Submission<'_> {
    /// Queues the write if there is room; `None` while it must wait for room.
    fn queue(&mut self, waker: &Waker) -> Option<Result<()>> {
        let shared = self.shared;
        // Never block the executor's thread on a lock: a holder the OS descheduled would
        // stall every task of that thread (timers included). Yield, and be polled again.
        let Some(mut state) = try_lock(&shared.state) else {
            waker.wake_by_ref();
            return None;
        };
        let queued = match std::mem::replace(&mut self.step, Step::Done) {
            Step::Queue(records, durability) => {
                let size = request_size(&records);
                match shared.admit(&mut state, size, WhenFull::Wait) {
                    Err(e) => Err(e),
                    Ok(false) => {
                        if !state.room_wakers.iter().any(|w| w.will_wake(waker)) {
                            state.room_wakers.push(waker.clone());
                        }
                        self.step = Step::Queue(records, durability);
                        return None;
                    }
                    Ok(true) => {
                        let Some(mut index) = try_lock(&shared.index) else {
                            self.step = Step::Queue(records, durability);
                            drop(state);
                            waker.wake_by_ref();
                            return None;
                        };
                        let task = TaskWake::new(waker);
                        let waiter = (durability != Durability::None)
                            .then(|| Waiter::Task(Arc::clone(&task)));
                        let range =
                            shared.enqueue(&mut state, &mut index, records, durability, waiter);
                        Ok(Step::Wait(range, durability, task))
                    }
                }
            }
            Step::Barrier => {
                let task = TaskWake::new(waker);
                shared
                    .enqueue_barrier(&mut state, Waiter::Task(Arc::clone(&task)))
                    .map(|last| {
                        Step::Wait(
                            SeqRange {
                                first: last + 1,
                                last,
                            },
                            Durability::Sync,
                            task,
                        )
                    })
            }
            Step::Wait(..) | Step::Done => unreachable!("a write is queued once"),
        };
        drop(state);
        Some(queued.map(|step| self.step = step))
    }
}

impl Future for Submission<'_> {
    type Output = Result<SeqRange>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if matches!(this.step, Step::Queue(..) | Step::Barrier) {
            match this.queue(cx.waker()) {
                None => return Poll::Pending,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                Some(Ok(_)) => {}
            }
        }
        let Step::Wait(range, durability, task) = &this.step else {
            panic!("a resolved write polled again");
        };
        let (range, durability) = (*range, *durability);
        // Register first, then look: the writer publishes the level before it wakes, so
        // a wake-up between the two is not lost.
        task.register(cx.waker());
        match this.shared.settled(range, durability) {
            Some(settled) => {
                this.step = Step::Done;
                Poll::Ready(settled)
            }
            None => Poll::Pending,
        }
    }
}
