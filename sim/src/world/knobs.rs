//! The knobs: what a seed picks (options, fault mix, workload size), each from the seed's
//! streams, and the store options they make.

use super::*;

/// The knobs a seed picks.
#[derive(Clone, Debug)]
pub(super) struct Knobs {
    pub(super) committers: usize,
    /// Key-store partitions of a store this seed creates.
    pub(super) partitions: u32,
    /// A committer starts a new segment past this many bytes.
    pub(super) segment_bytes_max: u64,
    /// Per step: a bit flipped in the durable bytes of a segment, an index checkpoint or
    /// the MANIFEST.
    pub(super) key_rot_rate: f64,
    /// A partition's changed index entries past this many bytes become a checkpoint.
    pub(super) index_delta_bytes_max: u64,
    /// Per step: a segment's run overwritten by an earlier run of the same segment, its
    /// checksums intact (a misdirected write).
    pub(super) stale_run_rate: f64,
    /// When a committer compacts a partition after a pass (`min_bytes` `u64::MAX`:
    /// never).
    pub(super) compaction: CompactPolicy,
    /// The dispatcher's pacing interval on the simulated clock (0: always due).
    pub(super) commit_interval_ms: u64,
    pub(super) rotate_interval_ms: u64,
    pub(super) rotate_bytes_max: u64,
    pub(super) keys: u32,
    pub(super) crash_rate: f64,
    pub(super) power_loss_share: f64,
    pub(super) crash_in_recovery: f64,
    pub(super) replay_rate: f64,
    pub(super) clock_back_rate: f64,
    pub(super) clock_jump_rate: f64,
    pub(super) io: IoFaultRates,
    pub(super) bit_rot_rate: f64,
    pub(super) stale_block_rate: f64,
    pub(super) recovery_mode: RecoveryMode,
    /// Zeros the writer writes ahead in the active log (0: none).
    pub(super) log_prealloc_bytes: u64,
    pub(super) crash_on_io_only: bool,
    pub(super) big_payloads: bool,
    pub(super) steps: u64,
    /// Seqs the store reserves durably ahead (`Options::seq_lease`): small ones extend
    /// the lease every few passes, and 3 (below the workload's batches of up to 4) makes
    /// requests wait for it before half of it is spent.
    pub(super) seq_lease: u64,
    /// The backlog bounds (`Options::backlog_logs_max`, `backlog_bytes_max`): admission
    /// holds requests past them, pacing hurries past half of either.
    pub(super) backlog: BacklogBounds,
    /// The submit queue's byte bound (`Options::queue_bytes_max`): small in some seeds,
    /// so that requests wait for the writer.
    pub(super) queue_bytes_max: usize,
    /// The pending index's trim after a retirement, in steps of this many operations as
    /// the runtime does it (0: all at once).
    pub(super) trim_step_ops: usize,
    /// A committer pass takes one piece of work from its inbox, not all of it, so that
    /// work waits during the compaction that may follow (a busy committer).
    pub(super) committer_takes_one: bool,
}

