//! Batches: a contiguous run of journal entries, postcard-encoded with an explicit
//! format version and signed by the branch's ed25519 key.
//!
//! One signature covers the whole batch, so crypto cost is per batch, not per document.
//! The signature is over the exact body bytes that HQ stores, so a stored batch can be
//! re-verified at any time ("shown with its signature status").
//!
//! Must not: decode anything before the signature is checked, or read a clock or a socket.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codes::BranchCode;
use crate::error::BatchError;
use crate::journal::{check_links, EntryHash, JournalEntry, VerifiedEntry};

/// Batch body format written by this build. Bump on any change to `BatchBody` or
/// `JournalEntry` encoding; readers refuse versions they do not know.
// 3: `DocExt` gained `approval` (the approved draft a document was posted under).
pub const BATCH_FORMAT_VERSION: u16 = 4;
/// Most entries in one batch: bounds HQ's per-batch transaction.
pub const BATCH_ENTRIES_MAX: usize = 2_000;
/// Most body bytes in one batch; must stay below the wire frame limit.
pub const BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;

/// What is signed: who, and the entries as their exact bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchBody {
    pub format_version: u16,
    pub branch: BranchCode,
    pub entries: Vec<Vec<u8>>,
}

/// A body and the branch's signature over its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBatch {
    #[serde(with = "bytes_serde")]
    pub body: Vec<u8>,
    pub signature: Signature,
}

impl SignedBatch {
    /// Encodes and signs. `entries` are journal entry bytes, in order.
    pub fn sign(branch: &BranchCode, entries: Vec<Vec<u8>>, key: &SigningKey) -> SignedBatch {
        let body = BatchBody { format_version: BATCH_FORMAT_VERSION, branch: *branch, entries };
        let body = postcard::to_allocvec(&body).expect("encoding an in-memory batch into a Vec cannot fail");
        let signature = key.sign(&body);
        SignedBatch { body, signature }
    }

    /// Checks only the signature.
    pub fn signature_ok(&self, key: &VerifyingKey) -> bool {
        key.verify(&self.body, &self.signature).is_ok()
    }

    /// Verifies the signature, decodes, checks version, branch, size and internal links.
    /// Returns the entries with their hashes. Nothing here touches any state.
    pub fn open(&self, branch: &BranchCode, key: &VerifyingKey) -> Result<Vec<VerifiedEntry>, BatchError> {
        if !self.signature_ok(key) {
            return Err(BatchError::BadSignature { branch: *branch });
        }
        let body = decode_view(&self.body)?;
        if body.branch != *branch {
            return Err(BatchError::BranchMismatch { claimed: body.branch, session: *branch });
        }
        let entries = decode_entries(&body)?;
        check_links(&entries)?;
        Ok(entries)
    }
}

/// Serde for a byte string, written as postcard writes any `Vec<u8>` (length, then the
/// bytes) so the encoding is unchanged, but copied in one step where the derived code
/// makes one call per byte: a batch body is megabytes on HQ's hot path (frame decode,
/// sealing). Reads also accept a sequence of numbers, which is how JSON carries bytes.
mod bytes_serde {
    use std::fmt;

    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // The hint comes from the peer: bound what it can make us reserve.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

/// A body as read: entries borrowed from the body bytes. Postcard encodes a `Vec<u8>` and
/// a `&[u8]` alike (length, then the bytes), so this reads exactly what `BatchBody`
/// writes; but a borrowed slice is taken in one step, where a `Vec<u8>` is decoded one
/// byte at a time.
#[derive(Deserialize)]
struct BodyView<'a> {
    /// Read and checked on its own first; see [`decode_view`].
    _format_version: u16,
    branch: BranchCode,
    #[serde(borrow)]
    entries: Vec<&'a [u8]>,
}

/// Decodes a body and checks its version and size (no signature check).
pub fn decode_body(bytes: &[u8]) -> Result<BatchBody, BatchError> {
    let view = decode_view(bytes)?;
    Ok(BatchBody { format_version: BATCH_FORMAT_VERSION, branch: view.branch, entries: view.entries.iter().map(|e| e.to_vec()).collect() })
}

fn decode_view(bytes: &[u8]) -> Result<BodyView<'_>, BatchError> {
    // The version is the first field; read it alone first so a newer format gets a clear
    // "upgrade" error instead of a confusing decode failure.
    let (version, _) = postcard::take_from_bytes::<u16>(bytes).map_err(|e| BatchError::Malformed(format!("batch header: {e}")))?;
    if version != BATCH_FORMAT_VERSION {
        return Err(BatchError::UnsupportedVersion { found: version, supported: BATCH_FORMAT_VERSION });
    }
    let body: BodyView = postcard::from_bytes(bytes).map_err(|e| BatchError::Malformed(format!("batch body: {e}")))?;
    if body.entries.is_empty() {
        return Err(BatchError::Empty);
    }
    if body.entries.len() > BATCH_ENTRIES_MAX {
        return Err(BatchError::TooLarge { count: body.entries.len(), max: BATCH_ENTRIES_MAX });
    }
    Ok(body)
}

fn decode_entries(body: &BodyView<'_>) -> Result<Vec<VerifiedEntry>, BatchError> {
    let mut out = Vec::with_capacity(body.entries.len());
    for bytes in &body.entries {
        let entry = JournalEntry::decode(bytes)?;
        if entry.doc.header.branch != body.branch {
            return Err(
                crate::error::ChainError::WrongBranch { seq: entry.seq, expected: body.branch, found: entry.doc.header.branch }.into()
            );
        }
        out.push(VerifiedEntry { hash: EntryHash::of(bytes), bytes: bytes.to_vec(), entry });
    }
    Ok(out)
}

