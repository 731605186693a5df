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
        let bounds = self.knobs.backlog;
        let node = self.node()?;
        let encoded: usize = records.iter().map(LogRecord::encoded_len).sum();
        let load = BacklogLoad {
            logs_waiting: node.logs_waiting,
            pending_bytes: node.index.bytes() as u64,
        };
        // The model's view of the bounds.
        let backlogged =
            load.logs_waiting >= bounds.logs_max || load.pending_bytes >= bounds.bytes_max;
        // The store's admission rule, as `Store` runs it.
        if let Admission::Held(held) = node.queue.admit((records.len(), encoded), load, bounds) {
            // Held: the request is dropped, as a caller who gave up. The writer's next
            // step extends a lease that ran short; a full pending memory rotates the log.
            if let Some(upto) = held.rotate_upto {
                node.rotation.request(upto);
            }
            self.summary.backlogged += u64::from(held.rotate_upto.is_some());
            // Oracle input, from the model: with the pending memory full, the log must
            // rotate once every record queued is written (its records cannot be applied,
            // and their memory freed, before), whatever the interval.
            if load.pending_bytes >= bounds.bytes_max {
                self.rotation_asked = self.rotation_asked.max(self.last_record_seq);
            }
            return self.check_held(held, (records.len(), encoded), backlogged, load);
        }
        // The backlog bounds hold: nothing is admitted past either.
        if backlogged {
            return Err(StepError::Oracle(format!(
                "a request admitted with {load:?} waiting, past the bounds {bounds:?}"
            )));
        }
        let first = node.queue.next_seq();
        let range = node
            .queue
            .push_indexed(&mut node.index, records.clone(), durability, first);
        // Released at once if the writer machine says so (`None`: when queued).
        let acked = node.writer.released_upto(durability) >= range.last;
        self.handed_upto = self.handed_upto.max(range.last);
        self.last_record_seq = range.last;
        self.queued.push_back(encoded as u64);
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

    /// Checks a request of `(records, encoded)` held by admission against the model: it
    /// is held only for a reason (else its caller would wait for nothing): the backlog is
    /// full (`backlogged`, with `load` waiting), the queue's bytes are, or its seqs pass
    /// the lease; held short of lease exactly then, and only once half a lease is spent.
    fn check_held(
        &mut self,
        held: Held,
        (records, encoded): (usize, usize),
        backlogged: bool,
        load: BacklogLoad,
    ) -> Step<()> {
        let queue_bytes_max = self.options().queue_bytes_max as u64;
        let queued_bytes: u64 = self.queued.iter().sum();
        let bytes_fit = self.queued.is_empty() || queued_bytes + encoded as u64 <= queue_bytes_max;
        let queue = &self.node()?.queue;
        // The seqs this request needs, and whether they are leased.
        let needs = queue.next_seq() - 1 + records as u64;
        let (leased, half) = (queue.lease().covers(needs), queue.lease().seqs / 2);
        if !backlogged && bytes_fit && leased {
            return Err(StepError::Oracle(format!(
                "a request of {records} records ({encoded} bytes) was held with room: \
                 {load:?} within {:?}, {queued_bytes} bytes queued, its seqs leased",
                self.knobs.backlog
            )));
        }
        if held.lease_short == leased {
            return Err(StepError::Oracle(format!(
                "a request held short of lease: {}, yet its seqs are leased: {leased}",
                held.lease_short
            )));
        }
        if !leased {
            // Oracle input: the writer's next step must lease these seqs.
            self.lease_demand = self.lease_demand.max(needs);
            // The writer's last step left at least half a lease (and one seq) unspent: a
            // request waits for it only once those seqs are taken.
            let asked = self.handed_since_lease_step + records as u64;
            if asked <= half + 1 {
                return Err(StepError::Oracle(format!(
                    "a request of {records} seqs waits for the lease, with {} taken since the \
                     writer's last step and half a lease ({half}) left then",
                    self.handed_since_lease_step
                )));
            }
        }
        Ok(())
    }

    /// A flush (`Store::flush`), as `Store` asks it of the machines: the queue says what
    /// it waits for (checked against the model), the rotation and pacing machines are
    /// asked to hurry, and the steps that follow must not keep it waiting (the rotation
    /// and pacing policies checked in `rotate` and `dispatch`) until the watermark
    /// reaches it.
    pub(super) fn flush(&mut self) -> Step<()> {
        let model = self.last_record_seq;
        let node = self.node()?;
        let upto = node.queue.flush_upto();
        if upto != model {
            return Err(StepError::Oracle(format!(
                "a flush would wait for seq {upto}; the last record queued or kept is {model}"
            )));
        }
        let watermark = node.dispatcher.watermark();
        if watermark >= upto {
            return Ok(());
        }
        node.rotation.request(upto);
        node.pacing.hurry(upto);
        self.flush_waits = self.flush_waits.max(upto);
        self.rotation_asked = self.rotation_asked.max(upto);
        self.summary.flushes += 1;
        self.note(format!("flush waits for {upto}"));
        Ok(())
    }

    /// Queues a sync barrier (`Store::sync`): once its pass is done, every seq queued
    /// before it must survive a power loss, whatever durability it asked for.
    pub(super) fn submit_sync_barrier(&mut self) -> Step<()> {
        let last_out = self.last_handed_out();
        let node = self.node()?;
        let covers = node.queue.push_sync_barrier(BARRIER_TOKEN);
        self.queued.push_back(0);
        // A barrier covers every seq handed out before it (`Store::sync` waits for them).
        if covers != last_out {
            return Err(StepError::Oracle(format!(
                "a sync barrier covers seqs up to {covers}, yet seq {last_out} was the last \
                 handed out"
            )));
        }
        self.note(format!("sync barrier covering up to {covers}"));
        Ok(())
    }
}
