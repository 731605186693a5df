//! Tailing a key: a reader follows the records of one key as a writer appends them,
//! asking each time only for what is newer than the last seq it saw.
//!
//! `cargo run --example tail`
// An application: it reads the OS clock and starts threads as it likes (the bans in
// clippy.toml guard the library's machines).
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use writelog::{Options, Seq, Store};

const RECORDS: u32 = 500;

fn main() -> Result<(), writelog::Error> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path(), Options::default())?;
    std::thread::scope(|s| -> Result<(), writelog::Error> {
        s.spawn(|| -> Result<(), writelog::Error> {
            for i in 0..RECORDS {
                store.append("orders", format!("order {i}"))?;
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Ok(())
        });
        // The reader: `records(key, after, limit)` costs what it returns, not the key's
        // history, so a tail can poll it cheaply.
        let mut after = Seq(0);
        let mut seen = 0u32;
        while seen < RECORDS {
            let new = store.records("orders", after, 64)?;
            if new.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            for record in &new {
                assert_eq!(record.payload, format!("order {seen}").into_bytes());
                seen += 1;
            }
            after = new.last().expect("not empty").seq;
            println!("read {} new records, up to seq {after}", new.len());
        }
        Ok(())
    })?;
    println!("followed all {RECORDS} records in order");
    store.close()
}
