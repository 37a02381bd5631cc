//! HQ's TLS identity: a self-signed certificate whose fingerprint branches pin (it
//! travels inside every enrollment token), so no public CA is involved; and HQ's
//! down-channel signing key (ed25519), whose public half each branch gets at enrollment
//! and checks every down message against (`protocol::down`).
//!
//! Must not: decide who may connect (that is `door`) or sign anything with the down key
//! but down messages.

use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CERT_FILE: &str = "hq-cert.der";
const KEY_FILE: &str = "hq-key.der";
/// The down-channel key's 32-byte ed25519 seed, mode 0600.
const DOWN_KEY_FILE: &str = "hq-down-key.bin";

/// Why HQ's identity could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// `hq init` has not been run in this data directory.
    #[error("no HQ identity in {dir}: run `hq init --data-dir {dir}` first")]
    Missing { dir: String },
    /// Generating the self-signed certificate failed.
    #[error("generating HQ certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// Reading or writing the certificate or key file failed.
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
}

pub struct Identity {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
    /// Signs every down message; branches hold the public half (from `Enrolled`).
    pub down_key: protocol::SigningKey,
}

impl Identity {
    /// Creates a new identity unless one exists. Returns true if it created one.
    pub fn create_if_missing(data_dir: &Path) -> Result<bool, IdentityError> {
        if data_dir.join(CERT_FILE).exists() {
            return Ok(false);
        }
        // The name is not checked by branches (they pin the fingerprint); it is there
        // so the certificate says what it is to anyone who looks.
        let certified = rcgen::generate_simple_self_signed(vec!["branchline-hq".to_string()])?;
        write_private(&data_dir.join(KEY_FILE), &certified.key_pair.serialize_der())?;
        let cert_path = data_dir.join(CERT_FILE);
        std::fs::write(&cert_path, certified.cert.der()).map_err(|source| IdentityError::Io {
            what: "writing",
            path: cert_path,
            source,
        })?;
        Ok(true)
    }

    pub fn load(data_dir: &Path) -> Result<Identity, IdentityError> {
        let cert = std::fs::read(data_dir.join(CERT_FILE)).map_err(|_| IdentityError::Missing { dir: data_dir.display().to_string() })?;
        let key_path = data_dir.join(KEY_FILE);
        let key = std::fs::read(&key_path).map_err(|source| IdentityError::Io { what: "reading", path: key_path, source })?;
        let down_key = down_key(data_dir)?;
        Ok(Identity { cert: CertificateDer::from(cert), key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)), down_key })
    }

    pub fn fingerprint(&self) -> [u8; 32] {
        protocol::token::cert_fingerprint(&self.cert)
    }
}

/// HQ's down-channel key, made on first use: a data directory initialised before the
/// down channel existed gets one the first time it is loaded.
fn down_key(data_dir: &Path) -> Result<protocol::SigningKey, IdentityError> {
    let path = data_dir.join(DOWN_KEY_FILE);
    if !path.exists() {
        let seed: [u8; 32] = rand::random();
        write_private(&path, &seed)?;
        return Ok(protocol::SigningKey::from_bytes(&seed));
    }
    let bytes = std::fs::read(&path).map_err(|source| IdentityError::Io { what: "reading", path: path.clone(), source })?;
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| IdentityError::Io {
        what: "reading (not a 32-byte key)",
        path,
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })?;
    Ok(protocol::SigningKey::from_bytes(&seed))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let io = |what| move |source| IdentityError::Io { what, path: path.to_path_buf(), source };
    let mut f = opts.open(path).map_err(io("creating"))?;
    f.write_all(bytes).map_err(io("writing"))?;
    f.sync_all().map_err(io("syncing"))
}
