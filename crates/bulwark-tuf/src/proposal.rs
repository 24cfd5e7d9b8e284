//! The signer's check of a targets proposal: pure, no I/O, no clock.
//!
//! A release manager signs targets metadata the server proposes. A
//! compromised server could propose anything, so before signing, the
//! signer checks that the proposal is exactly "the published targets plus
//! this release's target, version + 1", with [`check_targets_proposal`],
//! which lists the rules.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::metadata::expires_format;
use crate::{Metadata, Role, TargetFile, Targets};

/// The target the signer expects the proposal to add: the release's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedTarget {
    /// The target path.
    pub path: String,
    /// Length in bytes.
    pub length: u64,
    /// Lowercase hex SHA-256 digest.
    pub sha256: String,
    /// The exact `custom` value; `None` when the target must have none.
    pub custom: Option<Value>,
}

/// What an accepted proposal does, for the signer to read before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalSummary {
    /// The proposed targets version.
    pub version: u64,
    /// The path of the one added target.
    pub added: String,
    /// Its length.
    pub length: u64,
    /// Its SHA-256 digest.
    pub sha256: String,
    /// How many published targets the proposal keeps unchanged (all of
    /// them).
    pub unchanged: usize,
    /// The proposed expiry.
    pub expires: OffsetDateTime,
}

/// Why a targets proposal must not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProposalError {
    /// Not JSON, not an object, not the shape of targets metadata, or
    /// breaking one of its rules.
    #[error("the proposal is not valid targets metadata: {0}")]
    Malformed(String),
    /// `_type` is missing or not `targets`.
    #[error("the proposal is not targets metadata: _type is {}", found.as_deref().map_or_else(|| "missing or not a string".to_owned(), |t| format!("{t:?}")))]
    WrongRole {
        /// The `_type` found, if it is a string.
        found: Option<String>,
    },
    /// The bytes are not the canonical JSON of what they parse to.
    #[error(
        "the proposal is not in canonical JSON (first difference at byte {offset}): what is checked would not be what is signed"
    )]
    NotCanonical {
        /// The first byte where the proposal and its canonical form differ.
        offset: usize,
    },
    /// The published targets given are not those of `base_version`.
    #[error(
        "the proposal builds on targets version {base_version}, but the published targets given are {}",
        published.map_or_else(|| "none".to_owned(), |v| format!("version {v}"))
    )]
    BaseMismatch {
        /// The version the proposal says it builds on.
        base_version: u64,
        /// The version of the published targets given.
        published: Option<u64>,
    },
    /// `version` is not `base_version + 1`.
    #[error(
        "the proposal's version {proposed} does not follow the published version {base_version}"
    )]
    VersionNotNext {
        /// The proposed version.
        proposed: u64,
        /// The published version.
        base_version: u64,
    },
    /// The proposal expires at or before `now`.
    #[error("the proposal expires at {}, which is not after now ({})", expires_format::format(*expires), expires_format::format(*now))]
    Expired {
        /// The proposed expiry.
        expires: OffsetDateTime,
        /// The reference time.
        now: OffsetDateTime,
    },
    /// The proposal expires later than `now + max_lifetime`.
    #[error("the proposal expires at {}, later than the limit {}", expires_format::format(*expires), expires_format::format(*limit))]
    ExpiryTooFar {
        /// The proposed expiry.
        expires: OffsetDateTime,
        /// `now + max_lifetime`.
        limit: OffsetDateTime,
    },
    /// `spec_version` differs from the published targets'.
    #[error("the proposal changes spec_version from {published:?} to {proposed:?}")]
    SpecVersionChanged {
        /// The published `spec_version`.
        published: String,
        /// The proposed `spec_version`.
        proposed: String,
    },
    /// `delegations` differ from the published targets'.
    #[error("the proposal {0} (a signer only adds the release's target)")]
    DelegationsChanged(&'static str),
    /// Fields this crate does not know differ from the published targets'.
    #[error("the proposal adds, removes or changes the fields {fields:?}")]
    OtherFieldsChanged {
        /// The names of the fields that differ.
        fields: Vec<String>,
    },
    /// A published target is missing.
    #[error("the proposal removes the published target {path:?}")]
    TargetRemoved {
        /// The target path.
        path: String,
    },
    /// A published target is changed.
    #[error("the proposal changes the {field} of the published target {path:?}")]
    TargetChanged {
        /// The target path.
        path: String,
        /// `length`, `hashes`, `custom` or `unknown fields`.
        field: &'static str,
    },
    /// The release's target is already in the published targets.
    #[error("{path:?} is already published: there is nothing to add")]
    AlreadyPublished {
        /// The target path.
        path: String,
    },
    /// Targets other than the release's are added.
    #[error("the proposal adds {paths:?}, expected only {expected:?}")]
    UnexpectedTargets {
        /// The unexpected added paths.
        paths: Vec<String>,
        /// The release's target path.
        expected: String,
    },
    /// The release's target is not in the proposal.
    #[error("the proposal does not add the release's target {path:?}")]
    ExpectedTargetMissing {
        /// The target path.
        path: String,
    },
    /// The release's target has another length.
    #[error("the proposal lists {path:?} with length {proposed}, the release has {expected}")]
    TargetLength {
        /// The target path.
        path: String,
        /// The release's length.
        expected: u64,
        /// The proposed length.
        proposed: u64,
    },
    /// The release's target has another (or no) sha256 digest.
    #[error(
        "the proposal lists {path:?} with sha256 {}, the release has {expected}",
        proposed.as_deref().unwrap_or("(none)")
    )]
    TargetDigest {
        /// The target path.
        path: String,
        /// The release's digest.
        expected: String,
        /// The proposed digest.
        proposed: Option<String>,
    },
    /// The release's target lists hash algorithms besides sha256.
    #[error("the proposal lists {path:?} with hashes the signer cannot check: {algorithms:?}")]
    TargetExtraHashes {
        /// The target path.
        path: String,
        /// The algorithms other than sha256.
        algorithms: Vec<String>,
    },
    /// The release's target has another `custom` value (the install
    /// instructions).
    #[error(
        "the proposal lists {path:?} with custom data (install instructions) other than the release's"
    )]
    TargetCustom {
        /// The target path.
        path: String,
    },
    /// The release's target has fields this crate does not know.
    #[error("the proposal lists {path:?} with unknown fields {fields:?}")]
    TargetUnknownFields {
        /// The target path.
        path: String,
        /// Their names.
        fields: Vec<String>,
    },
}

