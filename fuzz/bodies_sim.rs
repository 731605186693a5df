// The body of the `sim_ops` fuzz target, included by `fuzz/fuzz_targets/sim_ops.rs` and by
// the stable replay `sim/tests/fuzz_replay.rs` (it needs the simulator, so it lives apart
// from `fuzz/bodies.rs`, which needs only the store).
//
// An arbitrary sequence of appends, batches, deletes, reads, machine steps, crashes, power
// losses and log replays runs through the simulator; any oracle failure is a finding. The
// script is the simulator's own `ScriptOp`, decoded by its `arbitrary` feature.

use writelog_sim::ScriptOp;

/// A fuzzed script: what power losses keep is drawn from `seed`.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct FuzzScript {
    pub seed: u8,
    pub ops: Vec<ScriptOp>,
}

/// Runs the script; panics with the oracle's message on a failure.
pub fn sim_ops(script: FuzzScript) {
    const OPS_MAX: usize = 512;
    let ops = &script.ops[..script.ops.len().min(OPS_MAX)];
    if let Err(failure) = writelog_sim::run_script(u64::from(script.seed), ops) {
        panic!("sim_ops: step {}: {}", failure.step, failure.message);
    }
}
