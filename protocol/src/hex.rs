//! Lower-case hex for hashes, keys, fingerprints and token parts: the one hex encoder
//! of the workspace (tokens, entry hashes, HQ's fingerprint print-out all use it).
//!
//! Pure text conversion; it must not grow into a general codec.

/// `bytes` as lower-case hex, two digits per byte.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Exactly `N` bytes from `2 * N` hex digits (either case); `None` for anything else.
pub fn decode_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// Bytes from an even number of hex digits (either case); `None` for anything else.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes().chunks_exact(2).map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?)).collect()
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        assert_eq!(encode(&bytes), "000fa5ff");
        assert_eq!(decode_array::<4>("000fa5ff"), Some(bytes));
        assert_eq!(decode_array::<4>("000FA5FF"), Some(bytes));
        for bad in ["000fa5f", "000fa5fff", "000fa5fg", "+0", "é0000000"] {
            assert_eq!(decode_array::<4>(bad), None, "{bad}");
        }
        // `u8::from_str_radix` (the old decoder) took a leading '+'; this one does not.
        assert_eq!(decode_array::<1>("+f"), None);
        assert_eq!(decode("000FA5ff"), Some(bytes.to_vec()));
        assert_eq!(decode(""), Some(Vec::new()));
        for bad in ["0", "0g", "+f", "é0"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
