//! QUIC client setup with HQ's certificate pinned by fingerprint.
//!
//! HQ uses a self-signed certificate; its blake3 fingerprint reaches the branch inside
//! the enrollment token, so the branch trusts exactly that certificate and nothing else,
//! from the first connection on. Signatures are still checked by rustls as usual.
//!
//! The other way round, the branch proves its enrolled key to HQ in the same handshake:
//! it presents a client certificate self-signed with its ed25519 signing key
//! (`edge::tls::branch_client_cert`); HQ lets a hello through only for the branch that
//! key is enrolled for.

use std::sync::Arc;

use anyhow::Context;
use edge::tls::ServerCertCheck;
use protocol::wire::ALPN;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::pki_types::CertificateDer;

/// The name we ask for; HQ's certificate is pinned, so the name is not what we trust.
pub const SERVER_NAME: &str = "branchline-hq";

/// Trusts exactly the certificate whose fingerprint came in the enrollment token.
fn pinned(fingerprint: [u8; 32]) -> impl Fn(&CertificateDer<'_>) -> Result<(), rustls::Error> + Send + Sync + 'static {
    move |end_entity| {
        if protocol::token::cert_fingerprint(end_entity) == fingerprint {
            Ok(())
        } else {
            Err(rustls::Error::General(
                "HQ certificate does not match the pinned fingerprint: wrong HQ address, or someone in between".into(),
            ))
        }
    }
}

/// A client endpoint that trusts only the certificate with `fingerprint` and proves
/// `key` (the branch's enrolled signing key) with a client certificate.
pub fn client_endpoint(fingerprint: [u8; 32], key: &protocol::SigningKey) -> anyhow::Result<quinn::Endpoint> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (cert, cert_key) = edge::tls::branch_client_cert(key).context("making the branch's client certificate")?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 setup")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ServerCertCheck::new(provider, pinned(fingerprint))))
        .with_client_auth_cert(vec![cert], cert_key)
        .context("loading the branch's client certificate")?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls).context("QUIC TLS setup")?));
    // ALPN, idle timeout and keep-alive are HQ's too: one definition in `protocol::wire`.
    client.transport_config(edge::transport_config());
    let mut endpoint = quinn::Endpoint::client("0.0.0.0:0".parse().expect("literal address")).context("binding a UDP socket for QUIC")?;
    endpoint.set_default_client_config(client);
    Ok(endpoint)
}

/// Resolves `HOST:PORT` (names allowed) to the first IPv4 address, or any.
pub async fn resolve(hq: &str) -> anyhow::Result<std::net::SocketAddr> {
    let addrs: Vec<_> =
        tokio::net::lookup_host(hq).await.with_context(|| format!("cannot resolve HQ address {hq:?} (expected HOST:PORT)"))?.collect();
    addrs.iter().find(|a| a.is_ipv4()).or(addrs.first()).copied().with_context(|| format!("HQ address {hq:?} resolves to nothing"))
}
