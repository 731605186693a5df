//! The `writelog` command line: `bench` (the main job), `inspect`, `verify`, `append`,
//! `read`.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use writelog::{Durability, Options, Store};

mod churn;
mod compacted_read;
mod raw;
mod tools;

#[derive(Parser)]
#[command(
    name = "writelog",
    version,
    about = "An embeddable record store with a sequential write path"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Appends records from many threads and reports throughput and latency. Exit status
    /// 0, or 2 on error.
    Bench(BenchArgs),
    /// A long run of appends, truncates and deletes over many keys: reports the disk
    /// held over time against the live bytes, the write amplification and compaction's
    /// share of the committers' time. Exit status 0, or 2 on error.
    Churn(churn::ChurnArgs),
    /// Times reading all the records of one long key after compaction against reading
    /// the same bytes from one file. Exit status 0, or 2 on error.
    CompactedRead(compacted_read::CompactedReadArgs),
    /// Shows a log block by block, or a key-store segment run by run, with the offset and
    /// reason of any damage. Exit status 0 when intact, 1 when damaged, 2 on error.
    Inspect {
        /// A log (`tx.log`, `tx-….log`) or a segment (`keys/p…/seg-….dat`).
        path: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Checks a whole store without changing it: every log block and every byte of the
    /// key store. Tells corruption (a problem) from crash damage past what was made
    /// durable (a note: opening cuts it, nothing acknowledged is lost). Exit status 0
    /// when sound, 1 with the problems found, 2 on error.
    Verify {
        /// The store's directory.
        dir: PathBuf,
    },
    /// Reads every byte of the key store and checks every checksum, without changing
    /// anything. Exit status 0 when no corruption is found, 1 when some is, 2 on error.
    Scrub {
        /// The store's directory.
        dir: PathBuf,
    },
    /// Appends one record (synced) to a store. The payload is VALUE, or the bytes of
    /// `--file`, or standard input when neither is given (or VALUE is `-`). Exit status
    /// 0, or 2 on error (a directory that holds no store is one, unless `--create`).
    Append {
        /// The store's directory.
        dir: PathBuf,
        /// The key.
        key: String,
        /// The payload; `-` or none: standard input.
        value: Option<String>,
        /// Take the payload from this file.
        #[arg(long, conflicts_with = "value")]
        file: Option<PathBuf>,
        /// Create the store if DIR holds none.
        #[arg(long)]
        create: bool,
    },
    /// Prints a key's records, one per line: seq, a tab, the payload (escaped). Exit
    /// status 0, or 2 on error (a directory that holds no store is one).
    Read {
        /// The store's directory.
        dir: PathBuf,
        /// The key.
        key: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Sync,
    Buffered,
    None,
}

impl From<DurabilityArg> for Durability {
    fn from(arg: DurabilityArg) -> Durability {
        match arg {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Buffered => Durability::Buffered,
            DurabilityArg::None => Durability::None,
        }
    }
}

#[derive(clap::Args, Clone)]
struct BenchArgs {
    /// Store directory; a temporary one (removed afterwards) when omitted.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Appending threads.
    #[arg(long, default_value_t = 16)]
    threads: usize,
    /// Records to append in all.
    #[arg(long, default_value_t = 200_000)]
    records: u64,
    /// Append for this many seconds instead of a number of records.
    #[arg(long)]
    seconds: Option<u64>,
    /// Committer threads (default: the store's, one per core).
    #[arg(long)]
    committers: Option<usize>,
    /// The dispatcher's pacing interval in milliseconds (default: the store's).
    #[arg(long)]
    commit_ms: Option<u64>,
    /// Distinct keys.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Payload bytes per record.
    #[arg(long, default_value_t = 100)]
    payload: usize,
    /// Durability of every append.
    #[arg(long, value_enum, default_value = "sync")]
    durability: DurabilityArg,
    /// Rotation interval in milliseconds.
    #[arg(long, default_value_t = 100)]
    rotate_ms: u64,
    /// Zeros the writer writes ahead in the log each time it outgrows it (the store's
    /// `log_prealloc_bytes`; default: the store's default).
    #[arg(long)]
    log_prealloc_bytes: Option<u64>,
    /// Finished logs allowed to wait for the committers before appends block (the
    /// store's `backlog_logs_max`; default: the store's default).
    #[arg(long)]
    backlog_logs: Option<usize>,
    /// Memory the records not yet in the key store may take before appends block (the
    /// store's `backlog_bytes_max`; default: the store's default).
    #[arg(long)]
    backlog_bytes: Option<usize>,
    /// Print the result as one JSON object.
    #[arg(long)]
    json: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Also run the baselines over the same input, interleaved with writelog, and print
    /// the ratios: `raw` (one thread, one write and one fdatasync per queued batch, into a
    /// preallocated file) and `direct` (each append opens its key's file, appends,
    /// fdatasyncs).
    #[arg(long)]
    compare: bool,
    /// Reader threads tailing hot keys while writelog appends: each read is
    /// `Store::tail(key, --tail)` on one of the first `--hot-keys` keys (reads/s and the
    /// read latency are reported).
    #[arg(long, default_value_t = 0)]
    readers: usize,
    /// Keys the readers read (the first of the key space).
    #[arg(long, default_value_t = 100)]
    hot_keys: u64,
    /// Records each read returns: the last this many of its key.
    #[arg(long, default_value_t = 5)]
    tail: usize,
    /// Append exactly one record to every key (`--records` is then `--keys`), each
    /// thread its own share of the key space: a store of many small streams.
    #[arg(long)]
    fill: bool,
    /// After the rounds, time `tail(key, 5)` on a key holding this many records against
    /// a key holding 1,000 (interleaved, on a fresh store of its own).
    #[arg(long)]
    long_key: Option<u64>,
    /// Rounds of each target with --compare; ratios are of the medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Measure a warm store, as a long-lived one is: before timing starts, append one
    /// record to every key (untimed) so that the key files exist, and leave them out of
    /// the counters. `writelog` flushes them into the key store, `direct` creates its
    /// files; `raw` has no per-key state and is not prefilled.
    #[arg(long)]
    warm: bool,
}

/// What a bench round appends to.
enum Target<'a> {
    Writelog(&'a Store),
    Raw(&'a raw::RawLog),
    Direct(&'a raw::DirectFiles),
}

impl Target<'_> {
    fn append(&self, key: &[u8], payload: &[u8]) -> Result<(), String> {
        match self {
            Target::Writelog(store) => store
                .append(key, payload)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Target::Raw(log) => log.append(key, payload),
            Target::Direct(files) => files.append(key, payload),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Target::Writelog(_) => "writelog",
            Target::Raw(_) => "raw",
            Target::Direct(_) => "direct",
        }
    }
}

/// `bench` with every flag at its default: what a bare `writelog` runs.
#[derive(Parser)]
struct DefaultBench {
    #[command(flatten)]
    args: BenchArgs,
}

impl Default for BenchArgs {
    fn default() -> Self {
        DefaultBench::parse_from(["writelog"]).args
    }
}

/// Raises the soft limit on open files to the hard limit, as a program that writes many
/// keys should before it opens a store: committers keep key files open within half of
/// it. Best effort; a failure leaves the limit as it was.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() -> ExitCode {
    // Output into a closed pipe (`| head`) ends the process quietly, as for any tool,
    // rather than as a panic in `println!`.
    // SAFETY: restoring the default disposition of SIGPIPE, before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    raise_open_files_limit();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Bench(BenchArgs::default())) {
        Command::Bench(args) => bench(&args).map(|()| true),
        Command::Churn(args) => churn::run(&args).map(|()| true).map_err(Into::into),
        Command::CompactedRead(args) => compacted_read::run(&args)
            .map(|()| true)
            .map_err(Into::into),
        Command::Inspect { path, json } => tools::inspect(&path, json),
        Command::Verify { dir } => tools::verify(&dir),
        Command::Scrub { dir } => tools::scrub_store(&dir),
        Command::Append {
            dir,
            key,
            value,
            file,
            create,
        } => tools::append(&dir, &key, value.as_deref(), file.as_deref(), create).map(|()| true),
        Command::Read { dir, key } => tools::read(&dir, &key).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The longest append latency the histograms tell apart (a minute, in µs); longer ones
/// are counted as this.
const LATENCY_MAX_US: u64 = 60_000_000;

/// An append-latency histogram in µs, 3 significant digits, up to [`LATENCY_MAX_US`].
/// (Bounds matter: `Histogram::new(3)` starts with a highest trackable value near 2 ms,
/// and `saturating_record` does not grow it, so every slower append was counted as
/// about 2 ms. Found while reading a `direct` p50 of 2 µs at 64 threads.)
fn latency_histogram() -> Result<Histogram<u64>, hdrhistogram::CreationError> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
}

/// A key index for the `i`th append of thread `t`: spread over all keys, deterministic.
fn key_index(t: u64, i: u64, keys: u64) -> u64 {
    let mut x = (t << 40) ^ i ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (x ^ (x >> 31)) % keys.max(1)
}

/// The name of key number `k`: the same in the timed run, the readers and the prefill.
fn key_name(k: u64) -> String {
    format!("key-{k:08}")
}

struct BenchResult {
    target: &'static str,
    seconds: f64,
    appends: u64,
    latency: Histogram<u64>,
    stats: writelog::Stats,
    /// The most finished logs seen waiting while appending (sampled every 100 ms).
    logs_waiting_max: u64,
    /// The same, in the second half of the run only (by time, or by records appended):
    /// not above the whole run's first-half peak when the commit path keeps pace.
    logs_waiting_max_second_half: u64,
    /// Finished logs waiting when the last append returned.
    logs_waiting_end: u64,
    /// Seconds `flush()` took after the last append.
    flush_seconds: f64,
    /// Reads made by the reader threads (writelog only).
    reads: u64,
    /// The process's peak resident set size during the round.
    peak_rss_bytes: u64,
    /// Read latency of the reader threads, in µs (writelog only).
    read_latency: Option<Histogram<u64>>,
    /// What the key store holds after `flush()` (writelog only).
    held: Option<Held>,
}

/// The store on disk after a round's `flush()`, and reopening it.
#[derive(Clone, Copy, Debug, Default)]
struct Held {
    /// Bytes of keys and payloads appended over the store's life (prefill included).
    live_bytes: u64,
    /// Disk blocks the store's files take, in bytes (`st_blocks` × 512).
    disk_bytes: u64,
    /// The files' lengths, summed.
    apparent_bytes: u64,
    /// Seconds `Store::open` took on the closed store (and its close after).
    reopen_seconds: f64,
    /// Memory the key store's index is counted for, after reopening.
    index_bytes: u64,
}

/// Blocks (`st_blocks` × 512) and lengths of every file under `dir`.
fn disk_usage(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut blocks, mut apparent) = (0, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                blocks += meta.blocks() * 512;
                apparent += meta.len();
            }
        }
    }
    Ok((blocks, apparent))
}

