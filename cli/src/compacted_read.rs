//! `writelog compacted-read`: one key of many records, appended among other keys' records
//! so that its groups are spread over many runs, then compacted; times reading all of its
//! records (`scan`, payloads left in the buffers read, and `read`, a `Vec` per record)
//! against reading the same bytes from one file, interleaved.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::time::{Duration, Instant};

use writelog::{Durability, Options, Seq, Store};

/// What `compacted-read` takes.
#[derive(clap::Args, Clone)]
pub struct CompactedReadArgs {
    /// Records of the key read.
    #[arg(long, default_value_t = 100_000)]
    pub records: u64,
    /// Payload bytes per record.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Timed reads of each kind (interleaved); the medians are compared.
    #[arg(long, default_value_t = 9)]
    pub rounds: usize,
}

/// Runs it and prints what it measured.
pub fn run(args: &CompactedReadArgs) -> Result<(), String> {
    let temp = tempfile::tempdir().map_err(|e| format!("creating a temporary dir: {e}"))?;
    let dir = temp.path();
    let options = Options {
        durability: Durability::None,
        partitions: 1,
        compaction_min_bytes: 1 << 20,
        compaction_space_percent: 110,
        rotate_interval_ms: 20,
        ..Options::default()
    };
    let store = Store::open(dir, options).map_err(|e| e.to_string())?;
    let payload = vec![b'r'; args.payload];
    let key = b"the-long-key".to_vec();
    // Between two of its records, records of other keys: its groups land in many runs.
    for i in 0..args.records {
        store.append(&key, &payload).map_err(|e| e.to_string())?;
        let other = format!("other-{:04}", i % 1000).into_bytes();
        store.append(&other, &payload).map_err(|e| e.to_string())?;
        if i % 20_000 == 19_999 {
            store.flush().map_err(|e| e.to_string())?;
        }
    }
    store.flush().map_err(|e| e.to_string())?;
    // A compaction after the key's last record puts all of it in the merged segment:
    // grow another key until one happens (each pass gives the committer an idle moment).
    let before = store.stats().compactions;
    let waited = Instant::now();
    let nudge = vec![b'n'; 64 << 10];
    while store.stats().compactions == before {
        if waited.elapsed() > Duration::from_secs(60) {
            return Err(format!("no compaction within 60 s: {:?}", store.stats()));
        }
        store.append(b"nudge", &nudge).map_err(|e| e.to_string())?;
        store.flush().map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = store.stats();
    let read = store.read(&key).map_err(|e| e.to_string())?;
    if read.len() as u64 != args.records {
        return Err(format!("read {} records of {}", read.len(), args.records));
    }
    // The same bytes, one file: what the key takes in the segment (payloads and headers).
    let bytes = args.records as usize * (args.payload + 20);
    let plain = dir.join("plain.dat");
    std::fs::write(&plain, vec![7u8; bytes]).map_err(|e| e.to_string())?;
    let (mut scans, mut reads, mut file) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let started = Instant::now();
        let records = store
            .scan(&key, Seq(0), usize::MAX)
            .map_err(|e| e.to_string())?;
        let payload_bytes: usize = records.iter().map(|r| r.payload.len()).sum();
        scans.push(started.elapsed());
        assert_eq!(payload_bytes, args.records as usize * args.payload);
        drop(records);
        let started = Instant::now();
        let records = store.read(&key).map_err(|e| e.to_string())?;
        reads.push(started.elapsed());
        assert_eq!(records.len() as u64, args.records);
        drop(records);
        let started = Instant::now();
        let read = read_file(&plain)?;
        file.push(started.elapsed());
        assert_eq!(read, bytes);
    }
    let [scan, read, file] = [scans, reads, file].map(|mut times| {
        times.sort();
        times[times.len() / 2]
    });
    println!(
        "compacted read: one key of {} records of {} B, after {} compactions ({} segment, {:.1} MB)",
        args.records,
        args.payload,
        stats.compactions,
        stats.keystore_segments,
        stats.keystore_bytes as f64 / 1e6
    );
    let ratio = |t: Duration| t.as_secs_f64() / file.as_secs_f64().max(1e-9);
    println!(
        "  scan(key): {:.2} ms, ratio {:.2}; read(key): {:.2} ms, ratio {:.2}; the same {:.1} MB from one file: {:.2} ms (medians of {})",
        scan.as_secs_f64() * 1e3,
        ratio(scan),
        read.as_secs_f64() * 1e3,
        ratio(read),
        bytes as f64 / 1e6,
        file.as_secs_f64() * 1e3,
        args.rounds
    );
    store.close().map_err(|e| e.to_string())
}

/// Reads `path` whole; returns its length.
fn read_file(path: &Path) -> Result<usize, String> {
    std::fs::read(path)
        .map(|b| b.len())
        .map_err(|e| format!("reading {}: {e}", path.display()))
}
