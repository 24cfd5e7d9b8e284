//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys:
//! signing, verifier keys, and opening a note against known keys.
//!
//! A signed note is a text ending in a newline, a blank line, then one or
//! more lines `— <key name> <base64(key id || signature)>`. The key id is
//! the first four bytes of `SHA-256(name || "\n" || 0x01 || public key)`; a
//! verifier key ("vkey") is `<name>+<hex key id>+<base64(0x01 || key)>`.

use std::fmt;

use aws_lc_rs::digest::{Context, SHA256};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::{Error, Result};

/// The most signature lines [`open`] accepts in one note. The spec asks
/// verifiers to accept at least 16; like Go's note package, this allows 100.
pub const MAX_SIGNATURES: usize = 100;

/// Signature type identifier byte of Ed25519 keys.
const ALG_ED25519: u8 = 0x01;
/// Start of every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Ed25519 public key and seed length.
const KEY_LEN: usize = 32;
/// Ed25519 signature length.
const SIG_LEN: usize = 64;

/// Whether `name` may be a key name: non-empty, no Unicode space, no `+`,
/// and (so it fits in a note) no ASCII control character.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c < ' ')
}

fn check_name(name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidKeyName(name.to_owned()))
    }
}

/// The key id of an Ed25519 key: `SHA-256(name || 0x0A || 0x01 || key)[:4]`
/// read as a big-endian integer.
fn key_id(name: &str, public_key: &[u8; KEY_LEN]) -> u32 {
    let mut ctx = Context::new(&SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[ALG_ED25519]);
    ctx.update(public_key);
    let digest = ctx.finish();
    let d = digest.as_ref();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Signs notes with an Ed25519 key derived from a 32-byte seed.
///
/// `Debug` shows the name and key id, never the key.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    public_key: [u8; KEY_LEN],
    key_pair: Ed25519KeyPair,
}

impl NoteSigner {
    /// A signer named `name` (conventionally the log's origin, e.g.
    /// `example.com/log`) with the Ed25519 key whose RFC 8032 seed is
    /// `seed`. The seed must come from a secure random source, supplied by
    /// the caller; the same seed always gives the same key.
    pub fn new(name: &str, seed: &[u8; KEY_LEN]) -> Result<Self> {
        check_name(name)?;
        let key_pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| Error::Crypto("ed25519 seed rejected"))?;
        let public_key: [u8; KEY_LEN] = key_pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| Error::Crypto("ed25519 public key has the wrong length"))?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
            key_pair,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.public_key
    }

    /// The verifier key string, `<name>+<hex key id>+<base64(0x01 || key)>`,
    /// to hand to verifiers.
    pub fn verifier_key(&self) -> String {
        vkey_string(&self.name, self.key_id, &self.public_key)
    }

    /// The matching verifier.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key_id: self.key_id,
            public_key: self.public_key,
        }
    }

    /// Signs `text` and returns the signed note: the text, a blank line and
    /// one signature line.
    ///
    /// The text must be non-empty, end in a newline, and contain no ASCII
    /// control character other than newline.
    pub fn sign(&self, text: &str) -> Result<String> {
        if !text.ends_with('\n') {
            return Err(Error::InvalidNoteText("text must end with a newline"));
        }
        if text.chars().any(|c| c < ' ' && c != '\n') {
            return Err(Error::InvalidNoteText("text contains a control character"));
        }
        let sig = self.key_pair.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + SIG_LEN);
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(sig.as_ref());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(raw)
        ))
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .field("key", &format_args!("[redacted]"))
            .finish()
    }
}

fn vkey_string(name: &str, key_id: u32, public_key: &[u8; KEY_LEN]) -> String {
    let mut raw = Vec::with_capacity(1 + KEY_LEN);
    raw.push(ALG_ED25519);
    raw.extend_from_slice(public_key);
    format!("{name}+{key_id:08x}+{}", B64.encode(raw))
}

/// A known Ed25519 note key: name, key id and public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    public_key: [u8; KEY_LEN],
}

impl NoteVerifier {
    /// The verifier for Ed25519 `public_key` under `name`.
    pub fn new(name: &str, public_key: [u8; KEY_LEN]) -> Result<Self> {
        check_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, &public_key),
            public_key,
        })
    }

    /// Parses a verifier key, `<name>+<8 hex digits>+<base64(0x01 || key)>`.
    /// The key id must match the name and key.
    pub fn from_vkey(vkey: &str) -> Result<Self> {
        // The name has no '+'; base64 may, so split at the first two only.
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::MalformedVerifierKey(
                "expected <name>+<key id>+<key>",
            ));
        };
        check_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::MalformedVerifierKey("key id is not 8 hex digits"));
        }
        let id = u32::from_str_radix(id_hex, 16)
            .map_err(|_| Error::MalformedVerifierKey("key id is not 8 hex digits"))?;
        let raw = B64
            .decode(key_b64)
            .map_err(|_| Error::MalformedVerifierKey("key is not valid base64"))?;
        let (&alg, key) = raw
            .split_first()
            .ok_or(Error::MalformedVerifierKey("key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(Error::UnsupportedKeyType(alg));
        }
        let public_key: [u8; KEY_LEN] = key
            .try_into()
            .map_err(|_| Error::MalformedVerifierKey("ed25519 key is not 32 bytes"))?;
        let verifier = Self::new(name, public_key)?;
        if verifier.key_id != id {
            return Err(Error::KeyIdMismatch);
        }
        Ok(verifier)
    }

    /// The verifier key string.
    pub fn to_vkey(&self) -> String {
        vkey_string(&self.name, self.key_id, &self.public_key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; KEY_LEN] {
        self.public_key
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public_key)
            .verify(msg, sig)
            .is_ok()
    }
}

