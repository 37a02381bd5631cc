//! Sealed storage records: postcard bytes behind a format byte and a checksum.
//!
//! Both sides store everything in sled, which we treat as untrusted: a torn write, a bit
//! flip or a file from another build must be detected on read, not silently decoded into
//! wrong books. The layout is `[format u8][blake3(payload)[..8]][payload]`. Pure: the
//! edges call `seal` before a write and `open` after a read.
//!
//! Must not: know what a record holds.

use serde::{de::DeserializeOwned, Serialize};

/// Storage record format written by this build.
pub const RECORD_FORMAT: u8 = 1;
const CHECKSUM_BYTES: usize = 8;
const HEADER_BYTES: usize = 1 + CHECKSUM_BYTES;

/// A stored record that cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("stored record under {key} is truncated ({len} bytes)")]
    Truncated { key: String, len: usize },
    #[error("stored record under {key} has format {found}; this build reads {supported} (data from a newer build?)")]
    Format { key: String, found: u8, supported: u8 },
    #[error("stored record under {key} fails its checksum: the store is corrupt; restore it or resync from HQ")]
    Checksum { key: String },
    #[error("stored record under {key} does not decode: {detail}")]
    Decode { key: String, detail: String },
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM_BYTES] {
    let h = blake3::hash(payload);
    let mut out = [0u8; CHECKSUM_BYTES];
    out.copy_from_slice(&h.as_bytes()[..CHECKSUM_BYTES]);
    out
}

/// Seals raw bytes (already encoded, e.g. journal entry bytes).
pub fn seal_bytes(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.push(RECORD_FORMAT);
    out.extend_from_slice(&checksum(payload));
    out.extend_from_slice(payload);
    out
}

/// Encodes and seals a value.
pub fn seal<T: Serialize>(value: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(value).expect("encoding an in-memory record into a Vec cannot fail");
    seal_bytes(&payload)
}

/// Checks a sealed record and returns its payload bytes. `key` names it in errors.
pub fn open_bytes<'a>(key: &dyn std::fmt::Display, bytes: &'a [u8]) -> Result<&'a [u8], RecordError> {
    if bytes.len() < HEADER_BYTES {
        return Err(RecordError::Truncated { key: key.to_string(), len: bytes.len() });
    }
    if bytes[0] != RECORD_FORMAT {
        return Err(RecordError::Format { key: key.to_string(), found: bytes[0], supported: RECORD_FORMAT });
    }
    let payload = &bytes[HEADER_BYTES..];
    if bytes[1..HEADER_BYTES] != checksum(payload) {
        return Err(RecordError::Checksum { key: key.to_string() });
    }
    Ok(payload)
}

/// Checks and decodes a sealed record.
pub fn open<T: DeserializeOwned>(key: &dyn std::fmt::Display, bytes: &[u8]) -> Result<T, RecordError> {
    let payload = open_bytes(key, bytes)?;
    postcard::from_bytes(payload).map_err(|e| RecordError::Decode { key: key.to_string(), detail: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flipped_bit_is_caught() {
        let sealed = seal(&(42u64, "上海".to_string()));
        assert_eq!(open::<(u64, String)>(&"k", &sealed), Ok((42, "上海".to_string())));
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(open::<(u64, String)>(&"k", &bad).is_err(), "bit {i}");
        }
        assert!(matches!(open::<u64>(&"k", &sealed[..4]), Err(RecordError::Truncated { .. })));
    }
}
