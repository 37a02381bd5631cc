//! Messages of the branch–HQ exchange and their framing on a QUIC stream.
//!
//! Frame: `u32` big-endian length of what follows, then one wire-version byte, then a
//! postcard-encoded [`Message`]. Lengths are bounded before any allocation, so a peer
//! that sends garbage costs us at most one frame of memory and gets a clear error.
//!
//! Must not: touch a socket (the binaries' `edge::framed` moves the bytes) or decide what a
//! message means (`sync`).

use serde::{Deserialize, Serialize};

use crate::batch::{SignedBatch, BATCH_BYTES_MAX};
use crate::codes::BranchCode;
use crate::error::WireError;
use crate::journal::ChainHead;
use crate::profile::BranchProfile;

/// Wire version written by this build.
pub const WIRE_VERSION: u8 = 1;
/// Largest frame accepted: a full batch plus its envelope.
pub const FRAME_BYTES_MAX: usize = BATCH_BYTES_MAX + 64 * 1024;
/// Bytes of the length prefix.
pub const FRAME_HEADER_BYTES: usize = 4;
/// Longest human text in a reject.
pub const REJECT_TEXT_CHARS_MAX: usize = 500;

/// ALPN of the Branchline sync protocol; both sides refuse anything else.
pub const ALPN: &[u8] = b"branchline/1";
/// A QUIC connection without traffic is closed after this; branches reconnect with backoff.
// A restarted HQ cannot reset connections of its previous process (new reset key), so a
// branch notices only by this timeout; it bounds how long the branch's `link_up` can be stale.
pub const IDLE_TIMEOUT_MS: u64 = 10_000;
/// Keep-alive interval: well under the idle timeout, so a quiet but healthy link stays up.
pub const KEEPALIVE_MS: u64 = 2_000;

/// Why a peer refused something. Stable codes for counting; the text explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectCode {
    /// Bytes that are not a valid frame, message or batch.
    Malformed,
    /// Batch signature does not verify against the enrolled key.
    BadSignature,
    /// The batch contradicts entries HQ already holds.
    Fork,
    /// The branch is not enrolled (or was removed).
    UnknownBranch,
    /// Enrollment token is unknown, expired or already used.
    BadToken,
    /// A newer format than this side reads.
    UnsupportedVersion,
    /// A message that makes no sense at this point of the exchange.
    OutOfOrder,
    /// The branch's journal is behind what HQ already applied: it was restored from an
    /// old copy. Continuing would reuse sequence numbers.
    BranchBehind,
    /// HQ could not store the batch (disk); retry later.
    Internal,
}

/// Everything that crosses the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Branch → HQ, first on every connection: who I am and what I have, including the
    /// last down message (`protocol::down`) it applied durably.
    Hello { branch: BranchCode, head: ChainHead, profile_version: u64, down_applied: u64, agent: String },
    /// HQ → branch: the head HQ has durably applied, and a newer profile if any.
    Resume { applied: ChainHead, profile: Option<BranchProfile> },
    /// Branch → HQ: a signed run of journal entries.
    Batch(SignedBatch),
    /// HQ → branch: everything up to and including `applied` is durable at HQ.
    Ack { applied: u64 },
    /// HQ → branch: a batch started past HQ's head; send again from `from`.
    ResendFrom { from: u64 },
    /// Either way: refused, with a code for counting and a text for people.
    Reject { code: RejectCode, text: String },
    /// Branch → HQ on a fresh install: one-time token and the branch's public key.
    Enroll { token: String, branch_key: [u8; 32] },
    /// HQ → branch: enrollment accepted; here is your profile, and HQ's down-channel key
    /// (ed25519, public) that signs every `Down` message the branch will accept.
    Enrolled { profile: BranchProfile, hq_down_key: [u8; 32] },
    /// HQ → branch, any time after resume: HQ changed the branch's scope, the catalog or
    /// credit limits; install this profile.
    Profile { profile: BranchProfile },
    /// HQ → branch, after resume: one signed down message (`protocol::down::SignedDown`
    /// as its `to_bytes`), in seq order, a bounded window at a time.
    Down(Vec<u8>),
    /// Branch → HQ: every down message up to and including `seq` is durably applied.
    DownAck { seq: u64 },
    /// Branch → HQ, after resume: a draft that needs HQ's approval
    /// (`protocol::approval::SignedDraft` as its `to_bytes`, signed by the branch key).
    /// Resent after every resume until acked; HQ keeps one per id.
    Draft(Vec<u8>),
    /// HQ → branch: draft `id` is durable at HQ (in its approval queue).
    DraftAck { id: u64 },
}

