//! HQ's TLS identity: a self-signed certificate whose fingerprint branches pin (it
//! travels inside every enrollment token), so no public CA is involved.

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CERT_FILE: &str = "hq-cert.der";
const KEY_FILE: &str = "hq-key.der";

pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Creates a new identity unless one exists. Returns true if it created one.
    pub fn create_if_missing(data_dir: &Path) -> anyhow::Result<bool> {
        if data_dir.join(CERT_FILE).exists() {
            return Ok(false);
        }
        // The name is not checked by branches (they pin the fingerprint); it is there
        // so the certificate says what it is to anyone who looks.
        let certified = rcgen::generate_simple_self_signed(vec!["branchline-hq".to_string()]).context("generating HQ certificate")?;
        write_private(&data_dir.join(KEY_FILE), &certified.key_pair.serialize_der())?;
        std::fs::write(data_dir.join(CERT_FILE), certified.cert.der()).context("writing HQ certificate")?;
        Ok(true)
    }

    pub fn load(data_dir: &Path) -> anyhow::Result<Identity> {
        let cert = std::fs::read(data_dir.join(CERT_FILE))
            .with_context(|| format!("no HQ identity in {}: run `hq init --data-dir {}` first", data_dir.display(), data_dir.display()))?;
        let key = std::fs::read(data_dir.join(KEY_FILE)).context("reading HQ key")?;
        Ok(Identity { cert: CertificateDer::from(cert), key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)) })
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        protocol::token::cert_fingerprint(&self.cert)
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}
