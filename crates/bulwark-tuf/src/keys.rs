//! Public keys, key ids and signing keys.
//!
//! Key formats follow securesystemslib, which python-tuf uses:
//!
//! | keytype | scheme | `keyval.public` |
//! |---|---|---|
//! | `ed25519` | `ed25519` | hex of the 32-byte key |
//! | `ecdsa` or `ecdsa-sha2-nistp256` | `ecdsa-sha2-nistp256` | PEM SubjectPublicKeyInfo |
//! | `ecdsa` or `ecdsa-sha2-nistp384` | `ecdsa-sha2-nistp384` | PEM SubjectPublicKeyInfo |
//! | `rsa` | `rsassa-pss-sha256/384/512`, `rsa-pkcs1v15-sha256/384/512` | PEM SubjectPublicKeyInfo |
//!
//! ECDSA signatures are DER encoded. All signatures travel as lowercase hex.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, canonical_json};

/// A key id: by convention the lowercase hex SHA-256 of the canonical JSON of
/// the key.
///
/// Verification never recomputes key ids: like python-tuf, a key is known by
/// the id its delegating metadata gives it. [`PublicKey::key_id`] computes the
/// conventional id for keys we create.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyId {
    type Err = Error;

    /// Accepts any non-empty string: metadata from other repositories may use
    /// ids that are not SHA-256 hex.
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(Error::Invalid("empty key id".to_owned()));
        }
        Ok(KeyId(s.to_owned()))
    }
}

/// The `keyval` of a key: the public part and any other fields, kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVal {
    /// The public key, encoded per the key type (see the module docs).
    pub public: String,
    /// Fields this implementation does not know, kept for signing and hashing.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

/// A public key as it appears in root or targets metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    /// `ed25519`, `ecdsa`, `rsa`, ...
    pub keytype: String,
    /// The signature scheme, e.g. `ed25519` or `ecdsa-sha2-nistp256`.
    pub scheme: String,
    /// The key material.
    pub keyval: KeyVal,
    /// Fields this implementation does not know (e.g. `keyid_hash_algorithms`).
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

enum Algorithm {
    Ed25519,
    Ecdsa(&'static sig::EcdsaVerificationAlgorithm),
    Rsa(&'static [&'static sig::RsaParameters]),
}

static RSA_PSS_256: [&sig::RsaParameters; 1] = [&sig::RSA_PSS_2048_8192_SHA256];
static RSA_PSS_384: [&sig::RsaParameters; 1] = [&sig::RSA_PSS_2048_8192_SHA384];
static RSA_PSS_512: [&sig::RsaParameters; 1] = [&sig::RSA_PSS_2048_8192_SHA512];
static RSA_PKCS1_256: [&sig::RsaParameters; 1] = [&sig::RSA_PKCS1_2048_8192_SHA256];
static RSA_PKCS1_384: [&sig::RsaParameters; 1] = [&sig::RSA_PKCS1_2048_8192_SHA384];
static RSA_PKCS1_512: [&sig::RsaParameters; 1] = [&sig::RSA_PKCS1_2048_8192_SHA512];

impl PublicKey {
    /// An Ed25519 public key from its 32 raw bytes.
    pub fn ed25519(raw: &[u8]) -> PublicKey {
        PublicKey::new("ed25519", "ed25519", hex::encode(raw))
    }

    fn new(keytype: &str, scheme: &str, public: String) -> PublicKey {
        PublicKey {
            keytype: keytype.to_owned(),
            scheme: scheme.to_owned(),
            keyval: KeyVal {
                public,
                unrecognized: BTreeMap::new(),
            },
            unrecognized: BTreeMap::new(),
        }
    }

