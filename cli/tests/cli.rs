//! The command line's tools against real stores: `append`/`read` round trip; `verify`
//! passes a sound store, fails a damaged one, changes nothing, and refuses an open store;
//! `inspect` shows blocks and damage with its exit status; `bench --warm` leaves its
//! prefill out of what it reports.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::process::{Command, Output};

#[path = "../../tests/common/mod.rs"]
mod common;
use common::disk_picture;

fn writelog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writelog"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn append_read_verify_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let s = store.to_str().unwrap();
    // No store there yet: read and append refuse, creating nothing.
    for args in [&["read", s, "k1"][..], &["append", s, "k1", "v"]] {
        let out = writelog(args);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("holds no writelog store"));
        assert!(!store.exists(), "nothing created");
    }
    for value in ["hello", "wor\tld"] {
        let out = writelog(&["append", "--create", s, "k1", value]);
        assert!(out.status.success(), "{out:?}");
    }
    // A finished log of one record, made with the library's encoder (the sessions' own
    // logs may have rotated and been applied by now: their timing is the committers').
    let mut one_record_log = Vec::new();
    writelog::format::encode_log_header(&mut one_record_log);
    writelog::format::encode_block(
        &mut one_record_log,
        &writelog::format::Block {
            seq: 1_000_000,
            kind: writelog::format::Kind::Append,
            batch_first: true,
            batch_left: 0,
            key: b"k1",
            payload: b"hello",
        },
    );
    let out = writelog(&["read", s, "k1"]);
    assert!(out.status.success());
    assert_eq!(text(&out), "1\thello\n2\twor\\tld\n");

    let before = disk_picture(&store);
    let out = writelog(&["verify", s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("sound"));
    assert_eq!(disk_picture(&store), before, "verify changes nothing");

    // A finished log with a flipped bit: inspect and verify both say so.
    let log = store.join("txlogs/reading/tx-09999999999999999999.log");
    let mut bytes = one_record_log.clone();
    bytes[40] ^= 1;
    std::fs::write(&log, &bytes).unwrap();
    let out = writelog(&["inspect", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("DAMAGE: checksum mismatch"),
        "{}",
        text(&out)
    );
    let out = writelog(&["inspect", "--json", log.to_str().unwrap()]);
    assert!(text(&out).contains("\"intact\":false"), "{}", text(&out));
    let out = writelog(&["verify", s]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("PROBLEM"), "{}", text(&out));

    // Not a store, not a writelog file: a clear error, status 2.
    let out = writelog(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let out = writelog(&["inspect", file!()]);
    assert_eq!(out.status.code(), Some(2));
}

/// A flushed store has a segment; `inspect` shows its runs and keys, `scrub` reads it
/// whole and calls it sound, and both call a flipped byte in it damage, with its offset.
#[test]
fn inspect_and_scrub_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = writelog::Store::open(dir.path(), writelog::Options::default()).unwrap();
    for i in 0..20 {
        store
            .append(format!("key-{}", i % 4).as_bytes(), b"payload")
            .unwrap();
    }
    store.flush().unwrap();
    store.close().unwrap();
    let d = dir.path().to_str().unwrap();
    let picture = disk_picture(dir.path());
    let (segment, bytes) = picture
        .iter()
        .find(|(path, _)| path.ends_with(".dat"))
        .expect("a segment after flush");
    let segment = dir.path().join(segment);
    let out = writelog(&["inspect", segment.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("intact") && text(&out).contains("\"key-"),
        "{}",
        text(&out)
    );
    let out = writelog(&["scrub", d]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("sound"), "{}", text(&out));

    // The last byte is the last record's payload: scrub names the record's offset.
    let mut rotten = bytes.clone();
    let last = rotten.len() - 1;
    rotten[last] ^= 1;
    std::fs::write(&segment, &rotten).unwrap();
    let out = writelog(&["scrub", d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let record_at = last - writelog::keystore::segment::RECORD_HEADER_LEN - b"payload".len() + 1;
    let named = format!(
        "{} at {record_at}: corruption",
        segment.strip_prefix(dir.path()).unwrap().display()
    );
    assert!(text(&out).contains(&named), "{named}: {}", text(&out));
    let out = writelog(&["verify", d]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let after = disk_picture(dir.path());
    let kept = after
        .iter()
        .find(|(path, _)| path.ends_with(".dat"))
        .map(|(_, b)| b);
    assert_eq!(kept, Some(&rotten), "scrub and verify change nothing");
}

#[test]
fn verify_reads_the_seq_floor_and_reports_it_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let s = store.to_str().unwrap();
    assert!(writelog(&["append", "--create", s, "k", "v"])
        .status
        .success());
    let fs = writelog::fs::RealFs::new(&store).unwrap();
    let floor = std::path::Path::new(writelog::machine::SEQ_FLOOR_FILE);
    let tmp = std::path::Path::new(writelog::machine::SEQ_FLOOR_TMP);
    writelog::seq_file::write(&fs, floor, tmp, writelog::machine::SEQ_FLOOR_MAGIC, 90).unwrap();
    let out = writelog(&["verify", s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("new seqs start above 90"),
        "{}",
        text(&out)
    );

    let mut bytes = std::fs::read(store.join(floor)).unwrap();
    bytes[8] ^= 1;
    std::fs::write(store.join(floor), &bytes).unwrap();
    let out = writelog(&["verify", s]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("seq floor"), "{}", text(&out));
}

#[test]
fn verify_refuses_a_store_open_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let store = writelog::Store::open(dir.path(), writelog::Options::default()).unwrap();
    let out = writelog(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("open in another process"));
    store.close().unwrap();
    let out = writelog(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `bench --warm` prefills every key untimed and leaves the prefill out of what it
/// reports: the key store is then asked to apply exactly the timed records. Every round's
/// files are kept until the last round ends, and then removed.
#[test]
fn a_warm_bench_reports_only_the_timed_appends() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = writelog(&[
        "bench",
        "--dir",
        d,
        "--threads",
        "2",
        "--records",
        "300",
        "--keys",
        "40",
        "--rotate-ms",
        "10",
        "--commit-ms",
        "10",
        "--warm",
        "--compare",
        "--rounds",
        "2",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let json = text(&out);
    assert_eq!(
        json.lines().count(),
        1,
        "one JSON object, whatever the flags: {json}"
    );
    let object: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    let rounds = object["rounds"].as_array().expect("the rounds");
    let ours: Vec<_> = rounds
        .iter()
        .filter(|r| r["target"] == "writelog")
        .collect();
    assert_eq!(ours.len(), 2, "{json}");
    for round in ours {
        assert_eq!(
            round["records"], 300,
            "the 40 prefilled records are left out: {round}"
        );
        assert_eq!(
            round["records_applied"], 300,
            "each round applies the timed records: {round}"
        );
    }
    assert!(rounds.iter().any(|r| r["target"] == "direct"), "{json}");
    assert!(
        object["ratios"]["writelog_over_raw_appends"]
            .as_f64()
            .unwrap()
            > 0.0,
        "{json}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "the rounds' files are removed: {left:?}");
}

#[test]
fn every_command_documents_its_exit_status_in_its_help() {
    for command in [
        "bench",
        "churn",
        "compacted-read",
        "inspect",
        "verify",
        "scrub",
        "append",
        "read",
    ] {
        let out = writelog(&[command, "--help"]);
        assert!(out.status.success(), "{command}: {out:?}");
        assert!(
            text(&out).contains("Exit status"),
            "{command}: {}",
            text(&out)
        );
    }
}
