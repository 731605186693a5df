#![no_main]
include!("../bodies_sim.rs");

libfuzzer_sys::fuzz_target!(|script: FuzzScript| sim_ops(script));
