//! The workload: appends, batches, deletes, truncates and sync barriers, submitted to the
//! writer machine's queue and remembered by the model.

use super::*;

/// The token of a sync barrier's request (other requests carry their first seq).
pub(super) const BARRIER_TOKEN: u64 = u64::MAX;

/// A request as the model knows it.
#[derive(Clone, Debug)]
pub(super) struct Submitted {
    pub(super) records: Vec<LogRecord>,
    /// Whether the caller was answered (for `None`: when queued).
    pub(super) acked: bool,
}

impl World {
    pub(super) fn submit(&mut self) -> Step<()> {
        let keys = self.knobs.keys;
        let key = |rng: &mut ChaCha8Rng| format!("k{}", rng.random_range(0..keys)).into_bytes();
        let payload = |rng: &mut ChaCha8Rng, big: bool| {
            let len = if big && rng.random_bool(0.1) {
                rng.random_range(1000..5000)
            } else {
                rng.random_range(0..40)
            };
            (0..len)
                .map(|_| rng.random_range(0..=255u32) as u8)
                .collect::<Vec<u8>>()
        };
        let big = self.knobs.big_payloads;
        let next_seq = self.node()?.queue.next_seq();
        let records: Vec<LogRecord> = match self.rng.random_range(0..10u32) {
            0 if self.rng.random_bool(0.5) => vec![LogRecord {
                kind: Kind::Delete,
                key: key(&mut self.rng),
                payload: Vec::new(),
            }],
            // Keep from a recent seq, now and then one past the key's newest record.
            0 => vec![LogRecord {
                kind: Kind::Truncate,
                key: key(&mut self.rng),
                payload: writelog::format::truncate_payload(
                    next_seq.saturating_sub(self.rng.random_range(0..40)) + 2,
                ),
            }],
            1..3 => (0..self.rng.random_range(2..5))
                .map(|_| LogRecord {
                    kind: Kind::Append,
                    key: key(&mut self.rng),
                    payload: payload(&mut self.rng, big),
                })
                .collect(),
            _ => vec![LogRecord {
                kind: Kind::Append,
                key: key(&mut self.rng),
                payload: payload(&mut self.rng, big),
            }],
        };
        let durability =
            [Durability::Sync, Durability::Buffered, Durability::None][self.rng.random_range(0..3)];
        self.submit_records(records, durability)
    }

    /// Queues one request, enters it in the pending index and the model.
    pub(super) fn submit_records(
        &mut self,
        records: Vec<LogRecord>,
        durability: Durability,
    ) -> Step<()> {
        for record in &records {
            self.keys_used.insert(record.key.clone());
        }
        let node = self.node()?;
        let encoded: usize = records.iter().map(LogRecord::encoded_len).sum();
        if !node.queue.has_room(records.len(), encoded) {
            // Full, or short of lease: the writer's next step extends it (the request
            // is dropped, as a caller who gave up).
            if node.queue.wants_lease_for(records.len()) {
                // Oracle input, reckoned here: the seqs this request needs.
                let needs = node.queue.next_seq() - 1 + records.len() as u64;
                let half = node.queue.lease().seqs / 2;
                self.lease_demand = self.lease_demand.max(needs);
                // The writer's last step left at least half a lease (and one seq) unspent:
                // a request waits for it only once those seqs are taken.
                let asked = self.handed_since_lease_step + records.len() as u64;
                if asked <= half + 1 {
                    return Err(StepError::Oracle(format!(
                        "a request of {} seqs waits for the lease, with {} taken since the \
                         writer's last step and half a lease ({half}) left then",
                        records.len(),
                        self.handed_since_lease_step
                    )));
                }
            }
            return Ok(());
        }
        let first = node.queue.next_seq();
        for (i, record) in records.iter().enumerate() {
            node.index
                .insert(first + i as u64, record.kind, &record.key, &record.payload);
        }
        let range = node.queue.push(records.clone(), durability, first);
        // Released at once if the writer machine says so (`None`: when queued).
        let acked = node.writer.released_upto(durability) >= range.last;
        self.handed_upto = self.handed_upto.max(range.last);
        self.handed_since_lease_step += range.last - range.first + 1;
        self.history
            .insert(range.first, Submitted { records, acked });
        if acked {
            self.require(durability, range.last);
        }
        self.summary.submitted += 1;
        self.note(format!(
            "submit {}..={} {durability:?}",
            range.first, range.last
        ));
        Ok(())
    }

    /// Queues a sync barrier (`Store::sync`): once its pass is done, every seq queued
    /// before it must survive a power loss, whatever durability it asked for.
    pub(super) fn submit_sync_barrier(&mut self) -> Step<()> {
        let node = self.node()?;
        let covers = node.queue.push_sync_barrier(BARRIER_TOKEN);
        self.note(format!("sync barrier covering up to {covers}"));
        Ok(())
    }
}
