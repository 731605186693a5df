// The body of the `sim_ops` fuzz target, included by `fuzz/fuzz_targets/sim_ops.rs` and by
// the stable replay `sim/tests/fuzz_replay.rs` (it needs the simulator, so it lives apart
// from `fuzz/bodies.rs`, which needs only the store).
//
// An arbitrary sequence of appends, batches, deletes, reads, machine steps, crashes, power
// losses and log replays runs through the simulator; any oracle failure is a finding.

use writelog::Durability;
use writelog_sim::ScriptOp;

/// One fuzzed operation.
#[derive(Debug, arbitrary::Arbitrary)]
pub enum FuzzOp {
    Append { key: u8, payload: Vec<u8>, durability: u8 },
    Batch { keys: Vec<u8>, durability: u8 },
    Delete { key: u8, durability: u8 },
    Read { key: u8 },
    WriterPass,
    Rotate,
    Dispatch,
    Commit { committer: u8 },
    Retire,
    Crash,
    PowerLoss,
    Replay,
    Clock { ms: i16 },
}

/// A fuzzed script: what power losses keep is drawn from `seed`.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct FuzzScript {
    pub seed: u8,
    pub ops: Vec<FuzzOp>,
}

fn durability(d: u8) -> Durability {
    [Durability::Sync, Durability::Buffered, Durability::None][usize::from(d % 3)]
}

/// Runs the script; panics with the oracle's message on a failure.
pub fn sim_ops(script: FuzzScript) {
    const OPS_MAX: usize = 512;
    let ops: Vec<ScriptOp> = script
        .ops
        .into_iter()
        .take(OPS_MAX)
        .map(|op| match op {
            FuzzOp::Append { key, mut payload, durability: d } => {
                payload.truncate(256);
                ScriptOp::Append { key: key % 8, payload, durability: durability(d) }
            }
            FuzzOp::Batch { keys, durability: d } => ScriptOp::Batch {
                keys: keys.into_iter().take(5).map(|k| k % 8).collect(),
                durability: durability(d),
            },
            FuzzOp::Delete { key, durability: d } => ScriptOp::Delete { key: key % 8, durability: durability(d) },
            FuzzOp::Read { key } => ScriptOp::Read { key: key % 8 },
            FuzzOp::WriterPass => ScriptOp::WriterPass,
            FuzzOp::Rotate => ScriptOp::Rotate,
            FuzzOp::Dispatch => ScriptOp::Dispatch,
            FuzzOp::Commit { committer } => ScriptOp::Commit { committer },
            FuzzOp::Retire => ScriptOp::Retire,
            FuzzOp::Crash => ScriptOp::Crash,
            FuzzOp::PowerLoss => ScriptOp::PowerLoss,
            FuzzOp::Replay => ScriptOp::Replay,
            FuzzOp::Clock { ms } => ScriptOp::Clock { ms },
        })
        .collect();
    if let Err(failure) = writelog_sim::run_script(u64::from(script.seed), &ops) {
        panic!("sim_ops: step {}: {}", failure.step, failure.message);
    }
}