    /// The conventional key id: hex SHA-256 of the canonical JSON of
    /// `{"keytype", "scheme", "keyval"}` (securesystemslib's default).
    pub fn key_id(&self) -> KeyId {
        let mut map = serde_json::Map::new();
        map.insert("keytype".into(), Value::String(self.keytype.clone()));
        map.insert("scheme".into(), Value::String(self.scheme.clone()));
        let keyval = serde_json::to_value(&self.keyval).unwrap_or(Value::Null);
        map.insert("keyval".into(), keyval);
        // Strings and maps of strings always encode; the fallback is unreachable.
        let bytes = canonical_json(&Value::Object(map)).unwrap_or_default();
        KeyId(hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &bytes,
        )))
    }

    fn algorithm(&self) -> Result<Algorithm, Error> {
        let alg = match (self.keytype.as_str(), self.scheme.as_str()) {
            ("ed25519", "ed25519") => Algorithm::Ed25519,
            ("ecdsa" | "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256") => {
                Algorithm::Ecdsa(&sig::ECDSA_P256_SHA256_ASN1)
            }
            ("ecdsa" | "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384") => {
                Algorithm::Ecdsa(&sig::ECDSA_P384_SHA384_ASN1)
            }
            ("rsa", "rsassa-pss-sha256") => Algorithm::Rsa(&RSA_PSS_256),
            ("rsa", "rsassa-pss-sha384") => Algorithm::Rsa(&RSA_PSS_384),
            ("rsa", "rsassa-pss-sha512") => Algorithm::Rsa(&RSA_PSS_512),
            ("rsa", "rsa-pkcs1v15-sha256") => Algorithm::Rsa(&RSA_PKCS1_256),
            ("rsa", "rsa-pkcs1v15-sha384") => Algorithm::Rsa(&RSA_PKCS1_384),
            ("rsa", "rsa-pkcs1v15-sha512") => Algorithm::Rsa(&RSA_PKCS1_512),
            (keytype, scheme) => {
                return Err(Error::UnsupportedKey {
                    keytype: keytype.to_owned(),
                    scheme: scheme.to_owned(),
                });
            }
        };
        Ok(alg)
    }

    /// Verifies `sig` (raw signature bytes, not hex) over `msg`.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedKey`] for an unknown keytype/scheme,
    /// [`Error::InvalidKey`] if the key cannot be decoded and
    /// [`Error::BadSignature`] if the signature does not verify.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), Error> {
        match self.algorithm()? {
            Algorithm::Ed25519 => {
                let raw = hex::decode(&self.keyval.public)
                    .map_err(|e| Error::InvalidKey(format!("ed25519 key is not hex: {e}")))?;
                if raw.len() != 32 {
                    return Err(Error::InvalidKey(format!(
                        "ed25519 key is {} bytes, expected 32",
                        raw.len()
                    )));
                }
                sig::UnparsedPublicKey::new(&sig::ED25519, &raw)
                    .verify(msg, sig)
                    .map_err(|_| Error::BadSignature)
            }
            Algorithm::Ecdsa(alg) => {
                let der = pem_to_der(&self.keyval.public)?;
                sig::UnparsedPublicKey::new(alg, &der)
                    .verify(msg, sig)
                    .map_err(|_| Error::BadSignature)
            }
            Algorithm::Rsa(params) => {
                let der = pem_to_der(&self.keyval.public)?;
                for p in params {
                    if sig::UnparsedPublicKey::new(*p, &der)
                        .verify(msg, sig)
                        .is_ok()
                    {
                        return Ok(());
                    }
                }
                Err(Error::BadSignature)
            }
        }
    }
}

/// Decodes a PEM block (any label) to DER.
fn pem_to_der(pem: &str) -> Result<Vec<u8>, Error> {
    let pem = pem.trim();
    if !pem.starts_with("-----BEGIN ") {
        return Err(Error::InvalidKey("public key is not PEM".to_owned()));
    }
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| Error::InvalidKey(format!("PEM body is not base64: {e}")))
}

fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    pem
}

enum Secret {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
}

/// A private key that signs metadata.
///
/// Supports Ed25519 and ECDSA P-256 keys given as PKCS#8 DER. Randomness (key
/// generation, ECDSA nonces) comes from the crypto library's system RNG.
pub struct SigningKey {
    secret: Secret,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .field("secret", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// Generates an Ed25519 key. Returns the key and its PKCS#8 v2 DER
    /// encoding, which the caller stores (encrypted).
    ///
    /// # Errors
    ///
    /// [`Error::PrivateKey`] if the crypto library fails.
    pub fn generate_ed25519() -> Result<(SigningKey, Vec<u8>), Error> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| Error::PrivateKey("ed25519 key generation failed".to_owned()))?;
        let der = doc.as_ref().to_vec();
        let key = SigningKey::from_pkcs8_der(&der)?;
        Ok((key, der))
    }

    /// Parses a PKCS#8 (v1 or v2) DER private key: Ed25519 or ECDSA P-256.
    ///
    /// # Errors
    ///
    /// [`Error::PrivateKey`] if the key is neither.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<SigningKey, Error> {
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
            let public = PublicKey::ed25519(pair.public_key().as_ref());
            return Ok(SigningKey {
                secret: Secret::Ed25519(pair),
                public,
            });
        }
        match EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            Ok(pair) => {
                let spki = pair
                    .public_key()
                    .as_der()
                    .map_err(|_| Error::PrivateKey("cannot encode ECDSA public key".to_owned()))?;
                let public =
                    PublicKey::new("ecdsa", "ecdsa-sha2-nistp256", der_to_pem(spki.as_ref()));
                Ok(SigningKey {
                    secret: Secret::EcdsaP256(pair),
                    public,
                })
            }
            Err(e) => Err(Error::PrivateKey(format!(
                "not an Ed25519 or ECDSA P-256 PKCS#8 key: {e}"
            ))),
        }
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// The conventional key id of the public half.
    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }

    /// Signs `msg`; returns the raw signature bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Signing`] if the crypto library fails.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.secret {
            Secret::Ed25519(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
            Secret::EcdsaP256(pair) => pair
                .sign(&SystemRandom::new(), msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Signing),
        }
    }
}
