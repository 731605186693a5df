//! A child process appending with `Sync` is killed with SIGKILL at several moments; after
//! each kill the store reopens and holds everything the child acknowledged, exactly once.
//! A child appending with `None` is killed the same way: it loses what was queued, but no
//! seq it was given is ever given again (the seq lease).
//!
//! The child is this same test binary, re-run with an environment variable set; it prints
//! `ACK <seq> <payload>` after each append returns, and the parent collects those lines.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use writelog::{Durability, Options, Store};

const CHILD_DIR_VAR: &str = "WRITELOG_TEST_CHILD_DIR";
const NONE_CHILD_DIR_VAR: &str = "WRITELOG_TEST_NONE_CHILD_DIR";

/// The child's body: 4 threads append to 13 keys at `durability` until killed, printing
/// `ACK <seq> <payload>` after each append returns.
fn append_until_killed(dir: &str, options: Options, durability: Durability) {
    let store = Store::open(dir, options).unwrap();
    let out = std::sync::Mutex::new(std::io::stdout());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (store, out) = (&store, &out);
            s.spawn(move || {
                for i in 0.. {
                    let payload = format!("p{}-{t}-{i}", std::process::id());
                    let key = format!("k{}", i % 13);
                    let seq = store
                        .append_with(key.as_bytes(), payload.as_bytes(), durability)
                        .unwrap();
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ACK {} {payload}", seq.0).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

#[test]
#[ignore = "run only as the child of sync_appends_survive_sigkill"]
fn child_appender() {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };
    let options = Options {
        rotate_interval_ms: 5,
        ..Options::default()
    };
    append_until_killed(&dir, options, Durability::Sync);
}

#[test]
fn sync_appends_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: BTreeMap<u64, String> = BTreeMap::new();
    for (round, delay_ms) in [40u64, 95, 150, 230, 330, 470].into_iter().enumerate() {
        let lines = common::run_child_until_killed(
            "child_appender",
            CHILD_DIR_VAR,
            dir.path(),
            Duration::from_millis(delay_ms),
        );
        let mut this_round = 0;
        for line in lines {
            // libtest may print `test child_appender ... ` on the same line as the first one.
            let Some(rest) = line.find("ACK ").map(|at| &line[at + 4..]) else {
                continue;
            };
            let (seq, payload) = rest.split_once(' ').unwrap();
            let previous = acked.insert(seq.parse().unwrap(), payload.to_owned());
            assert_eq!(previous, None, "a seq was acknowledged twice");
            this_round += 1;
        }
        // Reopen: recovery must keep every acknowledged record, before and after the
        // committers apply it.
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let before = common::store_contents(&store);
        store.flush().unwrap();
        assert_eq!(
            common::store_contents(&store),
            before,
            "applying changes nothing a read sees"
        );
        store.close().unwrap();
        let on_disk: BTreeMap<u64, String> = before
            .into_iter()
            .map(|(seq, (_, payload))| (seq, String::from_utf8(payload).unwrap()))
            .collect();
        for (seq, payload) in &acked {
            assert_eq!(
                on_disk.get(seq),
                Some(payload),
                "round {round}: acknowledged seq {seq} lost"
            );
        }
        eprintln!(
            "round {round}: killed after {delay_ms} ms, {this_round} acks, {} on disk",
            on_disk.len()
        );
    }
    assert!(
        acked.len() > 100,
        "the child must have acknowledged appends: {}",
        acked.len()
    );
}

#[test]
#[ignore = "run only as the child of seqs_of_lost_none_appends_are_never_given_again"]
fn child_none_appender() {
    let Ok(dir) = std::env::var(NONE_CHILD_DIR_VAR) else {
        return;
    };
    let options = Options {
        rotate_interval_ms: 5,
        // Small, so that the lease is extended many times a round.
        seq_lease: 64,
        ..Options::default()
    };
    append_until_killed(&dir, options, Durability::None);
}

/// `None` appends return before their bytes reach the OS, so a kill loses the last of
/// them; their seqs must still never be handed out again, to other records, after the
/// restart (the store reserves seqs durably ahead: `Options::seq_lease`).
#[test]
fn seqs_of_lost_none_appends_are_never_given_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut given: BTreeMap<u64, String> = BTreeMap::new();
    let mut lost = 0;
    for (round, delay_ms) in [40u64, 95, 150, 230, 330, 470].into_iter().enumerate() {
        let lines = common::run_child_until_killed(
            "child_none_appender",
            NONE_CHILD_DIR_VAR,
            dir.path(),
            Duration::from_millis(delay_ms),
        );
        for line in lines {
            let Some(rest) = line.find("ACK ").map(|at| &line[at + 4..]) else {
                continue;
            };
            let (seq, payload) = rest.split_once(' ').unwrap();
            let previous = given.insert(seq.parse().unwrap(), payload.to_owned());
            assert_eq!(
                previous, None,
                "round {round}: seq {seq} was given to two records ({payload})"
            );
        }
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let kept = common::store_contents(&store);
        store.close().unwrap();
        for (seq, (_, payload)) in &kept {
            // What survived under a seq is what the child was given under it (a kill
            // between the return and the print leaves a survivor the parent never saw).
            let payload = String::from_utf8(payload.clone()).unwrap();
            if let Some(given) = given.get(seq) {
                assert_eq!(given, &payload, "round {round}: seq {seq}");
            }
        }
        lost = given.len().saturating_sub(kept.len());
    }
    eprintln!(
        "{} seqs given, {lost} records lost by the kills",
        given.len()
    );
    assert!(
        given.len() > 100,
        "the child must have appended: {}",
        given.len()
    );
}
