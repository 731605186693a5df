//! The simulator's command line: `writelog-sim --seeds 0..1000`, `--seed N --trace`.
#![allow(clippy::disallowed_methods)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "writelog-sim",
    about = "Crash writelog on purpose, seed by seed"
)]
struct Cli {
    /// A range of seeds, `A..B`.
    #[arg(long, default_value = "0..1000")]
    seeds: String,
    /// One seed (overrides --seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Print the step-by-step story of each seed run.
    #[arg(long)]
    trace: bool,
    /// Threads to spread seeds over (each seed runs on one thread).
    #[arg(long, default_value_t = std::thread::available_parallelism().map(usize::from).unwrap_or(1))]
    jobs: usize,
}

fn parse_range(text: &str) -> Option<(u64, u64)> {
    let (a, b) = text.split_once("..")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (start, end) = match cli.seed {
        Some(seed) => (seed, seed + 1),
        None => match parse_range(&cli.seeds) {
            Some(range) => range,
            None => {
                eprintln!("error: --seeds takes A..B");
                return ExitCode::FAILURE;
            }
        },
    };
    let started = Instant::now();
    let next = AtomicU64::new(start);
    let totals = Mutex::new((
        writelog_sim::Summary::default(),
        0u64,
        Vec::<(u64, String)>::new(),
    ));
    std::thread::scope(|s| {
        for _ in 0..cli.jobs.max(1) {
            s.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= end {
                    return;
                }
                let result = writelog_sim::run_seed(seed, cli.trace);
                let mut totals = totals.lock().unwrap_or_else(|e| e.into_inner());
                match result {
                    Ok(summary) => {
                        if cli.trace || cli.seed.is_some() {
                            println!(
                                "seed {seed}: ok, digest {:016x}, {summary:?}",
                                summary.digest
                            );
                        }
                        let t = &mut totals.0;
                        t.steps += summary.steps;
                        t.submitted += summary.submitted;
                        t.process_crashes += summary.process_crashes;
                        t.power_losses += summary.power_losses;
                        t.crashes_in_recovery += summary.crashes_in_recovery;
                        t.crashes_mid_io += summary.crashes_mid_io;
                        t.replays += summary.replays;
                        t.clock_steps_back += summary.clock_steps_back;
                        t.clock_jumps_ahead += summary.clock_jumps_ahead;
                        t.io.sync_eio += summary.io.sync_eio;
                        t.io.read_eio += summary.io.read_eio;
                        t.io.short_reads += summary.io.short_reads;
                        t.io.write_eio += summary.io.write_eio;
                        t.io.short_writes += summary.io.short_writes;
                        t.io.enospc += summary.io.enospc;
                        t.reads_failed += summary.reads_failed;
                        t.bit_rots += summary.bit_rots;
                        t.stale_blocks += summary.stale_blocks;
                        t.refusals += summary.refusals;
                        t.checks += summary.checks;
                        t.checkpoints += summary.checkpoints;
                        t.compactions += summary.compactions;
                        t.retained_out += summary.retained_out;
                        t.flushes += summary.flushes;
                        t.backlogged += summary.backlogged;
                        totals.1 += 1;
                    }
                    Err(failure) => {
                        for line in &failure.trace {
                            println!("{line}");
                        }
                        totals
                            .2
                            .push((seed, format!("step {}: {}", failure.step, failure.message)));
                    }
                }
            });
        }
    });
    let (t, passed, failures) = totals.into_inner().unwrap_or_else(|e| e.into_inner());
    let seconds = started.elapsed().as_secs_f64();
    for (seed, message) in &failures {
        println!("FAILED seed {seed} at {message}");
        println!("  replay: cargo run -p writelog-sim --release -- --seed {seed} --trace");
    }
    let run = passed + failures.len() as u64;
    println!(
        "{run} seeds in {seconds:.1}s ({:.0} seeds/s on {} threads): {passed} passed, {} failed",
        run as f64 / seconds.max(1e-9),
        cli.jobs,
        failures.len()
    );
    println!(
        "  steps {}, requests {}, oracle checks {}",
        t.steps, t.submitted, t.checks
    );
    println!(
        "  faults: process crashes {}, power losses {}, crashes in recovery {}, crashes with I/O in \
         flight {}, replayed logs {}, clock steps back {}, clock jumps ahead {}",
        t.process_crashes, t.power_losses, t.crashes_in_recovery, t.crashes_mid_io, t.replays,
        t.clock_steps_back, t.clock_jumps_ahead
    );
    println!(
        "  I/O errors: EIO on sync {}, EIO on read {}, short reads {}, EIO on write {}, ENOSPC {}, \
         short writes {}, reads answered with an error {}",
        t.io.sync_eio, t.io.read_eio, t.io.short_reads, t.io.write_eio, t.io.enospc,
        t.io.short_writes, t.reads_failed
    );
    println!(
        "  corruption: bit rots {}, stale blocks {}, refused by Strict {}",
        t.bit_rots, t.stale_blocks, t.refusals
    );
    println!(
        "  key store: index checkpoints {}, compactions {}, records dropped by retention {}",
        t.checkpoints, t.compactions, t.retained_out
    );
    println!(
        "  requests: flushes waiting {}, held by a full pending memory {}",
        t.flushes, t.backlogged
    );
    println!("simulator: {passed} passed, {} failed", failures.len());
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