impl BenchResult {
    fn appends_per_s(&self) -> f64 {
        self.appends as f64 / self.seconds
    }
}

fn bench(args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    if args.threads == 0 || args.records == 0 {
        return Err("--threads and --records must be positive".into());
    }
    let filled;
    let args = if args.fill {
        filled = BenchArgs {
            records: args.keys,
            seconds: None,
            warm: false,
            ..args.clone()
        };
        &filled
    } else {
        args
    };
    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("writelog-bench-")
                .tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let defaults = Options::default();
    let options = Options {
        durability: args.durability.into(),
        rotate_interval_ms: args.rotate_ms,
        max_record_len: args.payload.max(defaults.max_record_len),
        committers: args.committers.unwrap_or(defaults.committers),
        commit_interval_ms: args.commit_ms.unwrap_or(defaults.commit_interval_ms),
        backlog_bytes_max: args.backlog_bytes.unwrap_or(defaults.backlog_bytes_max),
        backlog_logs_max: args.backlog_logs.unwrap_or(defaults.backlog_logs_max),
        log_prealloc_bytes: args
            .log_prealloc_bytes
            .unwrap_or(defaults.log_prealloc_bytes),
        ..defaults
    };
    let rounds = if args.compare { args.rounds.max(1) } else { 1 };
    let mut results: Vec<BenchResult> = Vec::new();
    let mut round_dirs = Vec::new();
    for round in 0..rounds {
        let round_dir = dir.join(format!("round-{round}"));
        std::fs::create_dir_all(&round_dir)?;
        round_dirs.push(round_dir.clone());
        let store = Store::open(round_dir.join("store"), options.clone())?;
        let before = if args.warm {
            prefill(&Target::Writelog(&store), args)?;
            store.flush()?;
            store.stats()
        } else {
            writelog::Stats::default()
        };
        settle(&round_dir)?;
        reset_peak_memory();
        let mut result = run_appends(&Target::Writelog(&store), args)?;
        result.peak_rss_bytes = peak_memory();
        result.logs_waiting_end = store.stats().logs_waiting;
        let flush_started = Instant::now();
        store.flush()?;
        result.flush_seconds = flush_started.elapsed().as_secs_f64();
        let whole = store.stats();
        result.stats = stats_since(&before, &whole);
        store.close()?;
        result.held = Some(held(
            &round_dir.join("store"),
            &options,
            whole.appends,
            args.payload,
        )?);
        results.push(result);
        if args.compare {
            let log = raw::RawLog::open(&round_dir, prealloc_bytes(args))?;
            settle(&round_dir)?;
            reset_peak_memory();
            let mut result = run_appends(&Target::Raw(&log), args)?;
            result.peak_rss_bytes = peak_memory();
            results.push(result);
            drop(log);
            std::fs::remove_file(round_dir.join("raw.log"))?;
            let files = raw::DirectFiles::open(&round_dir)?;
            if args.warm {
                prefill(&Target::Direct(&files), args)?;
            }
            settle(&round_dir)?;
            reset_peak_memory();
            let mut result = run_appends(&Target::Direct(&files), args)?;
            result.peak_rss_bytes = peak_memory();
            results.push(result);
        }
    }
    report(args, &results);
    if let Some(records) = args.long_key {
        long_key_reads(&dir.join("long-key"), &options, records, args)?;
    }
    // Only now: removing a round's thousands of files between rounds would leave the
    // next round's first target (always writelog) to pay for it (see `settle`).
    for round_dir in round_dirs {
        std::fs::remove_dir_all(&round_dir)?;
    }
    Ok(())
}

