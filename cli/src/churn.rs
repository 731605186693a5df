//! `writelog churn`: a long run of appends, truncates and deletes over many keys, as a
//! store of many bounded streams lives. Reports the disk held over time against the live
//! bytes, the write amplification, and compaction's share of the committers' time.
#![allow(clippy::disallowed_methods)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use writelog::{Durability, Options, Seq, Store};

/// What `churn` takes.
#[derive(clap::Args, Clone)]
pub struct ChurnArgs {
    /// Store directory; a temporary one (removed afterwards) when omitted.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Appending threads; each owns its share of the keys.
    #[arg(long, default_value_t = 16)]
    pub threads: usize,
    /// Distinct keys.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u64,
    /// Payload bytes per record.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// How long to run.
    #[arg(long, default_value_t = 600)]
    pub seconds: u64,
    /// Records each key keeps: once it holds 10 % more, it is truncated to this many.
    #[arg(long, default_value_t = 100)]
    pub keep: usize,
    /// Keys deleted per minute, in percent of the keys.
    #[arg(long, default_value_t = 1.0)]
    pub delete_percent_per_minute: f64,
    /// Seconds between two samples of the disk held.
    #[arg(long, default_value_t = 30)]
    pub sample_seconds: u64,
    /// Compaction paced out entirely (the baseline the target compares with).
    #[arg(long)]
    pub no_compaction: bool,
    /// The store's `compaction_min_bytes` (default: the store's default).
    #[arg(long)]
    pub compaction_min_bytes: Option<u64>,
    /// The store's `compaction_space_percent` (default: the store's default).
    #[arg(long)]
    pub compaction_space_percent: Option<u32>,
    /// Durability of every append.
    #[arg(long, default_value = "sync")]
    pub durability: String,
}

/// The name of key `k`.
fn key_name(k: u64) -> Vec<u8> {
    format!("churn-{k:08}").into_bytes()
}

/// What one thread did.
#[derive(Default)]
struct ThreadTotals {
    appends: u64,
    truncates: u64,
    deletes: u64,
}

/// Runs the churn workload and prints what it measured.
pub fn run(args: &ChurnArgs) -> Result<(), String> {
    let temp;
    let dir: &Path = match &args.dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir().map_err(|e| format!("creating a temporary dir: {e}"))?;
            temp.path()
        }
    };
    let durability = match args.durability.as_str() {
        "sync" => Durability::Sync,
        "buffered" => Durability::Buffered,
        "none" => Durability::None,
        other => return Err(format!("--durability: sync, buffered or none, not {other}")),
    };
    let mut options = Options {
        durability,
        ..Options::default()
    };
    if let Some(bytes) = args.compaction_min_bytes {
        options.compaction_min_bytes = bytes;
    }
    if let Some(percent) = args.compaction_space_percent {
        options.compaction_space_percent = percent;
    }
    if args.no_compaction {
        options.compaction_min_bytes = u64::MAX;
    }
    let store = Store::open(dir, options).map_err(|e| e.to_string())?;
    // Live records per key, as each owning thread counts them (a delete zeroes it).
    let live: Vec<AtomicU64> = (0..args.keys).map(|_| AtomicU64::new(0)).collect();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut samples = Vec::new();
    let totals = std::thread::scope(|s| -> Result<Vec<ThreadTotals>, String> {
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                let (store, live) = (&store, &live);
                s.spawn(move || churn_thread(store, live, args, t as u64, deadline))
            })
            .collect();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(args.sample_seconds).min(
                deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1),
            ));
            samples.push(sample(&store, &live, args, dir, started)?);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a churn thread panicked".into()))
            })
            .collect()
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    store.flush().map_err(|e| e.to_string())?;
    let last = sample(&store, &live, args, dir, started)?;
    let stats = store.stats();
    let (appends, truncates, deletes) = totals.iter().fold((0, 0, 0), |(a, t, d), x| {
        (a + x.appends, t + x.truncates, d + x.deletes)
    });
    println!(
        "churn: {} threads, {} keys, {} B payloads, keep {}, {} % of keys deleted a minute, compaction {}",
        args.threads,
        args.keys,
        args.payload,
        args.keep,
        args.delete_percent_per_minute,
        if args.no_compaction { "off" } else { "on" }
    );
    println!(
        "  {:>7} {:>12} {:>12} {:>7} {:>11}",
        "t (s)", "live (MB)", "disk (MB)", "ratio", "appends/s"
    );
    for s in samples.iter().chain(std::iter::once(&last)) {
        println!(
            "  {:>7.0} {:>12.1} {:>12.1} {:>7.2} {:>11.0}",
            s.at,
            s.live_bytes as f64 / 1e6,
            s.disk_bytes as f64 / 1e6,
            s.disk_bytes as f64 / s.live_bytes.max(1) as f64,
            s.appends as f64 / s.at.max(1e-9)
        );
    }
    let committers = Options::default().committers as f64;
    println!(
        "  {appends} appends ({:.0}/s), {truncates} truncates, {deletes} deletes in {elapsed:.0} s",
        appends as f64 / elapsed
    );
    println!(
        "  after flush(): disk {:.1} MB for {:.1} MB live ({:.2}x)",
        last.disk_bytes as f64 / 1e6,
        last.live_bytes as f64 / 1e6,
        last.disk_bytes as f64 / last.live_bytes.max(1) as f64
    );
    println!(
        "  write amplification {:.2} (key store {:.1} MB written for {:.1} MB of payloads), \
         {} compactions wrote {:.1} MB in {:.1} s ({:.1} % of {} committers' time)",
        stats.keystore_bytes_written as f64 / stats.bytes.max(1) as f64,
        stats.keystore_bytes_written as f64 / 1e6,
        stats.bytes as f64 / 1e6,
        stats.compactions,
        stats.compaction_bytes_written as f64 / 1e6,
        stats.compaction_micros as f64 / 1e6,
        100.0 * stats.compaction_micros as f64 / 1e6 / (elapsed * committers),
        committers
    );
    store.close().map_err(|e| e.to_string())
}

