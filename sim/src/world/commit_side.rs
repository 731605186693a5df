//! The commit side's steps, as the commit thread and the committers would drive them:
//! dispatch (the pacing machine deciding when to hand out), committer passes, compaction
//! in a committer's idle time, and retirement.

use super::checks::{
    check_found_at_open, check_index_bound, check_pacing_timeout, partition_lens, trim_index,
};
use super::*;

impl World {
    /// The pacing policy, from the model alone: a hand-out is due while a flush waits for
    /// seqs above the watermark, or the interval passed since the last (or the clock
    /// stepped back behind it, or there was none), or half of either backlog bound is
    /// reached.
    fn pacing_policy(&self, watermark: u64, logs_not_handed_out: u64, pending_bytes: u64) -> bool {
        let interval_us = self.knobs.commit_interval_ms * 1000;
        let interval_passed = self
            .last_handout
            .is_none_or(|last| self.now < last || self.now - last >= interval_us);
        let bounds = self.knobs.backlog;
        self.flush_waits > watermark
            || interval_passed
            || logs_not_handed_out * 2 >= bounds.logs_max
            || pending_bytes * 2 >= bounds.bytes_max
    }

    pub(super) fn dispatch(&mut self) -> Step<()> {
        let names = self.crash_or(self.fs.list(Path::new(READING_DIR)).map_err(io_error))?;
        let logs = LogId::all_in(&names);
        let fs = self.fs.clone();
        let now = Timestamp(self.now);
        let waits = self.flush_waits;
        // As the runtime after every listing: a log found at open and gone is not waited for.
        let found = self.found_at_open;
        let found = found.filter(|last| logs.first().is_some_and(|first| first <= last));
        self.found_at_open = found;
        let node = self.node()?;
        node.dispatcher.note_listing(&logs);
        check_found_at_open(&node.dispatcher, found)?;
        check_pacing_timeout(&node.pacing, now)?;
        node.logs_waiting = logs.len() as u64;
        let Some(name) = node.dispatcher.next_log(&logs) else {
            return Ok(());
        };
        // The pacing machine decides, as in the runtime: a hand-out starts only when due
        // (it covers every log waiting, which the steps that follow dispatch one by one).
        if node.dispatcher.in_flight() == 0 {
            let backlog = Backlog {
                watermark: node.dispatcher.watermark(),
                logs_not_handed_out: logs.len() as u64,
                pending_bytes: node.index.bytes() as u64,
            };
            let due = node.pacing.is_due(now, &backlog);
            let expected = self.pacing_policy(
                backlog.watermark,
                backlog.logs_not_handed_out,
                backlog.pending_bytes,
            );
            if due != expected {
                return Err(StepError::Oracle(format!(
                    "a hand-out is due: {due}, yet the policy says {expected} ({backlog:?}, a \
                     flush waiting for {waits}, the last hand-out at {:?})",
                    self.last_handout
                )));
            }
            if !due {
                return Ok(());
            }
            self.last_handout = Some(self.now);
            self.node()?.pacing.handed_out(now);
        }
        let node = self.node()?;
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
        self.dispatched_logs.insert(name.path());
        self.note(format!(
            "dispatched {name} routed {} dups {}",
            dispatched.routed, dispatched.duplicates
        ));
        Ok(())
    }

    pub(super) fn commit(&mut self) -> Step<()> {
        let pick = self.rng.random_range(0..self.knobs.committers);
        self.commit_one(pick)
    }