/// Collects entry bytes up to the entry and byte bounds of one batch.
#[derive(Debug)]
pub struct BatchBuilder {
    entries: Vec<Vec<u8>>,
    bytes: usize,
    entries_max: usize,
    bytes_max: usize,
}

impl BatchBuilder {
    pub fn new(entries_max: usize, bytes_max: usize) -> BatchBuilder {
        assert!((1..=BATCH_ENTRIES_MAX).contains(&entries_max));
        assert!(bytes_max <= BATCH_BYTES_MAX);
        BatchBuilder { entries: Vec::new(), bytes: 0, entries_max, bytes_max }
    }

    /// Adds an entry if it fits; the first entry always fits so progress is guaranteed
    /// (a single document is bounded by `DOC_LINES_MAX` far below the frame limit).
    pub fn try_push(&mut self, entry_bytes: Vec<u8>) -> Result<(), Vec<u8>> {
        let full = self.entries.len() >= self.entries_max || (!self.entries.is_empty() && self.bytes + entry_bytes.len() > self.bytes_max);
        if full {
            return Err(entry_bytes);
        }
        self.bytes += entry_bytes.len();
        self.entries.push(entry_bytes);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn finish(self, branch: &BranchCode, key: &SigningKey) -> SignedBatch {
        SignedBatch::sign(branch, self.entries, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ChainHead;
    use crate::testkit::{sample_doc, test_key};

    fn entries(n: u32) -> Vec<Vec<u8>> {
        let mut head = ChainHead::EMPTY;
        (1..=n)
            .map(|i| {
                let (_, bytes, next) = head.append(sample_doc(i));
                head = next;
                bytes
            })
            .collect()
    }

    #[test]
    fn sign_open_round_trip() {
        let key = test_key(1);
        let sh = BranchCode::new("SH").expect("code");
        let batch = SignedBatch::sign(&sh, entries(3), &key);
        let opened = batch.open(&sh, &key.verifying_key()).expect("opens");
        assert_eq!(opened.len(), 3);
        assert_eq!(opened[2].entry.seq, 3);
    }

    #[test]
    fn wrong_key_and_flipped_bits_are_refused() {
        let sh = BranchCode::new("SH").expect("code");
        let batch = SignedBatch::sign(&sh, entries(2), &test_key(1));
        assert!(matches!(batch.open(&sh, &test_key(2).verifying_key()), Err(BatchError::BadSignature { .. })));
        let mut flipped = batch.clone();
        let last = flipped.body.len() - 1;
        flipped.body[last] ^= 1;
        assert!(matches!(flipped.open(&sh, &test_key(1).verifying_key()), Err(BatchError::BadSignature { .. })));
        let hb = BranchCode::new("HB").expect("code");
        assert!(matches!(batch.open(&hb, &test_key(1).verifying_key()), Err(BatchError::BranchMismatch { .. })));
    }

    #[test]
    fn future_format_gets_a_clear_error() {
        let mut body =
            postcard::to_allocvec(&BatchBody { format_version: 9, branch: BranchCode::new("SH").expect("code"), entries: entries(1) })
                .expect("enc");
        assert_eq!(decode_body(&body), Err(BatchError::UnsupportedVersion { found: 9, supported: BATCH_FORMAT_VERSION }));
        body.truncate(3);
        assert!(decode_body(&body).is_err());
    }

    #[test]
    fn borrowed_view_reads_what_the_body_writes() {
        let sh = BranchCode::new("SH").expect("code");
        let entries = entries(3);
        let batch = SignedBatch::sign(&sh, entries.clone(), &test_key(1));
        let body = decode_body(&batch.body).expect("decodes");
        assert_eq!(body, BatchBody { format_version: BATCH_FORMAT_VERSION, branch: sh, entries: entries.clone() });
        let view = decode_view(&batch.body).expect("decodes");
        assert_eq!(view.entries, entries.iter().map(Vec::as_slice).collect::<Vec<_>>());
        assert_eq!(postcard::to_allocvec(&body).expect("enc"), batch.body, "re-encoding gives the signed bytes");
    }

    #[test]
    fn signed_batch_encoding_is_that_of_a_plain_vec() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Plain {
            body: Vec<u8>,
            signature: Signature,
        }
        let batch = SignedBatch::sign(&BranchCode::new("SH").expect("code"), entries(3), &test_key(1));
        let plain = Plain { body: batch.body.clone(), signature: batch.signature };
        let bytes = postcard::to_allocvec(&batch).expect("enc");
        assert_eq!(bytes, postcard::to_allocvec(&plain).expect("enc"));
        assert_eq!(postcard::from_bytes::<SignedBatch>(&bytes).expect("dec"), batch);
        assert_eq!(postcard::from_bytes::<Plain>(&bytes).expect("dec"), plain);
        let json = serde_json::to_string(&batch).expect("json");
        assert_eq!(json, serde_json::to_string(&plain).expect("json"));
        assert_eq!(serde_json::from_str::<SignedBatch>(&json).expect("json"), batch);
        for cut in [0, 1, 2, bytes.len() / 2, bytes.len() - 1] {
            assert!(postcard::from_bytes::<SignedBatch>(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn builder_respects_bounds() {
        let mut b = BatchBuilder::new(2, BATCH_BYTES_MAX);
        let mut e = entries(3).into_iter();
        assert!(b.try_push(e.next().expect("1")).is_ok());
        assert!(b.try_push(e.next().expect("2")).is_ok());
        assert!(b.try_push(e.next().expect("3")).is_err());
        let mut small = BatchBuilder::new(10, 1);
        assert!(small.try_push(vec![0; 100]).is_ok(), "first entry always fits");
        assert!(small.try_push(vec![0; 1]).is_err());
    }
}
