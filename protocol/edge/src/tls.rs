//! The TLS parts both binaries share: a branch's client certificate bound to its
//! enrolled ed25519 key, reading that key back out of a peer's certificate, and the
//! rustls verifiers (`ServerCertCheck`: a server certificate judged by a check the
//! caller passes in, e.g. the branch's pinned fingerprint; `BranchCertVerifier`: HQ's
//! optional ed25519 client certificate). Handshake signatures are always checked by
//! rustls's provider.
//!
//! A branch proves its enrolled key in the QUIC handshake: it presents a certificate
//! self-signed with that very key, and TLS 1.3's CertificateVerify proves it holds the
//! private half. HQ then needs only the public key in the certificate to know which
//! branch it speaks to. Names, dates and issuers in these certificates mean nothing and
//! are not checked; the key is the identity.
//!
//! Must not decide who may connect (that is HQ's key index, after the handshake) nor
//! hold endpoint setup.

use std::sync::Arc;

use protocol::SigningKey;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410 §4): SEQUENCE, the
/// algorithm id 1.3.101.112 with no parameters, a BIT STRING of 33 bytes (0 unused
/// bits + the 32 key bytes). Every ed25519 SPKI is exactly this prefix and the key.
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The DER prefix of an ed25519 private key as PKCS#8 v1 (RFC 8410 §7): version 0, the
/// algorithm id, and an OCTET STRING holding the OCTET STRING of the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// The subject name in a branch certificate; informative only (the key is checked).
pub const BRANCH_CERT_NAME: &str = "branchline-branch";

/// Why a branch certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rcgen refused the key or the certificate parameters.
    #[error("making the branch certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// A certificate for `key`, self-signed with it, and the key as rustls wants it: what a
/// branch presents so HQ can tell, from the handshake alone, which enrolled key it holds.
pub fn branch_client_cert(key: &SigningKey) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), TlsError> {
    let mut pkcs8 = Vec::with_capacity(ED25519_PKCS8_PREFIX.len() + 32);
    pkcs8.extend_from_slice(&ED25519_PKCS8_PREFIX);
    pkcs8.extend_from_slice(key.as_bytes());
    let der = PrivatePkcs8KeyDer::from(pkcs8);
    let key_pair = rcgen::KeyPair::try_from(&der)?;
    let cert = rcgen::CertificateParams::new(vec![BRANCH_CERT_NAME.to_string()])?.self_signed(&key_pair)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(der)))
}

/// The ed25519 public key a certificate carries, or `None` if it does not parse as an
/// X.509 certificate or its key is of another kind.
pub fn cert_ed25519_key(cert: &CertificateDer<'_>) -> Option<[u8; 32]> {
    let parsed = webpki::EndEntityCert::try_from(cert).ok()?;
    let spki = parsed.subject_public_key_info();
    let key = spki.as_ref().strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    key.try_into().ok()
}

/// The two handshake-signature checks of a verifier with a `provider` field: rustls's
/// own, with the provider's algorithms. Written once for both verifiers below.
macro_rules! signatures_by_provider {
    () => {
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
    };
}

/// What a client trusts in a server certificate: `Ok` for the one to trust, else the
/// reason rustls reports.
pub type ServerCertTrust = dyn Fn(&CertificateDer<'_>) -> Result<(), rustls::Error> + Send + Sync;

/// rustls's server-certificate verifier, trusting what `trust` accepts (the branch: HQ's
/// pinned fingerprint; the test clients: anything). Names and chains are not looked at.
pub struct ServerCertCheck {
    trust: Box<ServerCertTrust>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertCheck {
    pub fn new(
        provider: Arc<CryptoProvider>,
        trust: impl Fn(&CertificateDer<'_>) -> Result<(), rustls::Error> + Send + Sync + 'static,
    ) -> ServerCertCheck {
        ServerCertCheck { trust: Box::new(trust), provider }
    }
}

impl std::fmt::Debug for ServerCertCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertCheck").finish_non_exhaustive()
    }
}

impl ServerCertVerifier for ServerCertCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        (self.trust)(end_entity).map(|()| ServerCertVerified::assertion())
    }

    signatures_by_provider!();

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
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
        match cert_ed25519_key(end_entity) {
            Some(_) => Ok(ClientCertVerified::assertion()),
            None => Err(rustls::Error::General("a branch certificate must carry an ed25519 key".into())),
        }
    }

    signatures_by_provider!();

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_carries_the_signing_key() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let (cert, _) = branch_client_cert(&key).expect("certificate");
        assert_eq!(cert_ed25519_key(&cert), Some(key.verifying_key().to_bytes()));
    }

    #[test]
    fn other_certificates_carry_no_branch_key() {
        // An ECDSA certificate (rcgen's default) is not a branch certificate.
        let other = rcgen::generate_simple_self_signed(vec!["x".into()]).expect("certificate");
        assert_eq!(cert_ed25519_key(other.cert.der()), None);
        assert_eq!(cert_ed25519_key(&CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])), None);
    }
}
