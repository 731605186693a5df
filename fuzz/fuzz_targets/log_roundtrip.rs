#![no_main]
include!("../bodies.rs");

libfuzzer_sys::fuzz_target!(|log: FuzzLog| log_roundtrip(log));
