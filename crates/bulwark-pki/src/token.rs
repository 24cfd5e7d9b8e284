//! Bearer tokens: 256-bit secrets shown once, stored as SHA-256 hashes.
//!
//! A token reads `bwk_<id>_<secret>`: `id` (16 hex characters) is public and
//! indexes the stored row; `secret` is 32 random bytes in unpadded base64url.
//! Only SHA-256(secret) is stored, and it is compared in constant time.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

use crate::{Error, RandomSource, Result, Secret};

/// What a token is for; the prefix keeps one kind from being used as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An API token (`bwk_`), bound to an account.
    Api,
    /// A one-time device enrollment token (`bwe_`).
    Enroll,
}

impl TokenKind {
    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Api => "bwk",
            TokenKind::Enroll => "bwe",
        }
    }

    fn name(self) -> &'static str {
        match self {
            TokenKind::Api => "API",
            TokenKind::Enroll => "enrollment",
        }
    }
}

/// A freshly issued token: store `id` and `secret_hash`, show `plaintext` once.
#[derive(Debug)]
pub struct IssuedToken {
    /// Public identifier (16 lowercase hex characters).
    pub id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: [u8; 32],
    /// The whole token, to hand to its owner once and then forget.
    pub plaintext: Secret,
}

impl IssuedToken {
    /// Generates a token of `kind`.
    pub fn generate(kind: TokenKind, rng: &dyn RandomSource) -> Result<Self> {
        let mut id = [0u8; 8];
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rng.fill(&mut id)?;
        rng.fill(secret.as_mut())?;
        let secret_b64 = zeroize::Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.as_ref()));
        let id = hex::encode(id);
        let plaintext = Secret::new(format!("{}_{}_{}", kind.prefix(), id, secret_b64.as_str()));
        Ok(Self {
            id,
            secret_hash: hash(secret_b64.as_bytes()),
            plaintext,
        })
    }
}

fn hash(secret: &[u8]) -> [u8; 32] {
    let d = digest(&SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A token as presented by a client, split but not yet checked.
#[derive(Debug)]
pub struct PresentedToken {
    /// The public id: look the stored hash up by it.
    pub id: String,
    secret: Secret,
}

impl PresentedToken {
    /// Splits `text` into id and secret; refuses anything not shaped like a
    /// token of `kind` (without revealing which part was wrong).
    pub fn parse(kind: TokenKind, text: &str) -> Result<Self> {
        let bad = || Error::MalformedToken { kind: kind.name() };
        let rest = text
            .strip_prefix(kind.prefix())
            .and_then(|r| r.strip_prefix('_'))
            .ok_or_else(bad)?;
        let (id, secret) = rest.split_once('_').ok_or_else(bad)?;
        let id_ok = id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let secret_ok = secret.len() == 43
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok || !secret_ok {
            return Err(bad());
        }
        Ok(Self {
            id: id.to_owned(),
            secret: Secret::new(secret.to_owned()),
        })
    }

    /// True when the secret hashes to `stored_hash` (constant-time compare).
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        let h = hash(self.secret.expose().as_bytes());
        stored_hash.len() == h.len() && bool::from(h.ct_eq(stored_hash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    #[test]
    fn issued_token_parses_and_matches_only_its_hash() {
        let t = IssuedToken::generate(TokenKind::Api, &SystemRandom).unwrap();
        assert!(t.plaintext.expose().starts_with("bwk_"));
        let p = PresentedToken::parse(TokenKind::Api, t.plaintext.expose()).unwrap();
        assert_eq!(p.id, t.id);
        assert!(p.matches(&t.secret_hash));
        let mut other = t.secret_hash;
        other[31] ^= 1;
        assert!(!p.matches(&other));
        assert!(!p.matches(&t.secret_hash[..31]));
    }

    #[test]
    fn kinds_do_not_mix_and_malformed_tokens_are_refused() {
        let t = IssuedToken::generate(TokenKind::Enroll, &SystemRandom).unwrap();
        assert!(PresentedToken::parse(TokenKind::Api, t.plaintext.expose()).is_err());
        let good = t.plaintext.expose();
        for bad in [
            "",
            "bwe_",
            "bwe_0123456789abcdef",
            &good[..good.len() - 1],
            &format!("{good}x"),
            &good.replace("bwe_", "bwe-"),
            "bwe_0123456789ABCDEF_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "bwe_0123456789abcdef_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=",
        ] {
            assert!(
                PresentedToken::parse(TokenKind::Enroll, bad).is_err(),
                "{bad}"
            );
        }
    }
}
