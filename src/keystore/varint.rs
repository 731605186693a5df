//! LEB128 varints for the run index: seven bits a byte, low bits first, the high bit set on
//! every byte but the last. A `u64` takes at most ten bytes.

/// Bytes the longest `u64` varint takes.
pub const VARINT_LEN_MAX: usize = 10;

/// Appends `value` as a varint.
pub fn put(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a varint at `*pos` in `input` and moves `*pos` past it. `None` when the input ends
/// first, or the varint is longer than ten bytes or overflows a `u64`.
pub fn get(input: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..VARINT_LEN_MAX {
        let byte = *input.get(*pos + i)?;
        let bits = u64::from(byte & 0x7F);
        if i == VARINT_LEN_MAX - 1 && bits > 1 {
            return None;
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_overlong_input() {
        for value in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX - 1, u64::MAX] {
            let mut out = Vec::new();
            put(&mut out, value);
            assert!(out.len() <= VARINT_LEN_MAX);
            let mut pos = 0;
            assert_eq!(get(&out, &mut pos), Some(value));
            assert_eq!(pos, out.len());
            for cut in 0..out.len() {
                assert_eq!(get(&out[..cut], &mut 0), None, "{value} cut at {cut}");
            }
        }
        assert_eq!(get(&[0xFF; 11], &mut 0), None);
        assert_eq!(
            get(
                &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02],
                &mut 0
            ),
            None
        );
    }
}
