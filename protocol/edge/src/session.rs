//! Sign-in plumbing both binaries share: the session key each process keeps in its data
//! directory, secret files written with mode 0600, fresh random passwords, and reading a
//! session token from a request's `Authorization: Bearer` or `Cookie` header.
//!
//! No decisions here: who may do what is `protocol::people`'s, minting and checking
//! tokens `protocol::session_token`'s; this module knows no HTTP framework.
//!
//! Must not: decide who may sign in (the binaries look people up; `sign_in` answers).

use std::io::Write;
use std::path::Path;

use rand::Rng;

/// The cookie pages carry the session token in (HttpOnly, SameSite=Strict).
pub const SESSION_COOKIE: &str = "branchline_session";
/// The file in the data directory holding the process's session key (hex).
pub const SESSION_KEY_FILE: &str = "session.key";
/// How long a session lasts: a working day.
pub const SESSION_TTL_SECS: u64 = 12 * 3600;

/// Writes `contents` to `path` readable by the owner only (0600 on Unix), replacing it.
pub fn write_secret(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    // An existing file keeps its old mode on open: set it again.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(contents)?;
    f.sync_all()
}

/// The session key of the process using `dir`: read from `dir/session.key`, or made and
/// written there on first use, so sessions survive a restart of the process.
pub fn load_or_create_session_key(dir: &Path) -> std::io::Result<[u8; 32]> {
    let path = dir.join(SESSION_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => protocol::hex::decode_array::<32>(text.trim())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not 64 hex digits", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::thread_rng().gen();
            write_secret(&path, protocol::hex::encode(&key).as_bytes())?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// Fresh random bytes (salts, token nonces).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::thread_rng().fill(&mut b[..]);
    b
}

/// A random password of 20 letters and digits (about 119 bits), printed once.
pub fn random_password() -> String {
    // No 0/O, 1/l/I: people copy it by hand.
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect()
}

/// The session token a request carries: the bearer token of `authorization`, else the
/// session cookie among `cookie`'s.
pub fn token_from_headers<'a>(authorization: Option<&'a str>, cookie: Option<&'a str>) -> Option<&'a str> {
    if let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")) {
        return Some(token.trim());
    }
    cookie?.split(';').filter_map(|c| c.trim().split_once('=')).find(|(name, _)| *name == SESSION_COOKIE).map(|(_, v)| v.trim())
}

/// The `Set-Cookie` value that hands a page its session.
pub fn session_cookie(token: &str, max_age_secs: u64) -> String {
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_bearer_or_cookie() {
        assert_eq!(token_from_headers(Some("Bearer abc"), None), Some("abc"));
        assert_eq!(token_from_headers(None, Some("x=1; branchline_session=t.k; y=2")), Some("t.k"));
        assert_eq!(token_from_headers(Some("Basic abc"), Some("other=1")), None);
        assert_eq!(token_from_headers(None, None), None);
    }

    #[test]
    fn the_session_key_is_kept_and_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = load_or_create_session_key(dir.path()).expect("created");
        assert_eq!(load_or_create_session_key(dir.path()).expect("read back"), key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SESSION_KEY_FILE)).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_ne!(random_password(), random_password());
    }
}