impl ProposalError {
    /// A stable short code per refusal: `malformed`, `wrong-role`,
    /// `not-canonical`, `base-mismatch`, `version-not-next`, `expired`,
    /// `expiry-too-far`, `spec-version-changed`, `delegations-changed`,
    /// `other-fields-changed`, `target-removed`, `target-changed`,
    /// `already-published`, `unexpected-targets`, `expected-target-missing`,
    /// `target-length`, `target-digest`, `target-extra-hashes`,
    /// `target-custom` and `target-unknown-fields`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProposalError::Malformed(_) => "malformed",
            ProposalError::WrongRole { .. } => "wrong-role",
            ProposalError::NotCanonical { .. } => "not-canonical",
            ProposalError::BaseMismatch { .. } => "base-mismatch",
            ProposalError::VersionNotNext { .. } => "version-not-next",
            ProposalError::Expired { .. } => "expired",
            ProposalError::ExpiryTooFar { .. } => "expiry-too-far",
            ProposalError::SpecVersionChanged { .. } => "spec-version-changed",
            ProposalError::DelegationsChanged(_) => "delegations-changed",
            ProposalError::OtherFieldsChanged { .. } => "other-fields-changed",
            ProposalError::TargetRemoved { .. } => "target-removed",
            ProposalError::TargetChanged { .. } => "target-changed",
            ProposalError::AlreadyPublished { .. } => "already-published",
            ProposalError::UnexpectedTargets { .. } => "unexpected-targets",
            ProposalError::ExpectedTargetMissing { .. } => "expected-target-missing",
            ProposalError::TargetLength { .. } => "target-length",
            ProposalError::TargetDigest { .. } => "target-digest",
            ProposalError::TargetExtraHashes { .. } => "target-extra-hashes",
            ProposalError::TargetCustom { .. } => "target-custom",
            ProposalError::TargetUnknownFields { .. } => "target-unknown-fields",
        }
    }
}