    /// Committer `id` takes everything in its inbox in one pass.
    pub(super) fn commit_one(&mut self, id: usize) -> Step<()> {
        let fs = self.fs.clone();
        let index_bound = self.knobs.index_delta_bytes_max;
        let one_share = self.knobs.committer_takes_one;
        let node = self.node()?;
        if node.inbox[id].is_empty() {
            return Ok(());
        }
        // All of the inbox, or (in some seeds) one hand-out's share: the rest then waits,
        // as the runtime's next hand-out does when it arrives during a pass (busy).
        let take = if one_share { 1 } else { node.inbox[id].len() };
        let work: Vec<CommitWork> = node.inbox[id].drain(..take).collect();
        let before = partition_lens(&node.keys, &work);
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
        check_index_bound(&node.keys, before, index_bound)?;
        self.summary.checkpoints += outcome.checkpoints;
        self.note(format!(
            "committer {id} applied {} skipped {} checkpoints {}",
            outcome.applied, outcome.skipped, outcome.checkpoints
        ));
        self.compact_if_due(id)
    }

    /// After a pass, as the runtime does when a committer is idle: compacts the partition
    /// of committer `id`'s that its policy says is due, if any.
    pub(super) fn compact_if_due(&mut self, id: usize) -> Step<()> {
        let fs = self.fs.clone();
        let policy = self.knobs.compaction;
        let committers = self.knobs.committers;
        let node = self.node()?;
        // Busy when the committer's inbox holds more work (as the runtime sees it).
        let busy = !node.inbox[id].is_empty();
        let due = node.committers[id].partition_due(&node.keys, &policy, busy);
        let expected = compaction_policy(&node.keys, &policy, (id, committers), busy);
        if due != expected {
            return Err(StepError::Oracle(format!(
                "committer {id} (busy: {busy}) finds partition {due:?} due for compaction; \
                 the policy model says {expected:?}"
            )));
        }
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

    pub(super) fn retire(&mut self) -> Step<()> {
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
        let step_ops = self.knobs.trim_step_ops;
        let found = self.found_at_open;
        let found = found.filter(|last| finished.logs.last() < Some(last));
        self.found_at_open = found;
        let node = self.node()?;
        let trim = match node.dispatcher.finish(&fs, &node.keys, &finished) {
            Ok(trim) => trim,
            Err(_) if self.is_fault() => return Err(StepError::Crash),
            Err(e) => return Err(StepError::from(e)),
        };
        if trim.upto() != finished.watermark {
            return Err(StepError::Oracle(format!(
                "the index's trim goes to {}, the logs retired to watermark {}",
                trim.upto(),
                finished.watermark
            )));
        }
        trim_index(&mut node.index, trim, step_ops, finished.watermark)?;
        node.logs_waiting = node.logs_waiting.saturating_sub(finished.logs.len() as u64);
        check_found_at_open(&node.dispatcher, found)?;
        let settled = node.dispatcher.found_at_open_settled();
        // A flush returns once its seqs are applied and every log found at open is retired.
        if self.flush_waits <= finished.watermark && settled {
            self.flush_waits = 0;
        }
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
}

/// The compaction policy, from the options and the partitions' sizes alone: of committer
/// `id`'s partitions (`p % committers == id`) without damage found, the largest (the first
/// of equals) whose bytes reach both `min_bytes` and `space_percent` of what it held
/// after its last compaction, each a quarter higher when work waits (`busy`).
fn compaction_policy(
    keys: &KeyStore,
    policy: &CompactPolicy,
    (id, committers): (usize, usize),
    busy: bool,
) -> Option<u32> {
    let quarter_more = |x: u64| if busy { x.saturating_add(x / 4) } else { x };
    let mut best: Option<(u64, u32)> = None;
    for partition in (0..keys.partitions()).filter(|p| *p as usize % committers == id) {
        let part = keys.partition(partition);
        if part.damage_found {
            continue;
        }
        let bytes: u64 = part.segments.iter().map(|s| s.len).sum();
        let after_last = u64::from(part.compacted_kib) * 1024;
        let grown = after_last.saturating_mul(quarter_more(u64::from(policy.space_percent))) / 100;
        let due = bytes >= quarter_more(policy.min_bytes) && bytes >= grown;
        if due && best.is_none_or(|(most, _)| bytes > most) {
            best = Some((bytes, partition));
        }
    }
    best.map(|(_, partition)| partition)
}
