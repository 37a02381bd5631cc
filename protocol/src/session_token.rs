//! Sign-in: password hashes and expiring bearer tokens.
//!
//! Passwords are stored as argon2id PHC strings (the `argon2` crate); the salt comes in as
//! an argument, so hashing is pure. After a password check the edge mints a token:
//! `BLS1.<claims hex>.<mac hex>`, where the claims are issue and expiry time, a random
//! nonce and the login, and the MAC is blake3's keyed hash under the server's 32-byte key.
//! Verifying checks the MAC in constant time before reading a claim, then the expiry.
//!
//! This module must not read the clock, draw random bytes or keep sessions: time, salt,
//! nonce and key are arguments, and revoking sessions early is the caller's (rotate the key).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use subtle::ConstantTimeEq;

use crate::codes::{OperatorId, CODE_BYTES_MAX};

const TOKEN_PREFIX: &str = "BLS1";
/// Domain separation: this key's MACs mean "session claims", nothing else.
const MAC_CONTEXT: &[u8] = b"branchline session token v1\0";
/// Longest session: a shift plus slack. Longer requests are cut to this.
pub const SESSION_TTL_SECS_MAX: u64 = 24 * 3600;
/// Bytes of claims before the login: issued (8), expires (8), nonce (16).
const CLAIMS_FIXED_BYTES: usize = 8 + 8 + 16;
/// Longest token we read; anything longer is malformed before any work is done.
pub const TOKEN_CHARS_MAX: usize = TOKEN_PREFIX.len() + 2 + 2 * (CLAIMS_FIXED_BYTES + CODE_BYTES_MAX) + 2 * 32;
/// Longest password accepted, in bytes: bounds the hashing work a caller can ask for.
pub const PASSWORD_BYTES_MAX: usize = 1_024;
/// Longest PHC string we parse.
pub const PHC_CHARS_MAX: usize = 256;
/// Most memory a stored hash may ask of verification, in KiB (a tampered store must not
/// make sign-in allocate gigabytes).
pub const ARGON2_MEMORY_KIB_MAX: u32 = 256 * 1024;

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub login: OperatorId,
    pub issued_unix: u64,
    pub expires_unix: u64,
    pub nonce: [u8; 16],
}

/// Why a token was refused. The edge answers 401 for each.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("not a Branchline session token; sign in again")]
    Malformed,
    #[error("session token not issued by this server (bad MAC); sign in again")]
    BadMac,
    #[error("session expired at {expires_unix} (now {now_unix}); sign in again")]
    Expired { expires_unix: u64, now_unix: u64 },
}

fn mac(key: &[u8; 32], claims: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(MAC_CONTEXT);
    h.update(claims);
    *h.finalize().as_bytes()
}

/// Mints a token for `login`, valid from `issued_unix` for `ttl_secs` (at most
/// [`SESSION_TTL_SECS_MAX`]). `nonce` must be fresh random bytes so two tokens differ.
pub fn mint(key: &[u8; 32], login: &OperatorId, issued_unix: u64, ttl_secs: u64, nonce: [u8; 16]) -> String {
    let expires_unix = issued_unix.saturating_add(ttl_secs.min(SESSION_TTL_SECS_MAX));
    let mut claims = Vec::with_capacity(CLAIMS_FIXED_BYTES + login.as_str().len());
    claims.extend_from_slice(&issued_unix.to_be_bytes());
    claims.extend_from_slice(&expires_unix.to_be_bytes());
    claims.extend_from_slice(&nonce);
    claims.extend_from_slice(login.as_str().as_bytes());
    format!("{TOKEN_PREFIX}.{}.{}", crate::hex::encode(&claims), crate::hex::encode(&mac(key, &claims)))
}

/// Verifies a token at `now_unix`: shape, then MAC (constant time), then expiry.
pub fn verify(key: &[u8; 32], token: &str, now_unix: u64) -> Result<Claims, TokenError> {
    if token.len() > TOKEN_CHARS_MAX {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(TOKEN_PREFIX), Some(claims), Some(tag), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let (claims, tag) = (crate::hex::decode(claims).ok_or(TokenError::Malformed)?, crate::hex::decode(tag).ok_or(TokenError::Malformed)?);
    if claims.len() <= CLAIMS_FIXED_BYTES || tag.len() != 32 {
        return Err(TokenError::Malformed);
    }
    if !bool::from(mac(key, &claims).ct_eq(&tag[..])) {
        return Err(TokenError::BadMac);
    }
    // Only bytes this server signed are read from here on.
    let u64_at = |i: usize| u64::from_be_bytes(claims[i..i + 8].try_into().expect("slice of 8 within the checked length"));
    let (issued_unix, expires_unix) = (u64_at(0), u64_at(8));
    let nonce: [u8; 16] = claims[16..32].try_into().expect("slice of 16 within the checked length");
    let login =
        std::str::from_utf8(&claims[CLAIMS_FIXED_BYTES..]).ok().and_then(|s| OperatorId::new(s).ok()).ok_or(TokenError::Malformed)?;
    if now_unix >= expires_unix {
        return Err(TokenError::Expired { expires_unix, now_unix });
    }
    Ok(Claims { login, issued_unix, expires_unix, nonce })
}

/// Argon2id cost. `OWASP` is the default for stored passwords; `TEST` is cheap, for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl PasswordParams {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    pub const OWASP: PasswordParams = PasswordParams { memory_kib: 19 * 1024, iterations: 2, lanes: 1 };
    /// The least argon2 allows: for tests, never for stored passwords.
    pub const TEST: PasswordParams = PasswordParams { memory_kib: 8, iterations: 1, lanes: 1 };
}

