//! Checks of the machines' upkeep and timeouts after a step, each from the model or the
//! files alone: the pending index's trim, the logs found at open, the index memory bound,
//! and the pacing's and rotation's timeouts.

use super::*;

/// The pending index's trim after a retirement, all at once (`step_ops` 0) or in steps of
/// `step_ops` as the runtime does it; then nothing at or below the watermark is pending.
pub(super) fn trim_index(
    index: &mut PendingIndex,
    trim: IndexTrim,
    step_ops: usize,
    watermark: u64,
) -> Step<()> {
    // Without a step size, all at once.
    if let Some(full_steps) = index.len().checked_div(step_ops) {
        let steps_max = full_steps + 1;
        let mut steps = 1;
        while trim.step(index, step_ops) {
            steps += 1;
            if steps > steps_max {
                return Err(StepError::Oracle(format!(
                    "the index's trim to {watermark} took more than {steps_max} steps of {step_ops}"
                )));
            }
        }
    } else {
        trim.apply(index);
    }
    match index.oldest_seq() {
        Some(oldest) if oldest <= watermark => Err(StepError::Oracle(format!(
            "after the trim to watermark {watermark}, seq {oldest} is still pending"
        ))),
        _ => Ok(()),
    }
}

/// The bytes of each partition `work` has records for.
pub(super) fn partition_lens(keys: &KeyStore, work: &[CommitWork]) -> BTreeMap<u32, u64> {
    (work.iter().flat_map(|w| &w.records))
        .map(|r| writelog::keystore::partition_for(&r.key, keys.partitions()))
        .map(|p| (p, keys.partition(p).segments.iter().map(|s| s.len).sum()))
        .collect()
}

/// After a pass, a partition it wrote a run to (`before`: the bytes of those it had
/// records for) holds no more index memory than its share of the bound
/// (`Options::index_memory_max` over the partitions), or its delta is folded into a
/// checkpoint. (One it only skipped duplicates for keeps what it held, which opening may
/// have rebuilt past the bound from the runs after a checkpoint a crash lost.)
pub(super) fn check_index_bound(
    keys: &KeyStore,
    before: BTreeMap<u32, u64>,
    bound: u64,
) -> Step<()> {
    for (partition, len) in before {
        let part = keys.partition(partition);
        let grown = part.segments.iter().map(|s| s.len).sum::<u64>() != len;
        if grown && part.index_bytes() > bound && part.has_delta() {
            return Err(StepError::Oracle(format!(
                "after a pass, partition {partition} holds {} bytes of index, past its share \
                 {bound}, and a delta no checkpoint took",
                part.index_bytes()
            )));
        }
    }
    Ok(())
}

/// The dispatcher settles the logs found at open when the model does: a flush after open
/// waits for them, and for no longer.
pub(super) fn check_found_at_open(dispatcher: &Dispatcher, model: Option<LogId>) -> Step<()> {
    if dispatcher.found_at_open_settled() != model.is_none() {
        return Err(StepError::Oracle(format!(
            "the dispatcher says the logs found at open are settled: {}; the model waits for {model:?}",
            dispatcher.found_at_open_settled()
        )));
    }
    Ok(())
}

/// The pacing's timeout agrees with its decision by time alone, as a driver that sleeps
/// on it relies: it is 0 exactly when a hand-out is due now, and a hand-out is due once
/// it has passed (a driver never sleeps through a due hand-out, nor spins before one).
pub(super) fn check_pacing_timeout(pacing: &CommitPacing, now: Timestamp) -> Step<()> {
    let idle = Backlog {
        watermark: u64::MAX,
        logs_not_handed_out: 0,
        pending_bytes: 0,
    };
    let wait = pacing.poll_timeout(now);
    let due_now = pacing.is_due(now, &idle);
    let due_then = pacing.is_due(Timestamp(now.0.saturating_add(wait)), &idle);
    if (wait == 0) != due_now || !due_then {
        return Err(StepError::Oracle(format!(
            "pacing's timeout at {} is {wait} µs, yet a hand-out is due now: {due_now}, \
             once it has passed: {due_then}",
            now.0
        )));
    }
    Ok(())
}

/// The rotation's timeout agrees with its decision, as the writer thread's sleep relies:
/// none exactly when it is due now; without end only while the log is empty; otherwise
/// due once it has passed.
pub(super) fn check_rotation_timeout(
    rotation: &Rotation,
    writer: &Writer<SimFs>,
    now: Timestamp,
) -> Step<()> {
    let due_now = rotation.is_due(now, writer);
    let agrees = match rotation.poll_timeout(now, writer) {
        None => due_now,
        Some(u64::MAX) => !due_now && writer.log().records == 0,
        Some(wait) => !due_now && rotation.is_due(Timestamp(now.0.saturating_add(wait)), writer),
    };
    if !agrees {
        return Err(StepError::Oracle(format!(
            "rotation's timeout at {} is {:?} with {} records in the log, yet due now: {due_now}",
            now.0,
            rotation.poll_timeout(now, writer),
            writer.log().records
        )));
    }
    Ok(())
}