/// Writes back everything dirty on `dir`'s file system (`syncfs`) before a target's timed
/// run, so that no target pays for what the one before it left: a closed store's removed
/// logs, `direct`'s thousands of new files, a prefill. The bench also keeps every round's
/// files until the end, because on ext4 without a journal an inode freed in the last 60
/// seconds is skipped, one by one, when a file is created: removing a round's 20,000
/// files made the next round's first target, always writelog, create its key files
/// several times slower (docs/PERFORMANCE.md, "The bench and the tools").
fn settle(dir: &Path) -> Result<(), String> {
    let handle = std::fs::File::open(dir).map_err(|e| format!("opening {}: {e}", dir.display()))?;
    // SAFETY: `syncfs` takes a file descriptor that `handle` keeps open for the duration
    // of the call, and touches no memory of ours.
    let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&handle)) };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!("syncfs on {}: {e}", dir.display()));
    }
    Ok(())
}

/// The store in `dir` after its round: disk held against the keys and payloads appended
/// (`appends` records of `key_name`'s length), and a reopen timed.
fn held(
    dir: &Path,
    options: &Options,
    appends: u64,
    payload: usize,
) -> Result<Held, Box<dyn std::error::Error>> {
    let (disk_bytes, apparent_bytes) = disk_usage(dir)?;
    let started = Instant::now();
    let store = Store::open(dir, options.clone())?;
    let reopen_seconds = started.elapsed().as_secs_f64();
    let index_bytes = store.stats().keystore_index_bytes;
    store.close()?;
    Ok(Held {
        live_bytes: appends * (key_name(0).len() + payload) as u64,
        disk_bytes,
        apparent_bytes,
        reopen_seconds,
        index_bytes,
    })
}

