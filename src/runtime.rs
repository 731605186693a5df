//! The threads and the shared state that drive the machines in production.
//!
//! Callers push into the [`SubmitQueue`] under one mutex and, unless their durability is
//! `None`, wait on a condvar until the writer thread reports their last seq written
//! (`Buffered`) or synced (`Sync`). Acknowledgement is by level, not by request: a pass
//! publishes "every seq up to N is written/synced", so one notify serves a whole group.
//! This is the only module that spawns threads or sleeps.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::fs::Fs;
use crate::machine::rotation::{Rotated, Rotation};
use crate::machine::writer::{LogRecord, Poisoned, SeqRange, SubmitQueue, Writer};
use crate::options::Durability;

/// Counters the threads bump and `Store::stats` reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub appends: AtomicU64,
    pub payload_bytes: AtomicU64,
    pub passes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub rotations: AtomicU64,
    pub logs_waiting: AtomicU64,
}

/// What callers and the writer thread share under one lock.
struct WriteState {
    queue: SubmitQueue,
    /// Every seq at or below is written to the OS.
    written: u64,
    /// Every seq at or below is fdatasync'd.
    synced: u64,
    poisoned: Option<Poisoned>,
    closing: bool,
}

struct Shared {
    state: Mutex<WriteState>,
    /// The writer waits here for work.
    work: Condvar,
    /// Callers wait here for room in the queue.
    room: Condvar,
    /// Callers wait here for their seqs to be written or synced.
    acked: Condvar,
    counters: Arc<Counters>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, WriteState> {
        // The writer thread never panics while holding the lock (its machines return
        // errors); if it ever did, the queue is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writer thread and its handle.
pub(crate) struct WriteRuntime {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Whether a submit waits for room or fails at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WhenFull {
    Wait,
    Fail,
}

impl WriteRuntime {
    /// Starts the writer thread over a recovered writer.
    pub(crate) fn start<F: Fs, C: Clock>(
        fs: Arc<F>,
        clock: Arc<C>,
        writer: Writer<F>,
        rotation: Rotation,
        queue_bytes_max: usize,
        pass_bytes_max: usize,
        counters: Arc<Counters>,
    ) -> Result<Self> {
        let last_seq = writer.last_seq();
        let shared = Arc::new(Shared {
            state: Mutex::new(WriteState {
                queue: SubmitQueue::new(last_seq + 1, queue_bytes_max),
                written: last_seq,
                synced: last_seq,
                poisoned: None,
                closing: false,
            }),
            work: Condvar::new(),
            room: Condvar::new(),
            acked: Condvar::new(),
            counters,
        });
        let thread_shared = Arc::clone(&shared);
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
                };
                driver.run();
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
        let encoded_len = records.iter().map(LogRecord::encoded_len).sum();
        let mut state = self.shared.lock();
        loop {
            if let Some(poisoned) = &state.poisoned {
                return Err(Error::Poisoned(poisoned.0.clone()));
            }
            if state.closing {
                return Err(Error::Closed);
            }
            if state.queue.has_room(encoded_len) {
                break;
            }
            if when_full == WhenFull::Fail {
                return Err(Error::QueueFull);
            }
            state = self.shared.room.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        let range = state.queue.push(records, durability);
        self.shared.work.notify_one();
        loop {
            let level = match durability {
                Durability::None => return Ok(range),
                Durability::Buffered => state.written,
                Durability::Sync => state.synced,
            };
            if level >= range.last {
                return Ok(range);
            }
            if let Some(poisoned) = &state.poisoned {
                return Err(Error::Poisoned(poisoned.0.clone()));
            }
            state = self.shared.acked.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Writes and syncs everything queued, stops the writer thread and waits for it.
    /// Returns the poison if the store was poisoned.
    pub(crate) fn close(&mut self) -> Result<()> {
        self.shared.lock().closing = true;
        self.shared.work.notify_all();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                return Err(Error::Poisoned("the writer thread panicked".into()));
            }
        }
        match &self.shared.lock().poisoned {
            Some(poisoned) => Err(Error::Poisoned(poisoned.0.clone())),
            None => Ok(()),
        }
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
}

impl<F: Fs, C: Clock> WriterDriver<F, C> {
    fn run(&mut self) {
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        loop {
            if state.poisoned.is_some() {
                break;
            }
            if !state.queue.is_empty() {
                let pass = state.queue.take_pass(self.pass_bytes_max);
                shared.room.notify_all();
                drop(state);
                let outcome = self.writer.write_pass(&pass);
                drop(pass);
                state = shared.lock();
                match outcome {
                    Ok(outcome) => {
                        let c = &shared.counters;
                        c.appends.fetch_add(outcome.records, Ordering::Relaxed);
                        c.payload_bytes.fetch_add(outcome.payload_bytes, Ordering::Relaxed);
                        c.passes.fetch_add(1, Ordering::Relaxed);
                        state.written = outcome.last_seq;
                        if outcome.synced {
                            c.fsyncs.fetch_add(1, Ordering::Relaxed);
                            state.synced = outcome.last_seq;
                        }
                    }
                    Err(poisoned) => state.poisoned = Some(poisoned),
                }
                shared.acked.notify_all();
            } else if state.closing {
                drop(state);
                let synced = self.writer.sync();
                state = shared.lock();
                match synced {
                    Ok(did) => {
                        if did {
                            shared.counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                        }
                        state.synced = self.writer.last_seq();
                    }
                    Err(poisoned) => state.poisoned = Some(poisoned),
                }
                shared.acked.notify_all();
                break;
            } else {
                let now = self.clock.now();
                if !self.rotation.is_due(now, self.writer.log()) {
                    let wait_us = self.rotation.deadline().micros_since(now).clamp(1_000, 1_000_000);
                    state = shared
                        .work
                        .wait_timeout(state, Duration::from_micros(wait_us))
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|e| e.into_inner().0);
                    continue;
                }
            }
            let now = self.clock.now();
            if self.rotation.is_due(now, self.writer.log()) {
                drop(state);
                let rotated = self.rotation.rotate(&*self.fs, &mut self.writer, now);
                state = shared.lock();
                match rotated {
                    Ok(Rotated::Finished { synced, .. }) => {
                        let c = &shared.counters;
                        c.rotations.fetch_add(1, Ordering::Relaxed);
                        c.logs_waiting.fetch_add(1, Ordering::Relaxed);
                        if synced {
                            c.fsyncs.fetch_add(1, Ordering::Relaxed);
                        }
                        state.synced = self.writer.last_seq();
                    }
                    Ok(Rotated::Empty) => {}
                    Err(poisoned) => state.poisoned = Some(poisoned),
                }
                shared.acked.notify_all();
            }
        }
        drop(state);
        // Wake everyone still waiting: they see the poison or the close.
        shared.acked.notify_all();
        shared.room.notify_all();
    }
}
