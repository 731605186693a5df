//! The `raw` baseline: the least work any durable log can do. One thread takes every
//! queued record, writes them length-prefixed with one write, fdatasyncs once, and unparks
//! exactly the callers it made durable (the same wake-up the store uses, so the ratio
//! measures the work, not the wake-up). No rotation, no checksums, no seqs, no validation.
//! What the store's writer is measured against. Its file is preallocated, as the issue's
//! reference baseline is.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct RawState {
    queued: Vec<u8>,
    waiters: Vec<std::thread::Thread>,
    queued_upto: u64,
    failed: Option<String>,
    closing: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<RawState>,
    work: Condvar,
    durable_upto: std::sync::atomic::AtomicU64,
}

/// A running raw log.
pub struct RawLog {
    shared: std::sync::Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

impl RawLog {
    /// Creates `dir/raw.log`, preallocated with `prealloc` zero bytes written and synced
    /// (so that an fdatasync within them has no size change to commit), and starts its
    /// writer thread, which writes from the start of the file.
    pub fn open(dir: &Path, prealloc: u64) -> std::io::Result<RawLog> {
        let mut file = File::create(dir.join("raw.log"))?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = prealloc;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
        let shared = std::sync::Arc::new(Shared::default());
        let thread_shared = std::sync::Arc::clone(&shared);
        let writer = std::thread::spawn(move || {
            let shared = thread_shared;
            let mut batch = Vec::new();
            let mut waiters = Vec::new();
            loop {
                let upto = {
                    let mut state = shared.state.lock().unwrap();
                    while state.queued.is_empty() && !state.closing {
                        state = shared.work.wait(state).unwrap();
                    }
                    if state.queued.is_empty() {
                        return;
                    }
                    std::mem::swap(&mut batch, &mut state.queued);
                    std::mem::swap(&mut waiters, &mut state.waiters);
                    state.queued_upto
                };
                let result = file.write_all(&batch).and_then(|()| file.sync_data());
                batch.clear();
                let failed = result.is_err();
                match result {
                    Ok(()) => shared
                        .durable_upto
                        .store(upto, std::sync::atomic::Ordering::SeqCst),
                    Err(e) => shared.state.lock().unwrap().failed = Some(e.to_string()),
                }
                for waiter in waiters.drain(..) {
                    waiter.unpark();
                }
                if failed {
                    return;
                }
            }
        });
        Ok(RawLog {
            shared,
            writer: Some(writer),
        })
    }

    /// Appends one record and returns once it is fdatasync'd.
    pub fn append(&self, key: &[u8], payload: &[u8]) -> Result<(), String> {
        let mut state = self.shared.state.lock().unwrap();
        let len = (key.len() + payload.len()) as u32;
        state.queued.extend_from_slice(&len.to_le_bytes());
        state.queued.extend_from_slice(key);
        state.queued.extend_from_slice(payload);
        state.queued_upto += 1;
        state.waiters.push(std::thread::current());
        let ticket = state.queued_upto;
        self.shared.work.notify_one();
        drop(state);
        while self
            .shared
            .durable_upto
            .load(std::sync::atomic::Ordering::SeqCst)
            < ticket
        {
            if let Some(failed) = &self.shared.state.lock().unwrap().failed {
                return Err(failed.clone());
            }
            std::thread::park();
        }
        Ok(())
    }
}

impl Drop for RawLog {
    fn drop(&mut self) {
        self.shared.state.lock().unwrap().closing = true;
        self.shared.work.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The `direct` baseline, the design writelog replaces: every append opens its key's own
/// file, appends the length-prefixed record, fdatasyncs and closes it.
pub struct DirectFiles {
    dir: std::path::PathBuf,
}

impl DirectFiles {
    /// Files go in `dir/direct/`.
    pub fn open(dir: &Path) -> std::io::Result<DirectFiles> {
        let dir = dir.join("direct");
        std::fs::create_dir_all(&dir)?;
        Ok(DirectFiles { dir })
    }

    /// Appends one record to its key's file and returns once it is fdatasync'd.
    pub fn append(&self, key: &[u8], payload: &[u8]) -> Result<(), String> {
        let name: String = key.escape_ascii().to_string().replace('/', "_");
        let mut record = Vec::with_capacity(4 + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(payload);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(name))
            .map_err(|e| e.to_string())?;
        file.write_all(&record).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())
    }
}
