//! [`MasterKey`]: AES-256-GCM sealing of secrets at rest.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use zeroize::Zeroizing;

use crate::{Error, RandomSource, Result};

const MAGIC: &[u8; 8] = b"BWSEAL1\n";

/// A 256-bit key that seals other secrets. `Debug` is redacted.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate(rng: &dyn RandomSource) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill(key.as_mut())?;
        Ok(Self(key))
    }

    /// A key from its 32 raw bytes (as stored in the key file).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| Error::MasterKeyLength { len: bytes.len() })?;
        Ok(Self(Zeroizing::new(arr)))
    }

    /// The raw bytes, to write to the 0600 key file.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn key(&self) -> Result<LessSafeKey> {
        let unbound = UnboundKey::new(&AES_256_GCM, self.0.as_ref())
            .map_err(|_| Error::MasterKeyLength { len: self.0.len() })?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Encrypts and authenticates `plaintext`, binding it to `context` (for
    /// example the file's purpose, so a sealed blob cannot be swapped for
    /// another). Output: magic ‖ nonce ‖ ciphertext ‖ tag.
    pub fn seal(
        &self,
        plaintext: &[u8],
        context: &[u8],
        rng: &dyn RandomSource,
    ) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill(&mut nonce)?;
        let mut buf = plaintext.to_vec();
        self.key()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context),
                &mut buf,
            )
            .map_err(|_| Error::Unseal)?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + buf.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Reverses [`MasterKey::seal`]; fails on any alteration or wrong context.
    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or(Error::Unseal)?;
        if rest.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Error::Unseal);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Unseal)?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain_len = self
            .key()?
            .open_in_place(nonce, Aad::from(context), &mut buf)
            .map_err(|_| Error::Unseal)?
            .len();
        buf.truncate(plain_len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SystemRandom;

    #[test]
    fn round_trip_and_tamper_detection() {
        let key = MasterKey::generate(&SystemRandom).unwrap();
        let sealed = key
            .seal(b"ca private key", b"ca-key", &SystemRandom)
            .unwrap();
        assert_eq!(
            key.open(&sealed, b"ca-key").unwrap().as_slice(),
            b"ca private key"
        );
        assert!(
            key.open(&sealed, b"other-purpose").is_err(),
            "context is bound"
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                key.open(&bad, b"ca-key").is_err(),
                "flipped byte {i} accepted"
            );
        }
        assert!(key.open(&sealed[..sealed.len() - 1], b"ca-key").is_err());
        assert!(key.open(b"", b"ca-key").is_err());
        let other = MasterKey::generate(&SystemRandom).unwrap();
        assert!(other.open(&sealed, b"ca-key").is_err());
        assert_eq!(format!("{key:?}"), "MasterKey([redacted])");
    }

    #[test]
    fn wrong_length_key_is_refused() {
        assert!(matches!(
            MasterKey::from_bytes(&[0; 31]),
            Err(Error::MasterKeyLength { len: 31 })
        ));
    }
}
