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

use std::sync::Arc;

use protocol::codes::BranchCode;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

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

/// rustls's check of a client certificate: optional, an ed25519 key, and the handshake
/// signed with it. Which branch the key belongs to is decided after the handshake.
#[derive(Debug)]
pub struct BranchCertVerifier {
    provider: Arc<CryptoProvider>,
}

impl BranchCertVerifier {
    pub fn new(provider: Arc<CryptoProvider>) -> BranchCertVerifier {
        BranchCertVerifier { provider }
    }
}

impl ClientCertVerifier for BranchCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    /// Optional, so that a branch without a key yet can enroll.
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Self-signed by design: the key is the identity, not a chain to some CA.
        match edge::tls::cert_ed25519_key(end_entity) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(rustls::Error::General("a branch certificate must carry an ed25519 key".into())),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}
