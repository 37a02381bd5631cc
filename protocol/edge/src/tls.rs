//! The TLS parts both binaries share: a branch's client certificate bound to its
//! enrolled ed25519 key, and reading that key back out of a peer's certificate.
//!
//! A branch proves its enrolled key in the QUIC handshake: it presents a certificate
//! self-signed with that very key, and TLS 1.3's CertificateVerify proves it holds the
//! private half. HQ then needs only the public key in the certificate to know which
//! branch it speaks to. Names, dates and issuers in these certificates mean nothing and
//! are not checked; the key is the identity.
//!
//! Must not decide who may connect (that is HQ's key index) nor hold endpoint setup.

use protocol::SigningKey;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

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
