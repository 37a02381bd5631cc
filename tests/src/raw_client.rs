//! A raw QUIC client's TLS for tests and the load generator: it speaks the wire format
//! directly, proves a branch key in the handshake (or none, to enroll or to play a
//! stranger) and does not pin HQ's certificate (every real agent connection tests the
//! pinning). Must not: be used by anything that ships.

use std::sync::Arc;

use protocol::wire::ALPN;
use protocol::SigningKey;

/// TLS 1.3 with Branchline's ALPN, a client certificate self-signed by `key` (or none),
/// and no pinning of HQ's certificate: any server certificate is accepted (see the module
/// header); handshake signatures are still checked.
pub fn unpinned_tls(key: Option<&SigningKey>) -> anyhow::Result<quinn::crypto::rustls::QuicClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(edge::tls::ServerCertCheck::new(provider, |_| Ok(()))));
    let mut tls = match key {
        Some(k) => {
            let (cert, der) = edge::tls::branch_client_cert(k)?;
            builder.with_client_auth_cert(vec![cert], der)?
        }
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(quinn::crypto::rustls::QuicClientConfig::try_from(tls)?)
}