/// Checks that `signed_canonical`, the bytes a signer is asked to sign, is
/// the `signed` part of targets metadata that is `published` (the targets
/// of version `base_version`, `None` when that is 0) plus exactly
/// `expected`, with version `base_version + 1` and an expiry after `now`
/// and at most `max_lifetime` after it.
///
/// The rules, in the order they are checked (the first broken one is the
/// error):
///
/// 1. The bytes are JSON of an object whose `_type` is `targets`
///    ([`ProposalError::Malformed`], [`ProposalError::WrongRole`]), with the
///    shape of targets metadata, keeping the rules [`Role::validate`]
///    checks ([`ProposalError::Malformed`]).
/// 2. The bytes are the canonical JSON of what was parsed
///    ([`ProposalError::NotCanonical`]): what is checked is exactly what
///    gets signed, so duplicate keys, other spacing or key orders, escapes
///    and `null` optional fields are refused.
/// 3. The published targets are those of `base_version`: none for 0
///    ([`ProposalError::BaseMismatch`]).
/// 4. `version` is `base_version + 1` ([`ProposalError::VersionNotNext`]).
/// 5. `expires` is after `now` and no later than `now + max_lifetime`
///    ([`ProposalError::Expired`], [`ProposalError::ExpiryTooFar`]).
/// 6. Everything but `version`, `expires` and `targets` is unchanged from
///    the published targets: `spec_version`
///    ([`ProposalError::SpecVersionChanged`]), `delegations`
///    ([`ProposalError::DelegationsChanged`]; a server could otherwise
///    delegate to its own key) and fields this crate does not know
///    ([`ProposalError::OtherFieldsChanged`]). For a first release
///    (`base_version` 0) there is nothing to compare with: `delegations`
///    and unknown fields must be absent and `spec_version` is any `1.x`
///    (rule 1).
/// 7. Every published target is still there
///    ([`ProposalError::TargetRemoved`]), unchanged in every field: length,
///    hashes, `custom` and unknown fields
///    ([`ProposalError::TargetChanged`]). The release's target must not be
///    published already ([`ProposalError::AlreadyPublished`]).
/// 8. The only added target is the release's
///    ([`ProposalError::UnexpectedTargets`],
///    [`ProposalError::ExpectedTargetMissing`]), and it is exactly the
///    expected one: length ([`ProposalError::TargetLength`]), sha256
///    ([`ProposalError::TargetDigest`]), no other hash algorithm
///    ([`ProposalError::TargetExtraHashes`]: the signer cannot check it),
///    `custom` ([`ProposalError::TargetCustom`]: it carries the install
///    instructions devices follow) and no unknown fields
///    ([`ProposalError::TargetUnknownFields`]).
///
/// What this cannot check: that `base_version` is the newest published
/// version, and that the published targets given are genuine. The caller
/// verifies the published targets against a root it trusts first: one
/// [`chain_root`](crate::chain_root) reached from a pinned root, never the
/// server's word alone.
///
/// # Errors
///
/// The first rule broken, as a [`ProposalError`].
pub fn check_targets_proposal(
    signed_canonical: &[u8],
    published: Option<&Targets>,
    base_version: u64,
    expected: &ExpectedTarget,
    now: OffsetDateTime,
    max_lifetime: Duration,
) -> Result<ProposalSummary, ProposalError> {
    let proposed = parse(signed_canonical)?;

    // 3. The base.
    let published_version = published.map(|p| p.version);
    let consistent = match published_version {
        None => base_version == 0,
        Some(v) => v == base_version && v != 0,
    };
    if !consistent {
        return Err(ProposalError::BaseMismatch {
            base_version,
            published: published_version,
        });
    }

    // 4. The version.
    if base_version.checked_add(1) != Some(proposed.version) {
        return Err(ProposalError::VersionNotNext {
            proposed: proposed.version,
            base_version,
        });
    }

    // 5. The expiry.
    if proposed.expires <= now {
        return Err(ProposalError::Expired {
            expires: proposed.expires,
            now,
        });
    }
    // Out of range only for absurd lifetimes: then nothing is accepted.
    let limit = now.checked_add(max_lifetime).unwrap_or(now);
    if proposed.expires > limit {
        return Err(ProposalError::ExpiryTooFar {
            expires: proposed.expires,
            limit,
        });
    }

    // 6. Everything but version, expires and targets.
    let no_fields = BTreeMap::new();
    let (published_delegations, published_fields) = match published {
        Some(p) => (p.delegations.as_ref(), &p.unrecognized),
        None => (None, &no_fields),
    };
    if let Some(p) = published
        && p.spec_version != proposed.spec_version
    {
        return Err(ProposalError::SpecVersionChanged {
            published: p.spec_version.clone(),
            proposed: proposed.spec_version.clone(),
        });
    }
    match (published_delegations, proposed.delegations.as_ref()) {
        (None, Some(_)) => return Err(ProposalError::DelegationsChanged("adds delegations")),
        (Some(_), None) => return Err(ProposalError::DelegationsChanged("removes delegations")),
        (Some(a), Some(b)) if a != b => {
            return Err(ProposalError::DelegationsChanged("changes delegations"));
        }
        _ => {}
    }
    let changed = differing_keys(published_fields, &proposed.unrecognized);
    if !changed.is_empty() {
        return Err(ProposalError::OtherFieldsChanged { fields: changed });
    }

    // 7. The published targets.
    let no_targets = BTreeMap::new();
    let published_targets = published.map_or(&no_targets, |p| &p.targets);
    if published_targets.contains_key(&expected.path) {
        return Err(ProposalError::AlreadyPublished {
            path: expected.path.clone(),
        });
    }
    for (path, file) in published_targets {
        let Some(now_file) = proposed.targets.get(path) else {
            return Err(ProposalError::TargetRemoved { path: path.clone() });
        };
        if let Some(field) = first_difference(file, now_file) {
            return Err(ProposalError::TargetChanged {
                path: path.clone(),
                field,
            });
        }
    }

    // 8. The one added target.
    let unexpected: Vec<String> = proposed
        .targets
        .keys()
        .filter(|p| !published_targets.contains_key(*p) && **p != expected.path)
        .cloned()
        .collect();
    if !unexpected.is_empty() {
        return Err(ProposalError::UnexpectedTargets {
            paths: unexpected,
            expected: expected.path.clone(),
        });
    }
    let Some(added) = proposed.targets.get(&expected.path) else {
        return Err(ProposalError::ExpectedTargetMissing {
            path: expected.path.clone(),
        });
    };
    check_added(added, expected)?;

    Ok(ProposalSummary {
        version: proposed.version,
        added: expected.path.clone(),
        length: added.length,
        sha256: expected.sha256.clone(),
        unchanged: published_targets.len(),
        expires: proposed.expires,
    })
}

