//! Properties of the log format: round trips, and that no input — arbitrary bytes,
//! truncations, bit flips, junk — makes the decoder panic, hang or yield a record that
//! was not written.

use proptest::prelude::*;
use writelog::format::{
    encode_block, encode_log_header, Batch, Block, DecodeLimits, Kind, LogDecoder, LOG_HEADER_LEN,
};

/// An owned record as a test writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rec {
    seq: u64,
    kind: Kind,
    key: Vec<u8>,
    payload: Vec<u8>,
}

fn arb_batch() -> impl Strategy<Value = Vec<(Kind, Vec<u8>, Vec<u8>)>> {
    let record = (
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 1..24),
        prop::collection::vec(any::<u8>(), 0..80),
    )
        .prop_map(|(delete, key, payload)| {
            if delete {
                (Kind::Delete, key, Vec::new())
            } else {
                (Kind::Append, key, payload)
            }
        });
    prop::collection::vec(record, 1..5)
}

/// Batches with strictly increasing seqs (gaps between batches allowed), encoded.
fn arb_log() -> impl Strategy<Value = (Vec<Vec<Rec>>, Vec<u8>)> {
    (
        1u64..1000,
        prop::collection::vec((arb_batch(), 0u64..3), 0..12),
    )
        .prop_map(|(start, batches)| {
            let mut seq = start;
            let mut out = Vec::new();
            encode_log_header(&mut out);
            let mut written = Vec::new();
            for (batch, gap) in batches {
                seq += gap;
                let len = batch.len() as u32;
                let mut recs = Vec::new();
                for (i, (kind, key, payload)) in batch.into_iter().enumerate() {
                    let block = Block {
                        seq,
                        kind,
                        batch_first: i == 0,
                        batch_left: len - 1 - i as u32,
                        key: &key,
                        payload: &payload,
                    };
                    encode_block(&mut out, &block);
                    recs.push(Rec {
                        seq,
                        kind,
                        key,
                        payload,
                    });
                    seq += 1;
                }
                written.push(recs);
            }
            (written, out)
        })
}

fn owned(batch: &Batch<'_>) -> Vec<Rec> {
    batch
        .blocks
        .iter()
        .map(|b| Rec {
            seq: b.seq,
            kind: b.kind,
            key: b.key.to_vec(),
            payload: b.payload.to_vec(),
        })
        .collect()
}

/// Decodes everything (going on past damage) and checks the walk is bounded.
fn decode_all(bytes: &[u8]) -> Vec<Vec<Rec>> {
    let mut batches = Vec::new();
    let mut items = 0usize;
    for item in LogDecoder::new(bytes, DecodeLimits::default()) {
        items += 1;
        assert!(items <= bytes.len() + 2, "the walk must end");
        if let Ok(batch) = item {
            batches.push(owned(&batch));
        }
    }
    batches
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip((written, bytes) in arb_log()) {
        let mut decoded = Vec::new();
        for item in LogDecoder::new(&bytes, DecodeLimits::default()) {
            let batch = item.map_err(|d| TestCaseError::fail(format!("damage in a clean log: {d:?}")))?;
            decoded.push(owned(&batch));
        }
        prop_assert_eq!(decoded, written);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_all(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_good_header_never_panic(tail in prop::collection::vec(any::<u8>(), 0..600)) {
        let mut bytes = Vec::new();
        encode_log_header(&mut bytes);
        bytes.extend_from_slice(&tail);
        decode_all(&bytes);
    }

    #[test]
    fn a_truncated_log_yields_exactly_the_whole_batches_before_the_cut(
        (written, bytes) in arb_log(),
        cut in any::<prop::sample::Index>(),
    ) {
        let cut = cut.index(bytes.len() + 1);
        let decoded = decode_all(&bytes[..cut]);
        prop_assert!(decoded.len() <= written.len());
        prop_assert_eq!(&decoded[..], &written[..decoded.len()], "a prefix of what was written");
        let mut decoder = LogDecoder::new(&bytes[..cut], DecodeLimits::default());
        for _ in decoder.by_ref() {}
        prop_assert!(decoder.valid_prefix_len() <= cut as u64);
    }

    #[test]
    fn bit_flips_never_yield_a_record_that_was_not_written(
        (written, mut bytes) in arb_log(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        for (at, bit) in flips {
            let at = at.index(bytes.len());
            bytes[at] ^= 1 << bit;
        }
        for batch in decode_all(&bytes) {
            prop_assert!(written.contains(&batch), "decoded a batch that was never written: {:?}", batch);
        }
    }

    #[test]
    fn junk_spliced_into_a_log_never_yields_a_record_that_was_not_written(
        (written, bytes) in arb_log(),
        at in any::<prop::sample::Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..64),
    ) {
        let at = LOG_HEADER_LEN + at.index(bytes.len() - LOG_HEADER_LEN + 1);
        let mut spliced = bytes[..at].to_vec();
        spliced.extend_from_slice(&junk);
        spliced.extend_from_slice(&bytes[at..]);
        for batch in decode_all(&spliced) {
            prop_assert!(written.contains(&batch), "decoded a batch that was never written: {:?}", batch);
        }
    }
}
