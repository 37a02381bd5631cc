//! HQ's QUIC door: who a TLS peer is, and whether its hello may pass.
//!
//! A branch presents a client certificate self-signed with its enrolled ed25519 key
//! (`edge::tls`); rustls checks the handshake signature with the certificate's key, so a
//! peer presenting a certificate holds its private key. Client authentication is
//! optional: a peer without a certificate can still enroll, and nothing else. After the
//! handshake, the server reads the key from the peer's certificate ([`peer_of`]) and
//! [`admit`] decides a hello against the key index: the key must be enrolled, and for
//! the very branch the hello names.
//!
//! Must not write anything, nor tell a peer that proved no enrolled key anything about
//! any branch: refusals for such peers carry one fixed text.

use protocol::codes::BranchCode;
use rustls::pki_types::CertificateDer;

use crate::store::{KeyIndex, KeyStatus};

/// QUIC application close code for "this branch's key was revoked".
pub const CLOSE_REVOKED: quinn::VarInt = quinn::VarInt::from_u32(0x4b);

/// Largest frame a peer without an enrolled key may send: an enrollment (a token and a
/// key) or a hello fits with room to spare; a batch does not.
pub const ANONYMOUS_FRAME_BYTES_MAX: usize = 4 * 1024;

/// The one refusal text for a peer that proved no enrolled key: it names no branch.
pub const NO_KEY_TEXT: &str =
    "this connection proved no enrolled branch key: enroll with a token from HQ (`hq branch add` or `hq branch token`)";

/// Who the peer proved to be in the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// No client certificate (or one without an ed25519 key, which the verifier refuses).
    Anonymous,
    /// The ed25519 key of the peer's certificate, whose private half it holds.
    Key([u8; 32]),
}

/// The peer of an established connection.
pub fn peer_of(conn: &quinn::Connection) -> Peer {
    let Some(identity) = conn.peer_identity() else { return Peer::Anonymous };
    let Ok(certs) = identity.downcast::<Vec<CertificateDer<'static>>>() else { return Peer::Anonymous };
    match certs.first().and_then(edge::tls::cert_ed25519_key) {
        Some(k) => Peer::Key(k),
        None => Peer::Anonymous,
    }
}

/// Why a hello was refused: the text for the peer, and the branch to keep the refusal
/// under when the peer proved a key HQ knows (else it is only counted).
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub text: String,
    pub known_branch: Option<BranchCode>,
}

/// May a hello naming `branch` pass, from a peer that proved `who`?
pub fn admit(keys: &KeyIndex, who: &Peer, branch: &BranchCode) -> Result<(), Refusal> {
    let unknown = || Refusal { text: NO_KEY_TEXT.to_string(), known_branch: None };
    let Peer::Key(k) = who else { return Err(unknown()) };
    match keys.lookup(k) {
        None => Err(unknown()),
        Some(KeyStatus::Enrolled(b)) if b == branch => Ok(()),
        Some(KeyStatus::Enrolled(b)) => {
            Err(Refusal { text: format!("this key is enrolled for branch {b}, not {branch}"), known_branch: Some(*b) })
        }
        Some(KeyStatus::Revoked { branch: b, at_unix, reason }) => Err(Refusal {
            text: format!("branch {b}'s key was revoked at HQ (unix time {at_unix}: {reason}); ask HQ for a new token and enroll again"),
            known_branch: Some(*b),
        }),
    }
}

/// rustls's check of a client certificate (optional, an ed25519 key): shared in
/// `edge::tls`; which branch the key belongs to is decided after the handshake (`admit`).
pub use edge::tls::BranchCertVerifier;