impl Knobs {
    /// The knobs of `seed`, and the seed's main stream after them (the workload and the
    /// schedule go on drawing from it).
    pub(super) fn draw(seed: u64) -> (Knobs, ChaCha8Rng) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let knobs = Knobs {
            committers: rng.random_range(1..=4),
            partitions: 1,
            segment_bytes_max: 1 << 20,
            key_rot_rate: 0.0,
            stale_run_rate: 0.0,
            index_delta_bytes_max: 2048,
            compaction: NO_COMPACTION,
            commit_interval_ms: 0,
            rotate_interval_ms: [1, 5, 20, 100][rng.random_range(0..4)],
            rotate_bytes_max: [4096, 16384, 1 << 20][rng.random_range(0..3)],
            keys: [1, 3, 8, 40][rng.random_range(0..4)],
            crash_rate: [0.0, 0.002, 0.01, 0.03][rng.random_range(0..4)],
            power_loss_share: [0.0, 0.5, 1.0][rng.random_range(0..3)],
            crash_in_recovery: [0.0, 0.3][rng.random_range(0..2)],
            replay_rate: [0.0, 0.02][rng.random_range(0..2)],
            clock_back_rate: [0.0, 0.01][rng.random_range(0..2)],
            clock_jump_rate: [0.0, 0.005][rng.random_range(0..2)],
            io: IoFaultRates {
                sync_eio: [0.0, 0.0, 0.003, 0.02][rng.random_range(0..4)],
                ..IoFaultRates::default()
            },
            bit_rot_rate: 0.0,
            stale_block_rate: 0.0,
            recovery_mode: RecoveryMode::Strict,
            log_prealloc_bytes: 0,
            crash_on_io_only: rng.random_bool(0.5),
            big_payloads: rng.random_bool(0.2),
            steps: rng.random_range(200..1200),
            seq_lease: seq_lease::SEQ_LEASE_DEFAULT,
            backlog: BACKLOG,
            queue_bytes_max: Options::default().queue_bytes_max,
            trim_step_ops: 0,
            committer_takes_one: false,
        };
        // The later fault kinds come from a stream of their own, so that adding them left
        // every earlier seed's draws (and its story, when they are off) as it was.
        let mut more = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0002);
        let pick = |rng: &mut ChaCha8Rng, rates: &[f64]| rates[rng.random_range(0..rates.len())];
        let mut knobs = knobs;
        knobs.io.read_eio = pick(&mut more, &[0.0, 0.0, 0.002, 0.01]);
        knobs.io.short_read = pick(&mut more, &[0.0, 0.0, 0.002]);
        knobs.io.write_eio = pick(&mut more, &[0.0, 0.0, 0.003, 0.02]);
        knobs.io.enospc = pick(&mut more, &[0.0, 0.0, 0.001, 0.005]);
        knobs.bit_rot_rate = pick(&mut more, &[0.0, 0.0, 0.003, 0.01]);
        knobs.stale_block_rate = pick(&mut more, &[0.0, 0.0, 0.003]);
        knobs.recovery_mode = [
            RecoveryMode::Strict,
            RecoveryMode::Strict,
            RecoveryMode::PointInTime,
            RecoveryMode::SkipCorrupt,
        ][more.random_range(0..4)];
        knobs.log_prealloc_bytes = [0, 64, 512, 4096][more.random_range(0..4)];
        // The key store's knobs, from a stream of their own (as above).
        let mut keys = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0003);
        knobs.partitions = [1, 2, 3, 8][keys.random_range(0..4)];
        knobs.segment_bytes_max = [4096, 16384, 1 << 20][keys.random_range(0..3)];
        knobs.key_rot_rate = pick(&mut keys, &[0.0, 0.0, 0.003, 0.01]);
        knobs.stale_run_rate = pick(&mut keys, &[0.0, 0.0, 0.003]);
        knobs.index_delta_bytes_max = [1, 256, 1 << 30][keys.random_range(0..3)];
        // Three seeds in four compact, some after every pass that grows a partition.
        knobs.compaction = CompactPolicy {
            min_bytes: [u64::MAX, 1024, 4096, 16384][keys.random_range(0..4)],
            space_percent: [110, 150, 200][keys.random_range(0..3)],
            retain_records: u64::MAX,
            retain_bytes: u64::MAX,
        };
        knobs.commit_interval_ms = [0, 0, 2, 20][keys.random_range(0..4)];
        // Retention in one `Strict` seed in three (the oracle takes a read that keeps at
        // least that many of the model's newest records; lenient losses are not mixed in).
        // By records, by payload bytes (small payloads are 0..40 bytes), or both.
        let retain = [
            (u64::MAX, u64::MAX),
            (u64::MAX, u64::MAX),
            (2, u64::MAX),
            (5, u64::MAX),
            (u64::MAX, 60),
            (4, 200),
        ][keys.random_range(0..6)];
        if knobs.recovery_mode == RecoveryMode::Strict {
            (
                knobs.compaction.retain_records,
                knobs.compaction.retain_bytes,
            ) = retain;
        }
        // The seq lease, from a stream of its own (as above).
        let mut lease = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0004);
        knobs.seq_lease = [seq_lease::SEQ_LEASE_DEFAULT, 64, 3][lease.random_range(0..3)];
        // Tight backlogs in one seed in four, from a stream of their own (as above): a
        // full pending memory holds requests and asks for a rotation.
        let mut backlog = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0005);
        knobs.backlog = [
            BACKLOG,
            BACKLOG,
            BACKLOG,
            BacklogBounds {
                logs_max: [2, 4][backlog.random_range(0..2)],
                bytes_max: [1024, 8192][backlog.random_range(0..2)],
            },
        ][backlog.random_range(0..4)];
        // A small submit queue in one seed in four, from a stream of its own (as above).
        let mut queue = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0006);
        if queue.random_range(0..4u32) == 0 {
            knobs.queue_bytes_max = [256, 4096][queue.random_range(0..2)];
        }
        // The index trimmed in steps in half the seeds, from a stream of its own (as above).
        let mut trim = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0007);
        knobs.trim_step_ops = [0, 1, 3, 64][trim.random_range(0..4)];
        // Busy committers in one seed in four, from a stream of their own (as above).
        let mut busy = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_FA17_0000_0008);
        knobs.committer_takes_one = busy.random_range(0..4u32) == 0;
        (knobs, rng)
    }
}

/// The backlog bounds of most simulated stores: the dispatcher hands out at most this
/// many logs at once, and its pacing hurries past half of either.
pub(super) const BACKLOG: BacklogBounds = BacklogBounds {
    logs_max: 16,
    bytes_max: 1 << 20,
};

/// A policy under which nothing is ever compacted.
pub(super) const NO_COMPACTION: CompactPolicy = CompactPolicy::NEVER;

impl World {
    /// The store's options as this seed's knobs set them (what `Machines::build` takes).
    pub(super) fn options(&self) -> Options {
        let k = &self.knobs;
        let (retain, retain_bytes) = (k.compaction.retain_records, k.compaction.retain_bytes);
        Options {
            committers: k.committers,
            partitions: k.partitions,
            recovery_mode: k.recovery_mode,
            rotate_interval_ms: k.rotate_interval_ms,
            rotate_bytes_max: k.rotate_bytes_max,
            log_prealloc_bytes: k.log_prealloc_bytes,
            segment_bytes_max: k.segment_bytes_max,
            // The committer's bound is this over the partitions.
            index_memory_max: k
                .index_delta_bytes_max
                .saturating_mul(u64::from(k.partitions)),
            compaction_min_bytes: k.compaction.min_bytes,
            compaction_space_percent: k.compaction.space_percent,
            retain_records: (retain != u64::MAX).then_some(retain),
            retain_bytes: (retain_bytes != u64::MAX).then_some(retain_bytes),
            commit_interval_ms: k.commit_interval_ms,
            seq_lease: k.seq_lease,
            backlog_logs_max: k.backlog.logs_max as usize,
            backlog_bytes_max: k.backlog.bytes_max as usize,
            queue_bytes_max: k.queue_bytes_max,
            ..Options::default()
        }
    }
}
