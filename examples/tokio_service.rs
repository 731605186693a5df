//! A tokio service that appends from many tasks without blocking its workers.
//!
//! `cargo run --release --example tokio_service -- [SECONDS] [ROUNDS]` runs, in turns,
//! 64 tasks on a 2-worker tokio runtime calling `append_async`, and 64 threads calling
//! `append`, each for SECONDS (default 1), ROUNDS times (default 1), on a temporary
//! store. A 1 ms timer runs on the tokio runtime throughout; the example prints both
//! rates, their ratio and how late the timer fired at worst.
// An application: it reads the OS clock and starts threads as it likes (the bans in
// clippy.toml guard the library's machines).
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use writelog::{Options, Store};

const TASKS: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let rounds: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let run_for = Duration::from_secs_f64(seconds);
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(dir.path(), Options::default())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()?;
    let (mut tasks_total, mut threads_total) = (0.0, 0.0);
    let mut late_max = Duration::ZERO;
    for round in 1..=rounds {
        let (rate, late) = runtime.block_on(async_round(&store, run_for))?;
        // The same timer while threads append: how late the machine alone makes it.
        let stop = Arc::new(AtomicBool::new(false));
        let timer = runtime.spawn(timer_lateness(Arc::clone(&stop)));
        let threads = thread_round(&store, run_for)?;
        stop.store(true, Ordering::Relaxed);
        let late_threads = runtime.block_on(timer)?;
        println!(
            "round {round}: {TASKS} tasks on 2 workers {rate:.0} appends/s, \
             {TASKS} threads {threads:.0} appends/s\n  timer with tasks appending: {late}\n  \
             timer with threads appending: {late_threads}"
        );
        tasks_total += rate;
        threads_total += threads;
        late_max = late_max.max(late.worst);
    }
    println!(
        "async/threads = {:.3}, timer at worst {:.2} ms late",
        tasks_total / threads_total,
        late_max.as_secs_f64() * 1e3
    );
    Arc::into_inner(store)
        .expect("every task is done")
        .close()?;
    Ok(())
}

/// 64 tasks appending for `run_for`, with a 1 ms timer beside them: the rate, and the
/// worst lateness of the timer.
async fn async_round(
    store: &Arc<Store>,
    run_for: Duration,
) -> Result<(f64, Lateness), writelog::Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let appended = Arc::new(AtomicU64::new(0));
    let timer = tokio::spawn(timer_lateness(Arc::clone(&stop)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, stop, appended) = (Arc::clone(store), Arc::clone(&stop), Arc::clone(&appended));
        tasks.push(tokio::spawn(async move {
            let key = format!("task-{task}");
            while !stop.load(Ordering::Relaxed) {
                store.append_async(&key, [0u8; 100]).await?;
                appended.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), writelog::Error>(())
        }));
    }
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("no task panics")?;
    }
    let rate = appended.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    Ok((rate, timer.await.expect("the timer does not panic")))
}

/// How late a 1 ms timer fired: at worst, and how often by more than 5 ms.
#[derive(Clone, Copy, Debug, Default)]
struct Lateness {
    worst: Duration,
    fired: u64,
    over_5ms: u64,
}

impl std::fmt::Display for Lateness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "at worst {:.2} ms late, {} of {} firings over 5 ms late",
            self.worst.as_secs_f64() * 1e3,
            self.over_5ms,
            self.fired
        )
    }
}

/// Sleeps 1 ms at a time until `stop`.
async fn timer_lateness(stop: Arc<AtomicBool>) -> Lateness {
    let mut lateness = Lateness::default();
    while !stop.load(Ordering::Relaxed) {
        let asked = Instant::now();
        tokio::time::sleep(Duration::from_millis(1)).await;
        let late = asked.elapsed().saturating_sub(Duration::from_millis(1));
        lateness.worst = lateness.worst.max(late);
        lateness.fired += 1;
        lateness.over_5ms += u64::from(late > Duration::from_millis(5));
    }
    lateness
}

/// 64 threads appending for `run_for`: the rate.
fn thread_round(store: &Store, run_for: Duration) -> Result<f64, writelog::Error> {
    let stop = AtomicBool::new(false);
    let appended = AtomicU64::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..TASKS)
            .map(|thread| {
                let (stop, appended) = (&stop, &appended);
                s.spawn(move || {
                    let key = format!("thread-{thread}");
                    while !stop.load(Ordering::Relaxed) {
                        store.append(&key, [0u8; 100])?;
                        appended.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok::<(), writelog::Error>(())
                })
            })
            .collect();
        std::thread::sleep(run_for);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("no thread panics"))
    })?;
    Ok(appended.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
