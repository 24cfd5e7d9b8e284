//! Bulwark's public-key infrastructure: the device CA, device and server
//! certificates, sealed secrets at rest, and bearer tokens.
//!
//! # Brief overview
//!
//! - [`DeviceCa`] — the server's device CA. It signs device CSRs
//!   ([`DeviceCa::sign_device_csr`]) into certificates whose SAN is the
//!   device's URI ([`bulwark_proto::DeviceId::to_san_uri`]), and the device
//!   listener's own server certificate ([`DeviceCa::issue_server_cert`]).
//! - [`DeviceKey`] — the device side: key generation and the CSR. The private
//!   key never leaves the device.
//! - [`MasterKey`] — seals secrets (the CA key) with AES-256-GCM so they are
//!   encrypted at rest; the master key lives in its own 0600 file.
//! - [`TokenKind`], [`IssuedToken`], [`PresentedToken`] — 256-bit bearer
//!   tokens, stored only as SHA-256 hashes and compared in constant time.
//! - [`RandomSource`] — every function that needs randomness takes one, so
//!   tests can be deterministic; [`SystemRandom`] is the real one.
//!
//! # Example
//!
//! ```
//! use bulwark_pki::{DeviceCa, DeviceKey, SystemRandom, peer_identity};
//! use bulwark_proto::DeviceId;
//!
//! let now = time::OffsetDateTime::now_utc();
//! let (ca, _ca_key) = DeviceCa::generate("Example fleet CA", now).unwrap();
//! let key = DeviceKey::generate().unwrap();
//! let csr = key.csr_pem("sensor-1").unwrap();
//! let id = DeviceId::from_uuid(uuid::Uuid::nil());
//! let cert = ca
//!     .sign_device_csr(&csr, id, &SystemRandom, now, time::Duration::days(365))
//!     .unwrap();
//! assert_eq!(peer_identity(&cert.der).unwrap().device_id, id);
//! ```
//!
//! # Design
//!
//! No cryptographic primitive is implemented here: signatures and key
//! generation are rcgen over aws-lc-rs, AEAD and digests are aws-lc-rs,
//! constant-time comparison is `subtle`. This crate does no file or network
//! I/O; the caller stores the PEM strings and sealed blobs (with 0600
//! permissions for secrets). The clock is a parameter.
//!
//! # Trust model
//!
//! Whoever holds the CA key can mint device identities, so the key is kept
//! sealed under a [`MasterKey`] at rest and only opened in memory. A device
//! certificate proves the device id in its SAN; revocation is enforced by the
//! server (it keeps the revoked serials), not by CRLs.

mod ca;
mod device;
mod random;
mod seal;
mod secret;
mod token;

pub use ca::{DeviceCa, IssuedCert, PeerIdentity, peer_identity};
pub use device::DeviceKey;
pub use random::{RandomSource, SystemRandom};
pub use seal::MasterKey;
pub use secret::Secret;
pub use token::{IssuedToken, PresentedToken, TokenKind};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// rcgen refused to build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The CSR could not be parsed, or its signature is wrong.
    #[error("invalid certificate signing request: {reason}")]
    InvalidCsr {
        /// Why it was refused.
        reason: String,
    },
    /// A certificate could not be parsed or lacks the device identity.
    #[error("invalid certificate: {reason}")]
    InvalidCertificate {
        /// Why it was refused.
        reason: String,
    },
    /// A sealed blob is malformed, was sealed under another key, or was altered.
    #[error("sealed data could not be opened: wrong master key or corrupted data")]
    Unseal,
    /// A master key of the wrong length.
    #[error("master key must be 32 bytes, got {len}")]
    MasterKeyLength {
        /// The length given.
        len: usize,
    },
    /// The system random source failed.
    #[error("system random source failed")]
    Random,
    /// A string that is not a well-formed token of the expected kind.
    #[error("malformed {kind} token")]
    MalformedToken {
        /// Which kind was expected.
        kind: &'static str,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
