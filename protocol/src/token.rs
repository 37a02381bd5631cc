//! Enrollment tokens: `BL1.<BRANCH>.<secret hex>.<HQ certificate fingerprint hex>`.
//!
//! The token carries HQ's certificate fingerprint so the branch can pin HQ's identity on
//! its very first connection (no trust-on-first-use window). HQ stores only a hash of
//! the secret, with an expiry, and marks it used on success.
//!
//! Must not: store a token or read the clock (`TokenGrant::redeem` takes HQ's time as an
//! argument).

use crate::codes::BranchCode;
use crate::hex::{decode_array as unhex, encode as hex};

const PREFIX: &str = "BL1";
/// Bytes of the random secret.
pub const TOKEN_SECRET_BYTES: usize = 16;

/// A parsed enrollment token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrollToken {
    pub branch: BranchCode,
    pub secret: [u8; TOKEN_SECRET_BYTES],
    pub hq_cert_fingerprint: [u8; 32],
}

/// Fingerprint of a DER certificate, as pinned by branches.
pub fn cert_fingerprint(der: &[u8]) -> [u8; 32] {
    *blake3::hash(der).as_bytes()
}

/// Hash of a token secret, as HQ stores it.
pub fn secret_hash(secret: &[u8; TOKEN_SECRET_BYTES]) -> [u8; 32] {
    *blake3::hash(secret).as_bytes()
}

/// What HQ holds about an issued token, as the redeem decision needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    pub branch: BranchCode,
    pub expires_unix: u64,
    pub used: bool,
}

/// Why HQ refuses to redeem a token. The texts tell a technician what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("token was issued for a different branch")]
    WrongBranch,
    #[error("enrollment token was already used; each token enrolls once. Ask HQ for a new one (`hq branch token CODE`)")]
    Used,
    #[error("enrollment token has expired; ask HQ for a new one (`hq branch token CODE`)")]
    Expired,
}

impl TokenGrant {
    /// Whether `branch` may redeem this token at `now_unix` (HQ's clock, passed in).
    /// Valid through its expiry second, refused after it.
    pub fn redeem(&self, branch: &BranchCode, now_unix: u64) -> Result<(), TokenRefusal> {
        if self.branch != *branch {
            return Err(TokenRefusal::WrongBranch);
        }
        if self.used {
            return Err(TokenRefusal::Used);
        }
        if now_unix > self.expires_unix {
            return Err(TokenRefusal::Expired);
        }
        Ok(())
    }
}

impl EnrollToken {
    pub fn encode(&self) -> String {
        format!("{PREFIX}.{}.{}.{}", self.branch, hex(&self.secret), hex(&self.hq_cert_fingerprint))
    }

    pub fn parse(s: &str) -> Result<EnrollToken, TokenError> {
        let mut parts = s.trim().split('.');
        let (Some(PREFIX), Some(branch), Some(secret), Some(fp), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Shape);
        };
        Ok(EnrollToken {
            branch: BranchCode::new(branch).map_err(|_| TokenError::Branch)?,
            secret: unhex(secret).ok_or(TokenError::Secret)?,
            hq_cert_fingerprint: unhex(fp).ok_or(TokenError::Fingerprint)?,
        })
    }
}

/// Why a string is not an enrollment token. Every variant reads the same to the person
/// who pasted it (what a token looks like); the variant tells the log which part failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not four dot-separated parts starting with `BL1`.
    #[error("{NOT_A_TOKEN}")]
    Shape,
    /// The branch part is not a branch code.
    #[error("{NOT_A_TOKEN}")]
    Branch,
    /// The secret is not 32 hex digits.
    #[error("{NOT_A_TOKEN}")]
    Secret,
    /// The fingerprint is not 64 hex digits.
    #[error("{NOT_A_TOKEN}")]
    Fingerprint,
}

const NOT_A_TOKEN: &str = "not a Branchline enrollment token (expected BL1.<BRANCH>.<secret>.<fingerprint>, as printed by `hq branch add`)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let t = EnrollToken { branch: BranchCode::new("SH").expect("code"), secret: [7; 16], hq_cert_fingerprint: [0xab; 32] };
        assert_eq!(EnrollToken::parse(&t.encode()), Ok(t.clone()));
        for bad in ["", "BL1.SH.00.11", "BL2.SH", &t.encode().replace("BL1", "BL2"), &format!("{}.x", t.encode())] {
            assert!(EnrollToken::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(EnrollToken::parse("BL1.SH.00.11"), Err(TokenError::Secret));
        assert_eq!(EnrollToken::parse(&t.encode().replace(".SH.", ".S H.")), Err(TokenError::Branch));
        assert!(TokenError::Fingerprint.to_string().starts_with("not a Branchline enrollment token"));
    }
}
