//! Pins the log format's bytes: any change to the encoding shows up as a snapshot diff.

use writelog::format::{crc64, encode_block, encode_log_header, Block, Kind};

fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(row, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            format!("{:04x}: {}", row * 16, hex.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn crc_check_value_is_crc64_xz() {
    assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
}

#[test]
fn a_known_log_encodes_to_these_bytes() {
    let mut log = Vec::new();
    encode_log_header(&mut log);
    let blocks = [
        Block {
            seq: 1,
            kind: Kind::Append,
            batch_first: true,
            batch_left: 0,
            key: b"k1",
            payload: b"hello",
        },
        Block {
            seq: 2,
            kind: Kind::Append,
            batch_first: true,
            batch_left: 1,
            key: b"k2",
            payload: b"a",
        },
        Block {
            seq: 3,
            kind: Kind::Append,
            batch_first: false,
            batch_left: 0,
            key: b"k1",
            payload: b"",
        },
        Block {
            seq: 4,
            kind: Kind::Delete,
            batch_first: true,
            batch_left: 0,
            key: b"k2",
            payload: b"",
        },
    ];
    for block in &blocks {
        encode_block(&mut log, block);
    }
    insta::assert_snapshot!(hex_dump(&log));
}