/// `--long-key N`: one key with `records` records and one with 1,000, each appended in
/// passes of about 1,000 and flushed; then `tail(key, 5)` on each, interleaved, 2,000
/// times; prints the medians and p99s.
fn long_key_reads(
    dir: &Path,
    options: &Options,
    records: u64,
    args: &BenchArgs,
) -> Result<(), Box<dyn std::error::Error>> {
    let store = Store::open(
        dir,
        Options {
            durability: Durability::None,
            ..options.clone()
        },
    )?;
    let payload = vec![0x5Au8; args.payload];
    let batch: Vec<(&[u8], &[u8])> = (0..1000).map(|_| (&b"long"[..], &payload[..])).collect();
    let mut written = 0;
    while written < records {
        let take = (records - written).min(1000) as usize;
        store.append_batch(&batch[..take])?;
        written += take as u64;
        if written % 100_000 == 0 {
            store.flush()?;
        }
    }
    for _ in 0..1000 {
        store.append(b"short", &payload)?;
    }
    store.flush()?;
    let (mut long, mut short) = (latency_histogram()?, latency_histogram()?);
    for _ in 0..2000 {
        for (key, histogram) in [(&b"long"[..], &mut long), (&b"short"[..], &mut short)] {
            let begun = Instant::now();
            let got = store.tail(key, 5)?;
            histogram
                .saturating_record((begun.elapsed().as_nanos() as u64).clamp(1, LATENCY_MAX_US));
            assert_eq!(got.len(), 5, "tail(5) returns 5 records");
        }
    }
    store.close()?;
    let (l50, s50) = (long.value_at_quantile(0.5), short.value_at_quantile(0.5));
    println!(
        "  tail(5): key of {records} records p50 {:.1} µs p99 {:.1} µs; key of 1000 records p50 {:.1} µs p99 {:.1} µs; ratio of p50s {:.2}",
        l50 as f64 / 1000.0,
        long.value_at_quantile(0.99) as f64 / 1000.0,
        s50 as f64 / 1000.0,
        short.value_at_quantile(0.99) as f64 / 1000.0,
        l50 as f64 / s50.max(1) as f64
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// `--warm`: appends one record to every key, from `args.threads` threads, untimed.
fn prefill(target: &Target<'_>, args: &BenchArgs) -> Result<(), String> {
    let payload = vec![0x5Au8; args.payload];
    let threads = args.threads.max(1) as u64;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let payload = &payload;
                s.spawn(move || -> Result<(), String> {
                    for k in (t..args.keys).step_by(threads as usize) {
                        target.append(key_name(k).as_bytes(), payload)?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .unwrap_or_else(|_| Err("a prefilling thread panicked".into()))
        })
    })
}

/// The counters of `after` less those of `before` (the gauges as in `after`): what a
/// timed run did on a prefilled store.
fn stats_since(before: &writelog::Stats, after: &writelog::Stats) -> writelog::Stats {
    writelog::Stats {
        appends: after.appends - before.appends,
        bytes: after.bytes - before.bytes,
        batches: after.batches - before.batches,
        mean_batch_size: (after.appends - before.appends) as f64
            / (after.batches - before.batches).max(1) as f64,
        fsyncs: after.fsyncs - before.fsyncs,
        rotations: after.rotations - before.rotations,
        records_applied: after.records_applied - before.records_applied,
        commit_passes: after.commit_passes - before.commit_passes,
        keystore_runs: after.keystore_runs - before.keystore_runs,
        keystore_bytes_written: after.keystore_bytes_written - before.keystore_bytes_written,
        corrupt_skipped: after.corrupt_skipped - before.corrupt_skipped,
        ..*after
    }
}

/// Bytes `raw` preallocates: what the run appends (estimated at 200,000 appends/s for a
/// timed run), at most 2 GiB.
fn prealloc_bytes(args: &BenchArgs) -> u64 {
    let record = 4 + 12 + args.payload as u64;
    let records = match args.seconds {
        Some(seconds) => seconds.saturating_mul(200_000),
        None => args.records,
    };
    records.saturating_mul(record).min(2 << 30)
}

/// Resets the process's peak resident set size (Linux: `clear_refs` with 5), so that each
/// round reports its own peak. Without procfs the peak covers the whole run. The heap
/// that earlier targets freed but the allocator keeps resident (glibc keeps most of it,
/// even after `malloc_trim`) stays in the reset peak: with `--compare`, only the first
/// round's writelog peak is writelog's alone.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set size in bytes since the last reset (`VmHWM`), or 0
/// when it cannot be read.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The result with the median appends/s among those of `target`.
fn median<'a>(results: &'a [BenchResult], target: &str) -> Option<&'a BenchResult> {
    let mut of_target: Vec<&BenchResult> = results.iter().filter(|r| r.target == target).collect();
    of_target.sort_by(|a, b| a.appends_per_s().total_cmp(&b.appends_per_s()));
    of_target.get(of_target.len() / 2).copied()
}

