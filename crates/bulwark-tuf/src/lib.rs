//! TUF 1.0 (The Update Framework) for Bulwark: metadata, keys, signing and
//! the client workflow, with no I/O.
//!
//! # Brief overview
//!
//! - [`Metadata<T>`] is a signed envelope around one of the roles [`Root`],
//!   [`Timestamp`], [`Snapshot`] and [`Targets`]. Parsed documents keep the
//!   signed part exactly as received; [`canonical_json`] of it is what
//!   signatures cover.
//! - [`PublicKey`] verifies (Ed25519, ECDSA P-256/P-384, RSA-PSS and
//!   PKCS#1 v1.5, in securesystemslib's formats); [`SigningKey`] signs
//!   (Ed25519, ECDSA P-256). All cryptography is `aws-lc-rs`.
//! - [`Root::verify_role`] and [`Targets::verify_delegate`] check thresholds
//!   of distinct keys.
//! - [`Updater`] runs the client workflow of specification section 5 over a
//!   [`Fetch`] (the network) and a [`LocalMetadata`] (trusted storage), both
//!   injected; [`TargetVerifier`] checks a target while it streams in.
//! - [`chain_root`] applies the root-rotation rule to roots in hand: from a
//!   pinned root to the server's current one, each version signed by the
//!   threshold of the one before and its own.
//! - [`check_targets_proposal`] is the signer's side: before a release
//!   manager signs targets metadata the server proposes, it checks that the
//!   proposal is the published targets plus exactly the release's target,
//!   version + 1.
//! - [`UpdateError::kind`] names the attack a failure indicates (`rollback`,
//!   `freeze`, `mix-and-match`, `arbitrary-software`, `endless-data`,
//!   `threshold`, ...).
//!
//! # Example
//!
//! ```
//! use bulwark_tuf::{Metadata, Root, SigningKey};
//! use time::macros::datetime;
//!
//! let (key, _pkcs8) = SigningKey::generate_ed25519()?;
//! let mut root = Root::new(datetime!(2030-01-01 0:00 UTC));
//! for role in ["root", "timestamp", "snapshot", "targets"] {
//!     root.add_key(role, key.public().clone());
//! }
//! let mut md = Metadata::new(root);
//! md.sign(&key)?;
//! let parsed = Metadata::<Root>::from_slice(&md.to_vec()?)?;
//! parsed.signed().verify_role("root", &parsed)?;
//! # Ok::<(), bulwark_tuf::Error>(())
//! ```
//!
//! # Design
//!
//! The crate never reads the clock or the file system: the reference time
//! is an argument. The client mirrors python-tuf's `ngclient` (the
//! reference the tuf-conformance suite measures against); see the
//! `client` module docs for the details that matter for security.
//!
//! # Trust model
//!
//! The only input trusted without verification is the root stored in
//! [`LocalMetadata`] when the [`Updater`] is created (for [`chain_root`],
//! the `trusted` root passed in); even that must be signed by its own
//! threshold. Key ids are taken from the delegating
//! metadata, never recomputed, and two key ids with the same key material
//! count once towards a threshold.

mod chain;
mod cjson;
mod client;
mod error;
mod glob;
mod hash;
mod keys;
mod metadata;
mod proposal;

pub use chain::chain_root;
pub use cjson::canonical_json;
pub use client::{
    Fetch, FetchError, Limits, LocalMetadata, TargetVerifier, Updater, quote_role_name,
};
pub use error::{Error, UpdateError};
pub use keys::{KeyId, KeyVal, PublicKey, SigningKey};
pub use metadata::{
    DelegatedRole, Delegations, MetaFile, Metadata, Role, RoleKeys, Root, SPEC_VERSION, Signature,
    Snapshot, SuccinctRoles, TOP_LEVEL_ROLES, TargetFile, Targets, Timestamp, expires_format,
};
pub use proposal::{ExpectedTarget, ProposalError, ProposalSummary, check_targets_proposal};
