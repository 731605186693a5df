//! Scripted runs: a list of operations instead of a seed's schedule (what the `sim_ops`
//! fuzz target feeds the simulator).

use super::*;

/// Keys of a scripted run: `k0` to `k7` (a script's key numbers are taken modulo this).
pub const SCRIPT_KEYS: u8 = 8;
/// A scripted append's payload is cut to this many bytes.
pub const SCRIPT_PAYLOAD_MAX: usize = 256;
/// A scripted batch takes this many of its keys at most.
pub const SCRIPT_BATCH_MAX: usize = 5;

/// One operation of a scripted run: what the `sim_ops` fuzz target feeds the simulator
/// (with the `arbitrary` feature, straight from the fuzzer's bytes). Any value is valid:
/// [`World::run_script`] brings keys, payloads and batches within the script's bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum ScriptOp {
    /// Append `payload` to key `k{key}`.
    Append {
        key: u8,
        payload: Vec<u8>,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = arbitrary_durability))]
        durability: Durability,
    },
    /// Append to several keys atomically.
    Batch {
        keys: Vec<u8>,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = arbitrary_durability))]
        durability: Durability,
    },
    /// Delete key `k{key}`.
    Delete {
        key: u8,
        #[cfg_attr(feature = "arbitrary", arbitrary(with = arbitrary_durability))]
        durability: Durability,
    },
    /// Read key `k{key}` and check it against the model.
    Read { key: u8 },
    /// One writer pass.
    WriterPass,
    /// Rotate the active log (even before its interval).
    Rotate,
    /// Hand the next finished log to the committers.
    Dispatch,
    /// One pass of committer `committer % committers`.
    Commit { committer: u8 },
    /// Retire what every committer is done with.
    Retire,
    /// The process dies.
    Crash,
    /// The machine loses power.
    PowerLoss,
    /// An applied log is put back into `reading/`.
    Replay,
    /// The wall clock moves by this many milliseconds (back when negative).
    Clock { ms: i16 },
    /// A flush asks the machines to hurry (`Store::flush`, without the wait).
    Flush,
    /// Rotate the active log if its rotation machine says it is due.
    RotateIfDue,
}

/// A durability from one byte: `Sync`, `Buffered`, `None` by the byte modulo 3.
#[cfg(feature = "arbitrary")]
fn arbitrary_durability(u: &mut arbitrary::Unstructured<'_>) -> arbitrary::Result<Durability> {
    let byte: u8 = u.arbitrary()?;
    Ok([Durability::Sync, Durability::Buffered, Durability::None][usize::from(byte % 3)])
}

impl World {
    /// A world that runs a script instead of a seeded workload: two committers, no random
    /// faults; `seed` only decides what of the unsynced state a power loss keeps.
    pub fn scripted(seed: u64) -> Self {
        let mut world = World::new(seed, false);
        world.knobs = Knobs {
            committers: 2,
            partitions: 3,
            segment_bytes_max: 4096,
            key_rot_rate: 0.0,
            stale_run_rate: 0.0,
            index_delta_bytes_max: 2048,
            compaction: NO_COMPACTION,
            commit_interval_ms: 0,
            rotate_interval_ms: 5,
            rotate_bytes_max: 4096,
            keys: 8,
            crash_rate: 0.0,
            power_loss_share: 0.0,
            crash_in_recovery: 0.0,
            replay_rate: 0.0,
            clock_back_rate: 0.0,
            clock_jump_rate: 0.0,
            io: IoFaultRates::default(),
            bit_rot_rate: 0.0,
            stale_block_rate: 0.0,
            recovery_mode: RecoveryMode::Strict,
            log_prealloc_bytes: 512,
            crash_on_io_only: false,
            big_payloads: false,
            steps: 0,
            seq_lease: 3,
            queue_bytes_max: 4096,
            // Tight, so that a script can fill the backlog.
            backlog: BacklogBounds {
                logs_max: 4,
                bytes_max: 4096,
            },
            // In steps, as the runtime trims it.
            trim_step_ops: 3,
            committer_takes_one: false,
        };
        world
            .fs
            .set_io_faults(IoFaultRates::default(), ChaCha8Rng::seed_from_u64(0));
        world
    }

    /// Runs `ops` with the oracle after each, then the quiet drain and liveness checks.
    pub fn run_script(mut self, ops: &[ScriptOp]) -> Result<Summary, Failure> {
        self.restart_after(None)?;
        for op in ops {
            self.step += 1;
            let done = match op.clone() {
                ScriptOp::Crash => {
                    self.restart_after(Some(CrashKind::Process))?;
                    Ok(())
                }
                ScriptOp::PowerLoss => {
                    self.restart_after(Some(CrashKind::PowerLoss))?;
                    Ok(())
                }
                ScriptOp::Replay => {
                    self.plant_replay();
                    Ok(())
                }
                ScriptOp::Clock { ms } => {
                    let delta = i64::from(ms) * 1000;
                    self.now = self.now.saturating_add_signed(delta).max(1);
                    Ok(())
                }
                ScriptOp::Append {
                    key,
                    mut payload,
                    durability,
                } => {
                    payload.truncate(SCRIPT_PAYLOAD_MAX);
                    let record = LogRecord {
                        kind: Kind::Append,
                        key: script_key(key),
                        payload,
                    };
                    self.submit_records(vec![record], durability)
                }
                ScriptOp::Batch { keys, durability } if !keys.is_empty() => {
                    let records = keys
                        .iter()
                        .take(SCRIPT_BATCH_MAX)
                        .map(|k| LogRecord {
                            kind: Kind::Append,
                            key: script_key(*k),
                            payload: vec![*k % SCRIPT_KEYS],
                        })
                        .collect();
                    self.submit_records(records, durability)
                }
                ScriptOp::Batch { .. } => Ok(()),
                ScriptOp::Delete { key, durability } => {
                    let record = LogRecord {
                        kind: Kind::Delete,
                        key: script_key(key),
                        payload: Vec::new(),
                    };
                    self.submit_records(vec![record], durability)
                }
                ScriptOp::Read { key } => self.check_key(script_key(key)),
                ScriptOp::WriterPass => self.writer_pass(),
                ScriptOp::Rotate => self.rotate(true),
                ScriptOp::Dispatch => self.dispatch(),
                ScriptOp::Commit { committer } => {
                    self.commit_one(usize::from(committer) % self.knobs.committers)
                }
                ScriptOp::Retire => self.retire(),
                ScriptOp::Flush => self.flush(),
                ScriptOp::RotateIfDue => self.rotate(false),
            };
            match done {
                Ok(()) => {}
                Err(StepError::Oracle(message)) => return Err(self.fail(message)),
                Err(StepError::Crash | StepError::Refused) => {
                    return Err(self.fail("a fault while the script injected none".into()))
                }
            }
        }
        self.drain_and_summarize()
    }
}

/// The key a script's key number names: `k{number % SCRIPT_KEYS}`.
fn script_key(number: u8) -> Vec<u8> {
    format!("k{}", number % SCRIPT_KEYS).into_bytes()
}
