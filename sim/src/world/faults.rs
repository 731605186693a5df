//! Faults: crashes and power losses with the restart after them, replayed logs, bit rot
//! and stale blocks in finished logs, and damage in the key store (rot, stale runs).

use super::*;

/// A corruption planted in a finished log, remembered so that a refusal can be told from
/// a false alarm and repaired, and so that a retired copy kept for replays is pristine.
#[derive(Clone, Debug)]
pub(super) struct Corruption {
    /// The log, `reading/tx-….log`.
    pub(super) path: PathBuf,
    /// Its bytes before the fault.
    pub(super) pristine: Vec<u8>,
}

/// A fault planted in the key store (a segment or the MANIFEST): the region it changed,
/// as it was and as planted, so a refusal can be told from a false alarm and repaired
/// (the file may have grown since, so only the region is put back).
#[derive(Clone, Debug)]
pub(super) struct KeyDamage {
    pub(super) path: PathBuf,
    pub(super) offset: usize,
    pub(super) original: Vec<u8>,
    pub(super) planted: Vec<u8>,
    /// For a file replaced whole (the MANIFEST) or removed whole (a checkpoint): its
    /// bytes just after the fault. It is repaired only while it still holds exactly them.
    pub(super) whole: Option<Vec<u8>>,
}

impl KeyDamage {
    /// Puts the region back. A segment's damaged region lies in what the MANIFEST made
    /// durable, which is never cut or written over, so it still holds what was planted; a
    /// MANIFEST or checkpoint replaced since holds other bytes and needs no repair.
    pub(super) fn repair(&self, fs: &SimFs) {
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

/// The runs of a segment's bytes, as (offset, length), up to the first that does not
/// decode.
pub(super) fn segment_runs(bytes: &[u8]) -> Vec<(usize, usize)> {
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

impl World {
    /// When tracing: the active log and the MANIFEST as the file system holds them.
    fn trace_log_and_manifest(&mut self, when: &str) {
        if !self.trace_on {
            return;
        }
        for path in [
            writelog::machine::WRITING_LOG,
            writelog::keystore::manifest::MANIFEST_FILE,
        ] {
            let described = self.fs.describe(Path::new(path));
            self.trace.push(format!("    {when}: {described}"));
        }
    }

    /// Applies a crash (if any), recovers (crashing again inside recovery when the seed
    /// says so), and checks the recovered state against the model.
    pub(super) fn restart_after(&mut self, crash: Option<CrashKind>) -> Result<(), Failure> {
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
                self.trace_log_and_manifest("before restart");
                self.fs.restart(kind, &mut self.rng);
                self.trace_log_and_manifest("after restart");
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
    pub(super) fn plant_replay(&mut self) {
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

    /// A fault of the medium in a finished log: a flipped bit, or (`stale`) a copy of an
    /// applied log's block spliced in at a block boundary, its checksum intact. Under
    /// `PointInTime` and `SkipCorrupt` the seqs the mode may drop join `maybe_lost`.
    pub(super) fn plant_corruption(&mut self, stale: bool) {
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
        // Batches the mode drops whole: none of a log no committer got can be in the key
        // store in part.
        let whole: Vec<Vec<u64>> = match (self.knobs.recovery_mode, hit, from) {
            (RecoveryMode::SkipCorrupt, Some(i), _) => vec![batches[i].2.clone()],
            (RecoveryMode::PointInTime, _, Some(i)) => {
                batches[i..].iter().map(|b| b.2.clone()).collect()
            }
            _ => Vec::new(),
        };
        if !self.dispatched_logs.contains(&path) {
            self.whole_batches
                .extend(whole.into_iter().filter(|seqs| seqs.len() > 1));
        }
        self.corruptions.push(Corruption {
            path,
            pristine: bytes,
        });
    }

    /// One intact block of a retired log, bytes and all.
    pub(super) fn stale_block(&mut self) -> Option<Vec<u8>> {
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
    pub(super) fn plant_key_damage(&mut self, stale: bool) {
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
    pub(super) fn describe_runs(&self) -> Vec<String> {
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
}