fn run_appends(
    target: &Target<'_>,
    args: &BenchArgs,
) -> Result<BenchResult, Box<dyn std::error::Error>> {
    let progress = if args.quiet || args.json {
        ProgressBar::hidden()
    } else {
        // A plain rate, and the time left: to the last record, or to the deadline.
        let rate = |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} appends/s", state.per_sec());
        };
        let bar = match args.seconds {
            Some(seconds) => {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {pos} appends, {rate}, {left} left",
                    )?
                    .with_key("rate", rate)
                    .with_key(
                        "left",
                        move |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let left = seconds.saturating_sub(state.elapsed().as_secs());
                            let _ = write!(w, "{left}s");
                        },
                    ),
                );
                bar
            }
            None => {
                let bar = ProgressBar::new(args.records);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} appends, {rate}, ETA {eta}",
                    )?
                    .with_key("rate", rate),
                );
                bar
            }
        };
        bar
    };
    let done = AtomicU64::new(0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let payload = vec![0x5Au8; args.payload];
    let mut logs_waiting_max = 0;
    let mut logs_waiting_max_second_half = 0;
    let started = Instant::now();
    let deadline = args.seconds.map(|s| started + Duration::from_secs(s));
    let reads = AtomicU64::new(0);
    let appending = std::sync::atomic::AtomicBool::new(true);
    let read_latency = std::sync::Mutex::new(latency_histogram()?);
    let histograms: Vec<Result<Histogram<u64>, String>> = std::thread::scope(|s| {
        if let Target::Writelog(store) = target {
            for r in 0..args.readers as u64 {
                let (reads, appending, read_latency) = (&reads, &appending, &read_latency);
                s.spawn(move || {
                    let mut latency = latency_histogram().expect("valid bounds");
                    let mut i = 0u64;
                    let hot = args.hot_keys.clamp(1, args.keys);
                    while appending.load(Ordering::Relaxed) {
                        let key = key_name(key_index(1 << 20 | r, i, hot));
                        let begun = Instant::now();
                        if store.tail(key.as_bytes(), args.tail).is_ok() {
                            let micros = begun.elapsed().as_micros() as u64;
                            latency.saturating_record(micros.clamp(1, LATENCY_MAX_US));
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 1;
                    }
                    let mut all = read_latency.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = all.add(latency);
                });
            }
        }
        let handles: Vec<_> = (0..args.threads as u64)
            .map(|t| {
                let (done, payload, stop) = (&done, &payload, &stop);
                let share = match args.seconds {
                    Some(_) => u64::MAX,
                    None => {
                        args.records / args.threads as u64
                            + u64::from(t < args.records % args.threads as u64)
                    }
                };
                s.spawn(move || -> Result<Histogram<u64>, String> {
                    let mut latency = latency_histogram().map_err(|e| e.to_string())?;
                    for i in 0..share {
                        if stop.load(Ordering::Relaxed) {
                            done.fetch_add(i % 256, Ordering::Relaxed);
                            break;
                        }
                        let k = if args.fill {
                            t + i * args.threads as u64
                        } else {
                            key_index(t, i, args.keys)
                        };
                        let key = key_name(k);
                        let begun = Instant::now();
                        target.append(key.as_bytes(), payload)?;
                        let micros = begun.elapsed().as_micros() as u64;
                        latency.saturating_record(micros.clamp(1, LATENCY_MAX_US));
                        if i % 256 == 255 {
                            done.fetch_add(256, Ordering::Relaxed);
                        } else if i + 1 == share {
                            done.fetch_add((i + 1) % 256, Ordering::Relaxed);
                        }
                    }
                    Ok(latency)
                })
            })
            .collect();
        while handles.iter().any(|h| !h.is_finished()) {
            progress.set_position(done.load(Ordering::Relaxed));
            if let Target::Writelog(store) = target {
                let waiting = store.stats().logs_waiting;
                logs_waiting_max = logs_waiting_max.max(waiting);
                let second_half = match args.seconds {
                    Some(s) => started.elapsed().as_secs_f64() * 2.0 >= s as f64,
                    None => done.load(Ordering::Relaxed) * 2 >= args.records,
                };
                if second_half {
                    logs_waiting_max_second_half = logs_waiting_max_second_half.max(waiting);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let joined = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("an appending thread panicked".into()))
            })
            .collect();
        appending.store(false, Ordering::Relaxed);
        joined
    });
    let seconds = started.elapsed().as_secs_f64();
    progress.finish_and_clear();
    let mut latency = latency_histogram()?;
    for histogram in histograms {
        latency.add(histogram?)?;
    }
    Ok(BenchResult {
        target: target.name(),
        seconds,
        appends: latency.len(),
        latency,
        stats: writelog::Stats::default(),
        logs_waiting_max,
        logs_waiting_max_second_half,
        logs_waiting_end: 0,
        flush_seconds: 0.0,
        reads: reads.load(Ordering::Relaxed),
        peak_rss_bytes: 0,
        read_latency: (args.readers > 0 && matches!(target, Target::Writelog(_)))
            .then(|| read_latency.into_inner().unwrap_or_else(|e| e.into_inner())),
        held: None,
    })
}

/// Adds the key store's figures of a writelog round to its JSON object (nothing for the
/// baselines).
fn add_key_store_json(object: &mut serde_json::Map<String, serde_json::Value>, r: &BenchResult) {
    use serde_json::json;
    if let Some(h) = r.held {
        object.insert("live_bytes".into(), json!(h.live_bytes));
        object.insert("disk_bytes".into(), json!(h.disk_bytes));
        object.insert("apparent_bytes".into(), json!(h.apparent_bytes));
        let disk_per_live = h.disk_bytes as f64 / h.live_bytes.max(1) as f64;
        object.insert("disk_per_live".into(), json!(rounded(disk_per_live, 3)));
        object.insert("reopen_s".into(), json!(rounded(h.reopen_seconds, 3)));
        object.insert("index_bytes".into(), json!(h.index_bytes));
    }
    if let Some(reads) = &r.read_latency {
        object.insert("read_p50_us".into(), json!(reads.value_at_quantile(0.5)));
        object.insert("read_p99_us".into(), json!(reads.value_at_quantile(0.99)));
    }
}

/// `x` to `places` decimal places, for JSON figures.
fn rounded(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// The key store's figures of a writelog round, as a line of the table's notes.
fn key_store_line(r: &BenchResult) -> Option<String> {
    let h = r.held?;
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let mut line = format!(
        "  key store: {:.1} MiB on disk after flush() ({:.2}x the {:.1} MiB of keys and payloads; files {:.1} MiB), \
         reopen {:.3}s, index {:.1} MiB, {:.2} segment fdatasyncs per commit pass",
        mib(h.disk_bytes),
        h.disk_bytes as f64 / h.live_bytes.max(1) as f64,
        mib(h.live_bytes),
        mib(h.apparent_bytes),
        h.reopen_seconds,
        mib(h.index_bytes),
        r.stats.keystore_runs as f64 / r.stats.commit_passes.max(1) as f64
    );
    if let Some(reads) = &r.read_latency {
        line += &format!(
            ", reads p50 {} µs p99 {} µs",
            reads.value_at_quantile(0.5),
            reads.value_at_quantile(0.99)
        );
    }
    Some(line)
}

fn report(args: &BenchArgs, results: &[BenchResult]) {
    let durability = match args.durability {
        DurabilityArg::Sync => "sync",
        DurabilityArg::Buffered => "buffered",
        DurabilityArg::None => "none",
    };
    let mut rounds = Vec::new();
    if !args.json {
        println!(
            "writelog bench: {} threads, {} records, {} keys, {} B payloads, durability {durability}",
            args.threads,
            results.first().map_or(args.records, |r| r.appends),
            args.keys,
            args.payload
        );
        println!(
            "  {:<9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>10} {:>9} {:>8} {:>8} {:>9}",
            "target",
            "appends/s",
            "MB/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "fdatasyncs",
            "rec/sync",
            "rotations",
            "peak MiB",
            "reads/s"
        );
    }
    for r in results {
        let appends_per_s = r.appends_per_s();
        let mb_per_s = appends_per_s * args.payload as f64 / 1e6;
        let per_fsync = if r.stats.fsyncs == 0 {
            0.0
        } else {
            r.stats.appends as f64 / r.stats.fsyncs as f64
        };
        let peak_mib = r.peak_rss_bytes as f64 / (1 << 20) as f64;
        let reads_per_s = r.reads as f64 / r.seconds;
        let (p50, p99, p999) = (
            r.latency.value_at_quantile(0.5),
            r.latency.value_at_quantile(0.99),
            r.latency.value_at_quantile(0.999),
        );
        if args.json {
            let mut object = serde_json::json!({
                "target": r.target,
                "records": r.appends,
                "seconds": rounded(r.seconds, 3),
                "appends_per_s": appends_per_s.round(),
                "mb_per_s": rounded(mb_per_s, 2),
                "p50_us": p50,
                "p99_us": p99,
                "p999_us": p999,
                "fsyncs": r.stats.fsyncs,
                "records_per_fsync": rounded(per_fsync, 1),
                "rotations": r.stats.rotations,
                "logs_waiting_max": r.logs_waiting_max,
                "logs_waiting_max_second_half": r.logs_waiting_max_second_half,
                "logs_waiting_end": r.logs_waiting_end,
                "flush_s": rounded(r.flush_seconds, 3),
                "records_applied": r.stats.records_applied,
                "commit_passes": r.stats.commit_passes,
                "keystore_runs": r.stats.keystore_runs,
                "keystore_bytes_written": r.stats.keystore_bytes_written,
                "peak_rss_mib": rounded(peak_mib, 1),
                "reads_per_s": reads_per_s.round(),
            });
            if let Some(object) = object.as_object_mut() {
                add_key_store_json(object, r);
            }
            rounds.push(object);
            continue;
        }
        if r.target == "writelog" {
            println!(
                "  {:<9} {appends_per_s:>11.0} {mb_per_s:>8.2} {p50:>8} {p99:>8} {p999:>8} {:>10} {per_fsync:>9.1} {:>8} {peak_mib:>8.1} {reads_per_s:>9.0}",
                r.target, r.stats.fsyncs, r.stats.rotations
            );
        } else {
            println!(
                "  {:<9} {appends_per_s:>11.0} {mb_per_s:>8.2} {p50:>8} {p99:>8} {p999:>8} {:>10} {:>9} {:>8} {peak_mib:>8.1} {:>9}",
                r.target, "-", "-", "-", "-"
            );
        }
    }
    if !args.json {
        for r in results.iter().filter(|r| r.target == "writelog") {
            let applied = r.stats.records_applied.max(1) as f64;
            println!(
                "  commit path: logs waiting max {} (second half {}) / at end {}, flush() {:.3}s, {} records applied in {} passes \
                 ({:.1} records/pass), {:.2} runs (segment fdatasyncs) per pass, {:.2} key-store bytes written per payload byte",
                r.logs_waiting_max,
                r.logs_waiting_max_second_half,
                r.logs_waiting_end,
                r.flush_seconds,
                r.stats.records_applied,
                r.stats.commit_passes,
                applied / r.stats.commit_passes.max(1) as f64,
                r.stats.keystore_runs as f64 / r.stats.commit_passes.max(1) as f64,
                r.stats.keystore_bytes_written as f64 / r.stats.bytes.max(1) as f64,
            );
            if let Some(line) = key_store_line(r) {
                println!("{line}");
            }
        }
    }
    let mut ratios = None;
    if let (Some(ours), Some(raw), Some(direct)) = (
        median(results, "writelog"),
        median(results, "raw"),
        median(results, "direct"),
    ) {
        let p99 = |r: &BenchResult| r.latency.value_at_quantile(0.99).max(1) as f64;
        let appends = ours.appends_per_s() / raw.appends_per_s();
        let latency = p99(ours) / p99(raw);
        let over_direct = ours.appends_per_s() / direct.appends_per_s();
        if args.json {
            ratios = Some(serde_json::json!({
                "writelog_over_raw_appends": rounded(appends, 3),
                "writelog_over_raw_p99": rounded(latency, 3),
                "writelog_over_direct_appends": rounded(over_direct, 3),
            }));
        } else {
            println!(
                "  medians: writelog/raw appends/s {appends:.2}x (MB/s the same), p99 latency {latency:.2}x; \
                 writelog/direct appends/s {over_direct:.2}x"
            );
        }
    }
    if args.json {
        // One object, whatever the flags: the run's settings, every round, the ratios.
        let mut object = serde_json::json!({
            "threads": args.threads,
            "keys": args.keys,
            "payload_bytes": args.payload,
            "durability": durability,
            "rounds": rounds,
        });
        if let (Some(object), Some(ratios)) = (object.as_object_mut(), ratios) {
            object.insert("ratios".into(), ratios);
        }
        println!("{object}");
    }
}
