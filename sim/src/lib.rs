//! `writelog-sim`: a seeded, single-threaded simulator that drives writelog's machines over
//! a simulated file system, crashes them on purpose, and checks every step and every
//! restart against a reference model. See docs/ARCHITECTURE.md, "The simulator".

pub mod simfs;
pub mod world;

pub use world::{Failure, ScriptOp, Summary, World};

/// Runs a script (see [`ScriptOp`]) with the oracle; `seed` decides what power losses keep.
pub fn run_script(seed: u64, ops: &[ScriptOp]) -> Result<Summary, Failure> {
    World::scripted(seed).run_script(ops)
}

/// Runs one seed. A panic inside the run (an invariant assertion of a machine) is a
/// failure of that seed, reported like an oracle failure.
pub fn run_seed(seed: u64, trace: bool) -> Result<Summary, Failure> {
    std::panic::catch_unwind(|| World::new(seed, trace).run()).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        Err(Failure {
            step: 0,
            message: format!("panicked: {message}"),
            trace: Vec::new(),
        })
    })
}
