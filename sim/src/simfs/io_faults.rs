//! The injected I/O errors: their rates, their counts, and the draws that decide each
//! call's fate (a failed fdatasync, a failed or short read, a full disk, a short write).

use std::io;

use rand::RngExt;

use super::State;

/// The rate of each injected I/O error, each on its own switch (0 turns it off). None of
/// them crashes: the call fails, the process goes on, and the store must fail cleanly
/// (poison, refuse, or return the error) without losing anything it acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct IoFaultRates {
    /// An fdatasync or a directory fsync fails with EIO; the unsynced writes stay
    /// unsynced (a later power loss decides them).
    pub sync_eio: f64,
    /// A read, a length or a listing fails with EIO.
    pub read_eio: f64,
    /// A read stops short. `Fs::read` returns a whole file, and `RealFs` reads until the
    /// end of file, so a short read can only surface as an error (`UnexpectedEof`), never
    /// as a shorter file: what the store must not mistake for a torn tail.
    pub short_read: f64,
    /// A write fails with EIO after writing a random prefix of its bytes (a short write).
    pub write_eio: f64,
    /// The disk fills for a spell of calls: writes write a prefix and fail with ENOSPC,
    /// creates fail with ENOSPC.
    pub enospc: f64,
}

/// How many of each injected I/O error were answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoFaultCounts {
    /// fdatasyncs and directory fsyncs answered with EIO.
    pub sync_eio: u64,
    /// Reads, lengths and listings answered with EIO.
    pub read_eio: u64,
    /// Reads that stopped short.
    pub short_reads: u64,
    /// Writes answered with EIO (each after a short write).
    pub write_eio: u64,
    /// Writes and creates answered with ENOSPC.
    pub enospc: u64,
    /// Failed writes that left a non-empty prefix in the file.
    pub short_writes: u64,
}

impl State {
    /// Draws `true` with probability `rate` from the fault stream (no draw at rate 0, so
    /// a switch that is off leaves the stream alone).
    pub(super) fn draw(&mut self, rate: f64) -> bool {
        match self.fault_rng.as_mut() {
            Some(rng) if rate > 0.0 => rng.random_bool(rate),
            _ => false,
        }
    }

    /// Counts an injected error for the world to see.
    pub(super) fn inject(
        &mut self,
        count: impl FnOnce(&mut IoFaultCounts),
        error: io::Error,
    ) -> io::Error {
        count(&mut self.injected);
        self.injected_unseen += 1;
        error
    }

    /// Draws whether this sync fails with EIO.
    pub(super) fn sync_fault(&mut self) -> io::Result<()> {
        if self.draw(self.rates.sync_eio) {
            return Err(self.inject(
                |c| c.sync_eio += 1,
                io::Error::other("simulated EIO on sync"),
            ));
        }
        Ok(())
    }

    /// Draws whether this read, length or listing fails, with EIO or short.
    pub(super) fn read_fault(&mut self) -> io::Result<()> {
        if self.draw(self.rates.read_eio) {
            return Err(self.inject(
                |c| c.read_eio += 1,
                io::Error::other("simulated EIO on read"),
            ));
        }
        if self.draw(self.rates.short_read) {
            return Err(self.inject(
                |c| c.short_reads += 1,
                io::Error::new(io::ErrorKind::UnexpectedEof, "simulated short read"),
            ));
        }
        Ok(())
    }

    /// Whether the disk is full for this call (starting a spell at the ENOSPC rate).
    pub(super) fn disk_full(&mut self) -> bool {
        if self.disk_full_calls == 0 && self.draw(self.rates.enospc) {
            let spell = match self.fault_rng.as_mut() {
                Some(rng) => rng.random_range(1..40),
                None => 1,
            };
            self.disk_full_calls = spell;
        }
        if self.disk_full_calls > 0 {
            self.disk_full_calls -= 1;
            return true;
        }
        false
    }

    /// Draws whether this write fails, and if so how many of its `len` bytes it wrote
    /// first (a short write) and the error.
    pub(super) fn write_fault(&mut self, len: usize) -> Option<(usize, io::Error)> {
        let error = if self.disk_full() {
            self.inject(
                |c| c.enospc += 1,
                io::Error::new(io::ErrorKind::StorageFull, "simulated ENOSPC"),
            )
        } else if self.draw(self.rates.write_eio) {
            self.inject(
                |c| c.write_eio += 1,
                io::Error::other("simulated EIO on write"),
            )
        } else {
            return None;
        };
        let written = match self.fault_rng.as_mut() {
            Some(rng) => rng.random_range(0..=len),
            None => 0,
        };
        if written > 0 {
            self.injected.short_writes += 1;
        }
        Some((written, error))
    }
}
