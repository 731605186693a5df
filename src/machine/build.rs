//! One constructor for every machine, from what recovery found and the options: `Store`
//! and the simulator build the submit queue, writer, rotation, dispatcher, pacing,
//! committers and the pending index the same way, so a difference between the two cannot
//! hide a bug.

use crate::clock::Timestamp;
use crate::fs::Fs;
use crate::index::PendingIndex;
use crate::keystore::KeyStore;
use crate::machine::commit::Committer;
use crate::machine::compact::CompactPolicy;
use crate::machine::dispatch::Dispatcher;
use crate::machine::pacing::CommitPacing;
use crate::machine::recovery::Recovered;
use crate::machine::rotation::Rotation;
use crate::machine::submit_queue::SubmitQueue;
use crate::machine::writer::Writer;
use crate::options::Options;

/// Every machine of a store, built and ready to be driven; `T` is the driver's token for
/// whoever waits on a request.
pub struct Machines<F: Fs, T> {
    /// The submit queue: seqs go on after recovery's, within its durable seq lease.
    pub queue: SubmitQueue<T>,
    /// The group-commit writer, on the fresh active log.
    pub writer: Writer<F>,
    /// When the active log rotates.
    pub rotation: Rotation,
    /// Routes finished logs (each one recovery found is expected).
    pub dispatcher: Dispatcher,
    /// When the dispatcher hands logs out.
    pub pacing: CommitPacing,
    /// One per committer, each with the compaction policy.
    pub committers: Vec<Committer<F>>,
    /// Every record of the finished logs the key store does not hold yet.
    pub index: PendingIndex,
}

impl<F: Fs, T> Machines<F, T> {
    /// Builds them from `recovered` (what recovery found, over the key store `keys`) and
    /// `options` (not validated here: the store validates them before it opens), at `now`.
    pub fn build(
        recovered: Recovered<F>,
        keys: &KeyStore,
        options: &Options,
        now: Timestamp,
    ) -> Self {
        let mut index = PendingIndex::new();
        for record in &recovered.unapplied {
            index.insert(record.seq, record.kind, &record.key, &record.payload);
        }
        let watermark = keys.watermark();
        // Everything the backlog bound lets wait may go out in one hand-out, so that a
        // pass covers as many logs as are waiting.
        let mut dispatcher = Dispatcher::new(
            options.committers,
            keys.partitions(),
            options.recovery_mode,
            watermark,
            options.backlog_logs_max,
        );
        for &(log, last_seq) in &recovered.log_last_seqs {
            dispatcher.expect(log, last_seq);
        }
        if let Some(&(last, _)) = recovered.log_last_seqs.last() {
            dispatcher.await_found_at_open(last);
        }
        let committers = committers(options, keys.partitions());
        // Seqs recovery kept room for but no log holds (dropped with damage, or left of
        // the last run's seq lease) are never handed out, and nothing waits for them.
        let queue = SubmitQueue::new(recovered.last_seq + 1, options.queue_bytes_max)
            .leased(recovered.lease)
            .resumed_after(recovered.last_kept_seq);
        Machines {
            queue,
            writer: Writer::new(
                recovered.log,
                recovered.last_seq,
                options.log_prealloc_bytes.min(options.rotate_bytes_max),
            ),
            rotation: Rotation::new(
                options.rotate_interval_ms,
                options.rotate_bytes_max,
                now,
                recovered.last_log_ts,
                recovered.last_seq,
            ),
            dispatcher,
            pacing: CommitPacing::new(
                options.commit_interval_ms,
                options.backlog_logs_max as u64,
                options.backlog_bytes_max as u64,
            ),
            committers,
            index,
        }
    }
}

/// One committer per `options.committers`, each with the compaction policy and its share
/// of the index memory bound over `partitions`.
fn committers<F: Fs>(options: &Options, partitions: u32) -> Vec<Committer<F>> {
    let compaction = CompactPolicy {
        min_bytes: options.compaction_min_bytes,
        space_percent: options.compaction_space_percent,
        retain_records: options.retain_records.unwrap_or(u64::MAX),
        retain_bytes: options.retain_bytes.unwrap_or(u64::MAX),
    };
    let index_delta_bytes_max = options.index_memory_max / u64::from(partitions);
    (0..options.committers)
        .map(|id| {
            Committer::new(
                id,
                options.committers,
                options.segment_bytes_max,
                index_delta_bytes_max,
            )
            .with_compaction(compaction)
        })
        .collect()
}