/// Rules 1 and 2: targets metadata, in canonical form.
fn parse(bytes: &[u8]) -> Result<Targets, ProposalError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ProposalError::Malformed(e.to_string()))?;
    let Value::Object(mut fields) = value else {
        return Err(ProposalError::Malformed("not a JSON object".to_owned()));
    };
    // As `Metadata::from_slice` does: serde would keep `_type` among the
    // unknown fields, so it is checked and removed here.
    match fields.remove("_type") {
        Some(Value::String(t)) if t == Targets::TYPE => {}
        Some(Value::String(t)) => return Err(ProposalError::WrongRole { found: Some(t) }),
        _ => return Err(ProposalError::WrongRole { found: None }),
    }
    let targets: Targets = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ProposalError::Malformed(e.to_string()))?;
    targets
        .validate()
        .map_err(|e| ProposalError::Malformed(e.to_string()))?;
    // The bytes the server would have made of what was parsed (this is how
    // it builds proposals), which must be the bytes given.
    let canonical = Metadata::new(targets.clone())
        .signed_bytes()
        .map_err(|e| ProposalError::Malformed(e.to_string()))?;
    if canonical != bytes {
        let offset = canonical
            .iter()
            .zip(bytes)
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| canonical.len().min(bytes.len()));
        return Err(ProposalError::NotCanonical { offset });
    }
    Ok(targets)
}

/// The keys whose values differ between `a` and `b`, sorted.
fn differing_keys(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// The first field in which `proposed` differs from `published`.
fn first_difference(published: &TargetFile, proposed: &TargetFile) -> Option<&'static str> {
    if published.length != proposed.length {
        Some("length")
    } else if published.hashes != proposed.hashes {
        Some("hashes")
    } else if published.custom != proposed.custom {
        Some("custom")
    } else if published.unrecognized != proposed.unrecognized {
        Some("unknown fields")
    } else {
        None
    }
}

/// Rule 8: the added target is exactly `expected`.
fn check_added(added: &TargetFile, expected: &ExpectedTarget) -> Result<(), ProposalError> {
    let path = || expected.path.clone();
    if added.length != expected.length {
        return Err(ProposalError::TargetLength {
            path: path(),
            expected: expected.length,
            proposed: added.length,
        });
    }
    if added.sha256() != Some(expected.sha256.as_str()) {
        return Err(ProposalError::TargetDigest {
            path: path(),
            expected: expected.sha256.clone(),
            proposed: added.sha256().map(str::to_owned),
        });
    }
    let algorithms: Vec<String> = added
        .hashes
        .keys()
        .filter(|a| *a != "sha256")
        .cloned()
        .collect();
    if !algorithms.is_empty() {
        return Err(ProposalError::TargetExtraHashes {
            path: path(),
            algorithms,
        });
    }
    if added.custom != expected.custom {
        return Err(ProposalError::TargetCustom { path: path() });
    }
    if !added.unrecognized.is_empty() {
        return Err(ProposalError::TargetUnknownFields {
            path: path(),
            fields: added.unrecognized.keys().cloned().collect(),
        });
    }
    Ok(())
}