/// Why a password could not be hashed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    #[error("a password is at most {max} bytes")]
    TooLong { max: usize },
    #[error("a password cannot be empty")]
    Empty,
}

fn argon2(p: PasswordParams) -> Argon2<'static> {
    let params = Params::new(p.memory_kib, p.iterations, p.lanes, None).expect("PasswordParams constants are within argon2's limits");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes with [`PasswordParams::OWASP`]; `salt` must be fresh random bytes.
pub fn hash_password(password: &str, salt: [u8; 16]) -> Result<String, PasswordError> {
    hash_password_with(PasswordParams::OWASP, password, salt)
}

/// Hashes with the given cost, as a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
pub fn hash_password_with(params: PasswordParams, password: &str, salt: [u8; 16]) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.len() > PASSWORD_BYTES_MAX {
        return Err(PasswordError::TooLong { max: PASSWORD_BYTES_MAX });
    }
    let salt = SaltString::encode_b64(&salt).expect("16 bytes are within the PHC salt length");
    let hash = argon2(params).hash_password(password.as_bytes(), &salt).expect("bounded password, valid params and salt");
    Ok(hash.to_string())
}

/// Does `password` match the stored PHC string? False for anything unreadable, for a
/// hash that is not argon2id, and for one whose cost exceeds our bounds.
pub fn verify_password(password: &str, phc: &str) -> bool {
    if password.len() > PASSWORD_BYTES_MAX || phc.len() > PHC_CHARS_MAX {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else { return false };
    let Ok(params) = Params::try_from(&hash) else { return false };
    if hash.algorithm != Algorithm::Argon2id.ident()
        || params.m_cost() > ARGON2_MEMORY_KIB_MAX
        || params.t_cost() > 16
        || params.p_cost() > 8
    {
        return false;
    }
    // The verifier re-hashes with the parameters the PHC string names, compares in constant time.
    Argon2::default().verify_password(password.as_bytes(), &hash).is_ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn login() -> OperatorId {
        OperatorId::new("li.jia").expect("login")
    }

    #[test]
    fn mint_then_verify_until_expiry() {
        let t = mint(&KEY, &login(), 1_000, 600, [1; 16]);
        let c = verify(&KEY, &t, 1_000).expect("fresh");
        assert_eq!(c, Claims { login: login(), issued_unix: 1_000, expires_unix: 1_600, nonce: [1; 16] });
        assert!(verify(&KEY, &t, 1_599).is_ok());
        assert_eq!(verify(&KEY, &t, 1_600), Err(TokenError::Expired { expires_unix: 1_600, now_unix: 1_600 }));
        assert_eq!(verify(&[8; 32], &t, 1_000), Err(TokenError::BadMac));
        let long = mint(&KEY, &login(), 0, u64::MAX, [0; 16]);
        assert_eq!(verify(&KEY, &long, 0).expect("valid").expires_unix, SESSION_TTL_SECS_MAX);
    }

    #[test]
    fn garbage_is_malformed() {
        let t = mint(&KEY, &login(), 1_000, 600, [1; 16]);
        for bad in ["", "BLS1", "BLS1..", "BLS2.00.00", &format!("{t}.00"), &t.replace("BLS1", "BLS2"), &"a".repeat(TOKEN_CHARS_MAX + 1)] {
            assert_eq!(verify(&KEY, bad, 0), Err(TokenError::Malformed), "{bad}");
        }
        let unicode = OperatorId::new("李甲").expect("login");
        assert_eq!(verify(&KEY, &mint(&KEY, &unicode, 5, 5, [2; 16]), 6).expect("valid").login, unicode);
        let longest = OperatorId::new("x".repeat(CODE_BYTES_MAX)).expect("login");
        assert!(mint(&KEY, &longest, 5, 5, [2; 16]).len() <= TOKEN_CHARS_MAX);
    }

    #[test]
    fn passwords_hash_and_verify() {
        let phc = hash_password_with(PasswordParams::TEST, "correct horse", [3; 16]).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horse!", &phc));
        assert!(!verify_password("correct horse", "not a phc"));
        assert!(!verify_password("correct horse", &phc.replace("m=8", "m=999999999")));
        assert_eq!(hash_password_with(PasswordParams::TEST, "", [3; 16]), Err(PasswordError::Empty));
        assert!(hash_password_with(PasswordParams::TEST, &"p".repeat(PASSWORD_BYTES_MAX + 1), [3; 16]).is_err());
        let other_salt = hash_password_with(PasswordParams::TEST, "correct horse", [4; 16]).expect("hash");
        assert_ne!(phc, other_salt);
    }

    #[test]
    fn owasp_params_are_the_default() {
        let phc = hash_password("pw", [9; 16]).expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("pw", &phc));
    }

    proptest! {
        #[test]
        fn any_flipped_char_is_refused(pos in 0usize..200, now in 0u64..2_000) {
            let t = mint(&KEY, &login(), 1_000, 600, [5; 16]);
            let pos = pos % t.len();
            let mut bytes = t.clone().into_bytes();
            bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
            let flipped = String::from_utf8(bytes).expect("ascii");
            prop_assume!(flipped != t);
            prop_assert!(verify(&KEY, &flipped, now).is_err());
        }

        #[test]
        fn valid_exactly_within_its_lifetime(issued in 0u64..1u64 << 40, ttl in 0u64..100_000, now in 0u64..1u64 << 41) {
            let t = mint(&KEY, &login(), issued, ttl, [6; 16]);
            let expires = issued + ttl.min(SESSION_TTL_SECS_MAX);
            prop_assert_eq!(verify(&KEY, &t, now).is_ok(), now < expires);
        }
    }
}