/// One sample of the run.
struct Sample {
    at: f64,
    live_bytes: u64,
    disk_bytes: u64,
    appends: u64,
}

fn sample(
    store: &Store,
    live: &[AtomicU64],
    args: &ChurnArgs,
    dir: &Path,
    started: Instant,
) -> Result<Sample, String> {
    let records: u64 = live.iter().map(|l| l.load(Ordering::Relaxed)).sum();
    let key_bytes = key_name(0).len() as u64;
    let (disk_bytes, _) = crate::disk_usage(&dir.join("keys"))
        .map_err(|e| format!("measuring {}: {e}", dir.display()))?;
    Ok(Sample {
        at: started.elapsed().as_secs_f64(),
        live_bytes: records * (args.payload as u64 + key_bytes),
        disk_bytes,
        appends: store.stats().appends,
    })
}

/// Thread `t`: appends to its keys in turn, truncating each to `keep` records once it
/// holds 10 % more, and deletes one of its keys at the rate asked for.
fn churn_thread(
    store: &Store,
    live: &[AtomicU64],
    args: &ChurnArgs,
    t: u64,
    deadline: Instant,
) -> Result<ThreadTotals, String> {
    let own: Vec<u64> = (t..args.keys).step_by(args.threads).collect();
    let mut recent: Vec<VecDeque<u64>> = vec![VecDeque::new(); own.len()];
    let payload = vec![b'c'; args.payload];
    let per_minute = own.len() as f64 * args.delete_percent_per_minute / 100.0;
    let delete_every = Duration::from_secs_f64(60.0 / per_minute.max(1e-9));
    let mut next_delete = Instant::now() + delete_every;
    let mut totals = ThreadTotals::default();
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
    let mut i = 0usize;
    while Instant::now() < deadline {
        let at = i % own.len();
        i += 1;
        let key = key_name(own[at]);
        let seq = store.append(&key, &payload).map_err(|e| e.to_string())?;
        totals.appends += 1;
        recent[at].push_back(seq.0);
        if recent[at].len() > args.keep + args.keep / 10 {
            let from = recent[at][recent[at].len() - args.keep];
            store.truncate(&key, Seq(from)).map_err(|e| e.to_string())?;
            let drop = recent[at].len() - args.keep;
            recent[at].drain(..drop);
            totals.truncates += 1;
        }
        live[own[at] as usize].store(recent[at].len() as u64, Ordering::Relaxed);
        if Instant::now() >= next_delete {
            next_delete += delete_every;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let victim = (x % own.len() as u64) as usize;
            store
                .delete(key_name(own[victim]))
                .map_err(|e| e.to_string())?;
            recent[victim].clear();
            live[own[victim] as usize].store(0, Ordering::Relaxed);
            totals.deletes += 1;
        }
    }
    Ok(totals)
}
