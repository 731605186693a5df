//! A child appending and deleting with `Sync` is killed with SIGKILL at 20 moments; after
//! each kill the store reopens holding everything acknowledged, once, in order, and no
//! deleted key comes back. Each child thread owns its keys, so the only doubt per thread
//! is its one operation in flight at the kill: the store must show it done or not done.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use writelog::{Options, Store};

const CHILD_DIR_VAR: &str = "WRITELOG_TEST_KILL_DELETES_DIR";
const THREADS: usize = 4;
const KEYS_PER_THREAD: usize = 5;

#[test]
#[ignore = "run only as the child of acknowledged_state_survives_twenty_kills"]
fn child_worker() {
    let Ok(dir) = std::env::var(CHILD_DIR_VAR) else {
        return;
    };
    let options = Options {
        rotate_interval_ms: 5,
        committers: 2,
        ..Options::default()
    };
    let store = Store::open(&dir, options).unwrap();
    let out = std::sync::Mutex::new(std::io::stdout());
    let say = |line: String| {
        let mut out = out.lock().unwrap();
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (store, say) = (&store, &say);
            s.spawn(move || {
                for i in 0.. {
                    let key = format!("t{t}-k{}", i % KEYS_PER_THREAD);
                    if i % 7 == 6 {
                        say(format!("TRY {t} D {key}"));
                        store.delete(key.as_bytes()).unwrap();
                    } else {
                        let payload = format!("p{}-{t}-{i}", std::process::id());
                        say(format!("TRY {t} A {key} {payload}"));
                        store.append(key.as_bytes(), payload.as_bytes()).unwrap();
                    }
                    say(format!("ACK {t}"));
                }
            });
        }
    });
}

#[derive(Clone, Debug)]
enum Op {
    Append(String, String),
    Delete(String),
}

fn apply(model: &mut BTreeMap<String, Vec<String>>, op: &Op) {
    match op {
        Op::Append(key, payload) => model.entry(key.clone()).or_default().push(payload.clone()),
        Op::Delete(key) => {
            model.remove(key);
        }
    }
}

#[test]
fn acknowledged_state_survives_twenty_kills() {
    let dir = tempfile::tempdir().unwrap();
    let mut model: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut total_acks = 0;
    for round in 0..20u64 {
        let delay_ms = 20 + (round * 37) % 230;
        let lines = common::run_child_until_killed(
            "child_worker",
            CHILD_DIR_VAR,
            dir.path(),
            Duration::from_millis(delay_ms),
        );
        // Per thread: acknowledged ops go into the model; the one in flight stays open.
        let mut in_flight: BTreeMap<usize, Op> = BTreeMap::new();
        for line in lines {
            // libtest may print `test child_worker ... ` on the same line as the first one.
            let Some(at) = line.find("TRY ").or_else(|| line.find("ACK ")) else {
                continue;
            };
            let words: Vec<&str> = line[at..].split(' ').collect();
            match words.as_slice() {
                ["TRY", t, "A", key, payload] => {
                    in_flight.insert(
                        t.parse().unwrap(),
                        Op::Append(key.to_string(), payload.to_string()),
                    );
                }
                ["TRY", t, "D", key] => {
                    in_flight.insert(t.parse().unwrap(), Op::Delete(key.to_string()));
                }
                ["ACK", t] => {
                    let op = in_flight
                        .remove(&t.parse().unwrap())
                        .expect("an ACK follows its TRY");
                    apply(&mut model, &op);
                    total_acks += 1;
                }
                _ => {}
            }
        }
        let store = Store::open(dir.path(), Options::default()).unwrap();
        let mut actual: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in store.keys().unwrap() {
            let records = store.read(&key).unwrap();
            assert!(
                records.windows(2).all(|w| w[0].seq < w[1].seq),
                "round {round}: order"
            );
            actual.insert(
                String::from_utf8(key).unwrap(),
                records
                    .into_iter()
                    .map(|r| String::from_utf8(r.payload).unwrap())
                    .collect(),
            );
        }
        // Settle each in-flight op: the store shows it done or not done, per key.
        for op in in_flight.values() {
            let key = match op {
                Op::Append(key, _) | Op::Delete(key) => key,
            };
            let mut with = model.clone();
            apply(&mut with, op);
            if actual.get(key) == with.get(key) && actual.get(key) != model.get(key) {
                model = with;
            }
        }
        assert_eq!(actual, model, "round {round} (killed after {delay_ms} ms)");
        store.flush().unwrap();
        store.close().unwrap();
    }
    assert!(
        total_acks > 200,
        "the children must have done work: {total_acks} acks"
    );
}
