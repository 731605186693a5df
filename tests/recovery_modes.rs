//! The recovery modes on corruption built by hand in finished logs — a flipped bit, a
//! truncated log, a seq going backwards under a good checksum — and crash damage in the
//! leftover `writing/tx.log`, which every mode cuts at its first bad block; and seqs that
//! never go back when damage hides them twice (the durable seq floor).
#![allow(clippy::disallowed_methods)]

use writelog::format::{block_len, encode_block, encode_log_header, Block, Kind, LOG_HEADER_LEN};
use writelog::machine::{LogId, READING_DIR, WRITING_DIR, WRITING_LOG};
use writelog::{Error, Options, RecoveryMode, Store};

const MODES: [RecoveryMode; 3] = [
    RecoveryMode::Strict,
    RecoveryMode::PointInTime,
    RecoveryMode::SkipCorrupt,
];

/// A log of one-record batches on key `k`, payload `p{seq}`.
fn log(seqs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_log_header(&mut out);
    for &seq in seqs {
        let payload = format!("p{seq}");
        let block = Block {
            seq,
            kind: Kind::Append,
            batch_first: true,
            batch_left: 0,
            key: b"k",
            payload: payload.as_bytes(),
        };
        encode_block(&mut out, &block);
    }
    out
}

/// Offset of the `i`th block of [`log`] (payloads of 2 bytes for one-digit seqs).
fn block_at(i: usize) -> usize {
    LOG_HEADER_LEN + i * block_len(1, 2)
}

/// Opens a store holding `bytes` at `relative` with `mode`, flushes, and returns the
/// payloads of `k` (or the open's error).
fn open_with(relative: &str, bytes: &[u8], mode: RecoveryMode) -> Result<Vec<String>, Error> {
    let dir = tempfile::tempdir().unwrap();
    for sub in [READING_DIR, WRITING_DIR] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join(relative), bytes).unwrap();
    let options = Options {
        recovery_mode: mode,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options)?;
    store.flush()?;
    let payloads = store
        .read(b"k")?
        .into_iter()
        .map(|r| String::from_utf8(r.payload).unwrap())
        .collect();
    let skipped = store.stats().corrupt_skipped;
    store.close()?;
    assert!(mode != RecoveryMode::Strict || skipped == 0);
    Ok(payloads)
}

fn finished(name_ts: u64) -> String {
    LogId::at(name_ts).path().display().to_string()
}

#[track_caller]
fn assert_refused(result: Result<Vec<String>, Error>, offset: usize) {
    match result {
        Err(Error::Corrupt {
            path, offset: at, ..
        }) => {
            assert!(path.display().to_string().contains("tx-"), "{path:?}");
            assert_eq!(at, offset as u64);
        }
        other => panic!("strict must refuse, got {other:?}"),
    }
}

#[test]
fn a_flipped_bit_mid_log() {
    let mut bytes = log(&[1, 2, 3]);
    bytes[block_at(1) + 33] ^= 0x04;
    let name = finished(10);
    assert_refused(open_with(&name, &bytes, RecoveryMode::Strict), block_at(1));
    assert_eq!(
        open_with(&name, &bytes, RecoveryMode::PointInTime).unwrap(),
        ["p1"]
    );
    assert_eq!(
        open_with(&name, &bytes, RecoveryMode::SkipCorrupt).unwrap(),
        ["p1", "p3"]
    );
}

#[test]
fn a_truncated_finished_log() {
    let bytes = log(&[1, 2, 3]);
    let cut = &bytes[..block_at(2) + 10];
    let name = finished(10);
    assert_refused(open_with(&name, cut, RecoveryMode::Strict), block_at(2));
    assert_eq!(
        open_with(&name, cut, RecoveryMode::PointInTime).unwrap(),
        ["p1", "p2"]
    );
    assert_eq!(
        open_with(&name, cut, RecoveryMode::SkipCorrupt).unwrap(),
        ["p1", "p2"]
    );
}

#[test]
fn a_seq_going_backwards_under_a_good_checksum() {
    let bytes = log(&[1, 5, 3, 6]);
    let name = finished(10);
    assert_refused(open_with(&name, &bytes, RecoveryMode::Strict), block_at(2));
    assert_eq!(
        open_with(&name, &bytes, RecoveryMode::PointInTime).unwrap(),
        ["p1", "p5"]
    );
    assert_eq!(
        open_with(&name, &bytes, RecoveryMode::SkipCorrupt).unwrap(),
        ["p1", "p5", "p6"]
    );
}

#[test]
fn crash_damage_in_the_leftover_log_is_cut_in_every_mode() {
    let whole = log(&[1, 2, 3]);
    let torn = whole[..whole.len() - 3].to_vec();
    let mut zero_tail = whole[..block_at(2)].to_vec();
    zero_tail.extend_from_slice(&[0u8; 40]);
    let mut hole = whole.clone();
    hole[block_at(1)..block_at(2)].fill(0);
    let cases: [(&str, &[u8], &[&str]); 3] = [
        ("torn tail", &torn, &["p1", "p2"]),
        ("zero-filled tail", &zero_tail, &["p1", "p2"]),
        ("hole followed by intact blocks", &hole, &["p1"]),
    ];
    for (what, bytes, kept) in cases {
        for mode in MODES {
            let got = open_with(WRITING_LOG, bytes, mode)
                .unwrap_or_else(|e| panic!("{what}, {mode:?}: {e}"));
            assert_eq!(got, kept, "{what}, {mode:?}");
        }
    }
}

#[test]
fn seqs_never_go_back_after_damage_hides_them_twice() {
    // Simulator seed 11504, end to end: recovery leaves room above a rotten log; the
    // log is applied and removed; the first log past the room rots too. A new append
    // must still get a seq above every seq handed out before.
    let dir = tempfile::tempdir().unwrap();
    for sub in [READING_DIR, WRITING_DIR] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let mut rotten = log(&[1, 2, 3]);
    rotten[block_at(0) + 5] ^= 0x01;
    std::fs::write(dir.path().join(finished(10)), &rotten).unwrap();
    // No rotation by time: the new record stays in `writing/tx.log` until the close,
    // however long the open and the flush take on a busy machine.
    let options = Options {
        recovery_mode: RecoveryMode::SkipCorrupt,
        rotate_interval_ms: 3_600_000,
        ..Options::default()
    };

    let store = Store::open(dir.path(), options.clone()).unwrap();
    store.flush().unwrap();
    let first = store.append(b"k", b"after the room").unwrap().0;
    assert!(first > 3, "a seq past the room: {first}");
    store.close().unwrap();
    let reading = dir.path().join(READING_DIR);
    let logs: Vec<_> = std::fs::read_dir(&reading).unwrap().collect();
    assert!(
        logs.is_empty(),
        "the rotten log was applied and removed: {logs:?}"
    );
    // Finish the closed log into reading/ by hand, as the next open's recovery would (a
    // store opened for it could apply and remove it before it closes: a race), and rot
    // it: the first log past the room.
    let closed = dir.path().join(WRITING_LOG);
    let finished_past_room = dir.path().join(finished(20));
    std::fs::rename(&closed, &finished_past_room).unwrap();
    let mut bytes = std::fs::read(&finished_past_room).unwrap();
    bytes[LOG_HEADER_LEN + 5] ^= 0x01;
    std::fs::write(&finished_past_room, &bytes).unwrap();

    let store = Store::open(dir.path(), options).unwrap();
    let next = store.append(b"k", b"later").unwrap().0;
    assert!(
        next > first,
        "seq {first} was handed out before, yet {next} came next"
    );
    store.close().unwrap();
}