impl Message {
    pub fn reject(code: RejectCode, text: impl Into<String>) -> Message {
        let mut text: String = text.into();
        if text.chars().count() > REJECT_TEXT_CHARS_MAX {
            text = text.chars().take(REJECT_TEXT_CHARS_MAX).collect();
        }
        Message::Reject { code, text }
    }

    /// One frame: length, version, body.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut out = vec![0u8; FRAME_HEADER_BYTES];
        out.push(WIRE_VERSION);
        let mut out = postcard::to_extend(self, out).expect("encoding an in-memory message into a Vec cannot fail");
        let len = (out.len() - FRAME_HEADER_BYTES) as u32;
        out[..FRAME_HEADER_BYTES].copy_from_slice(&len.to_be_bytes());
        out
    }

    /// Decodes a frame payload (after the length prefix).
    pub fn from_payload(payload: &[u8]) -> Result<Message, WireError> {
        let (&version, rest) = payload.split_first().ok_or(WireError::EmptyFrame)?;
        if version != WIRE_VERSION {
            return Err(WireError::UnsupportedVersion { found: version, supported: WIRE_VERSION });
        }
        let (msg, tail) = postcard::take_from_bytes::<Message>(rest).map_err(|e| WireError::Malformed(e.to_string()))?;
        if !tail.is_empty() {
            return Err(WireError::Malformed(format!("{} trailing bytes after the message", tail.len())));
        }
        Ok(msg)
    }
}

/// Reads a frame's length prefix and checks the bound before anything is allocated.
pub fn frame_len(header: [u8; FRAME_HEADER_BYTES]) -> Result<usize, WireError> {
    let len = u32::from_be_bytes(header) as usize;
    if len == 0 {
        return Err(WireError::EmptyFrame);
    }
    if len > FRAME_BYTES_MAX {
        return Err(WireError::FrameTooLarge { len, max: FRAME_BYTES_MAX });
    }
    Ok(len)
}

/// Sans-IO frame reassembly: push bytes as they arrive, pop whole messages.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, WireError> {
        if self.buf.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER_BYTES];
        header.copy_from_slice(&self.buf[..FRAME_HEADER_BYTES]);
        let len = frame_len(header)?;
        if self.buf.len() < FRAME_HEADER_BYTES + len {
            return Ok(None);
        }
        let msg = Message::from_payload(&self.buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len]);
        self.buf.drain(..FRAME_HEADER_BYTES + len);
        msg.map(Some)
    }

    /// Bytes held that are not yet a whole frame (a truncated stream leaves some).
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ChainHead;

    #[test]
    fn frames_round_trip_byte_by_byte() {
        let msgs = vec![
            Message::Hello {
                branch: BranchCode::new("SH").expect("code"),
                head: ChainHead::EMPTY,
                profile_version: 3,
                down_applied: 0,
                agent: "t".into(),
            },
            Message::Down(vec![1, 2, 3]),
            Message::DownAck { seq: 7 },
            Message::Ack { applied: 42 },
            Message::reject(RejectCode::Fork, "x".repeat(2000)),
            Message::Draft(vec![4, 5]),
            Message::DraftAck { id: 3 },
        ];
        let mut dec = FrameDecoder::default();
        let mut got = Vec::new();
        for m in &msgs {
            for b in m.to_frame() {
                dec.push(&[b]);
                if let Some(m) = dec.next_message().expect("valid") {
                    got.push(m);
                }
            }
        }
        assert_eq!(got.len(), 7);
        assert_eq!(got[5..], msgs[5..]);
        assert_eq!(got[0], msgs[0]);
        assert!(matches!(&got[4], Message::Reject { text, .. } if text.len() == REJECT_TEXT_CHARS_MAX));
    }

    #[test]
    fn oversized_and_garbage_frames_are_errors() {
        let mut dec = FrameDecoder::default();
        dec.push(&u32::MAX.to_be_bytes());
        assert!(matches!(dec.next_message(), Err(WireError::FrameTooLarge { .. })));
        assert!(Message::from_payload(&[WIRE_VERSION, 0xff, 0xff, 0xff]).is_err());
        assert!(matches!(Message::from_payload(&[7, 0]), Err(WireError::UnsupportedVersion { found: 7, .. })));
        assert_eq!(Message::from_payload(&[]), Err(WireError::EmptyFrame));
    }
}