/// A key that signed a note: name and key id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignerId {
    /// Key name.
    pub name: String,
    /// Key id.
    pub key_id: u32,
}

/// A note whose signatures checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The note text, including its final newline.
    pub text: String,
    /// The known keys whose signatures verified, in note order, each once.
    pub signers: Vec<SignerId>,
}

/// Opens a signed note: checks its format and the signatures by the keys in
/// `verifiers`, and returns the text.
///
/// Signatures by keys not in `verifiers` (name and key id both matching)
/// are ignored. Fails if the note is malformed ([`Error::MalformedNote`]),
/// has more than [`MAX_SIGNATURES`] signature lines, carries a signature by
/// a known key that does not verify ([`Error::InvalidSignature`]), or has no
/// signature by a known key at all ([`Error::NoKnownSignature`]).
pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<Verified> {
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(Error::MalformedNote("control character"));
    }
    // The text ends at the last blank line; signature lines cannot contain one.
    let split = note
        .rfind("\n\n")
        .ok_or(Error::MalformedNote("no blank line before signatures"))?;
    let (text, sigs) = (&note[..=split], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(Error::MalformedNote(
            "no signature lines after the last blank line",
        ));
    }
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(Error::MalformedNote(
            "signature block must end with a newline",
        ));
    };
    let count = sigs.split('\n').count();
    if count > MAX_SIGNATURES {
        return Err(Error::TooManySignatures {
            count,
            max: MAX_SIGNATURES,
        });
    }
    let mut signers: Vec<SignerId> = Vec::new();
    for line in sigs.split('\n') {
        let rest = line.strip_prefix(SIG_PREFIX).ok_or(Error::MalformedNote(
            "signature line must start with an em dash and a space",
        ))?;
        let (name, sig_b64) = rest
            .split_once(' ')
            .ok_or(Error::MalformedNote("signature line has no signature"))?;
        if !is_valid_name(name) {
            return Err(Error::MalformedNote("invalid key name in signature line"));
        }
        let raw = B64
            .decode(sig_b64)
            .map_err(|_| Error::MalformedNote("signature is not valid base64"))?;
        let [a, b, c, d, sig @ ..] = raw.as_slice() else {
            return Err(Error::MalformedNote("signature is too short"));
        };
        if sig.is_empty() {
            return Err(Error::MalformedNote("signature is too short"));
        }
        let key_id = u32::from_be_bytes([*a, *b, *c, *d]);
        let mut known = verifiers
            .iter()
            .filter(|v| v.name == name && v.key_id == key_id);
        let Some(verifier) = known.next() else {
            continue; // unknown key: ignored, as the spec requires
        };
        if known.any(|other| other.public_key != verifier.public_key) {
            return Err(Error::AmbiguousKey {
                name: name.to_owned(),
                key_id,
            });
        }
        if !verifier.verify(text.as_bytes(), sig) {
            return Err(Error::InvalidSignature {
                name: name.to_owned(),
                key_id,
            });
        }
        let id = SignerId {
            name: name.to_owned(),
            key_id,
        };
        if !signers.contains(&id) {
            signers.push(id);
        }
    }
    if signers.is_empty() {
        return Err(Error::NoKnownSignature);
    }
    Ok(Verified {
        text: text.to_owned(),
        signers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_configured_keys_are_ambiguous() {
        // Two different keys under one name and key id cannot be built
        // through the public API (the id is derived), so forge one here.
        let real = NoteSigner::new("log.example", &[1; 32]).unwrap();
        let other = NoteSigner::new("log.example", &[2; 32]).unwrap();
        let forged = NoteVerifier {
            key_id: real.key_id(),
            ..other.verifier()
        };
        let note = real.sign("hello\n").unwrap();
        assert!(matches!(
            open(&note, &[real.verifier(), forged.clone()]),
            Err(Error::AmbiguousKey { .. })
        ));
        // The same key configured twice is not ambiguous.
        assert!(open(&note, &[real.verifier(), real.verifier()]).is_ok());
        // A collision on a key that did not sign does not matter.
        let note = other.sign("hello\n").unwrap();
        assert!(open(&note, &[other.verifier(), real.verifier(), forged]).is_ok());
    }

    #[test]
    fn keys_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<NoteSigner>();
        assert_send_sync::<NoteVerifier>();
    }

    #[test]
    fn key_id_follows_the_spec_formula() {
        // key ID = SHA-256(name || 0x0A || 0x01 || key)[:4], checked by hand.
        let key = [7u8; 32];
        let mut input = b"name\n\x01".to_vec();
        input.extend_from_slice(&key);
        let digest = aws_lc_rs::digest::digest(&SHA256, &input);
        let want = u32::from_be_bytes(digest.as_ref()[..4].try_into().unwrap());
        assert_eq!(key_id("name", &key), want);
    }
}
