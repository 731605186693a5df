//! Recovering from a damaged store: a byte of the key store rots on disk; a `Strict`
//! store refuses to return what it cannot check, `scrub` finds the damage, and a store
//! opened with `SkipCorrupt` reads everything else and counts what it skipped.
//!
//! `cargo run --example recover`
// An application: it reads the OS clock and starts threads as it likes (the bans in
// clippy.toml guard the library's machines).
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use writelog::fs::RealFs;
use writelog::keystore::scrub::scrub;
use writelog::{Error, Options, RecoveryMode, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), Options::default())?;
    for i in 0..1_000u32 {
        store.append(format!("user:{}", i % 10), format!("event {i}"))?;
    }
    store.flush()?; // Everything is in the key store now, and the logs are gone.
    store.close()?;

    // Rot: one flipped byte in the middle of the largest segment of the key store.
    let segment = largest_file(&dir.path().join("keys"))?;
    let mut bytes = std::fs::read(&segment)?;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&segment, &bytes)?;
    println!("flipped a byte at offset {middle} of {}", segment.display());

    // `Strict` (the default): a read that meets the damage is an error naming the file,
    // never a silently shorter answer.
    let store = Store::open(dir.path(), Options::default())?;
    let mut refused = 0;
    for user in 0..10 {
        match store.read(format!("user:{user}")) {
            Ok(records) => assert_eq!(records.len(), 100),
            Err(e @ Error::Corrupt { .. }) => {
                refused += 1;
                println!("user:{user}: {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    assert!(refused > 0, "the damage is found");
    store.close()?;

    // `scrub` (the CLI's `writelog scrub DIR`) reads and checks every byte.
    let report = scrub(&RealFs::new(dir.path())?)?;
    println!(
        "scrub: {} records checked, {} corrupt region(s)",
        report.records,
        report.corruption.len()
    );

    // `SkipCorrupt`: reads skip the damaged group and count it.
    let lenient = Options {
        recovery_mode: RecoveryMode::SkipCorrupt,
        ..Options::default()
    };
    let store = Store::open(dir.path(), lenient)?;
    let kept: usize = (0..10)
        .map(|user| store.read(format!("user:{user}")).map(|r| r.len()))
        .sum::<Result<usize, _>>()?;
    println!(
        "SkipCorrupt: {kept} of 1000 records read, {} damaged groups skipped",
        store.stats().keystore_damage_skipped
    );
    assert!(kept < 1_000 && store.stats().keystore_damage_skipped > 0);
    store.close()?;
    Ok(())
}

/// The largest segment file (`seg-*.dat`) under `dir`, searched recursively.
fn largest_file(dir: &Path) -> std::io::Result<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if entry.file_name().to_string_lossy().starts_with("seg-")
                && best.as_ref().is_none_or(|(len, _)| meta.len() > *len)
            {
                best = Some((meta.len(), entry.path()));
            }
        }
    }
    best.map(|(_, path)| path)
        .ok_or_else(|| std::io::Error::other("no segment in the key store"))
}
