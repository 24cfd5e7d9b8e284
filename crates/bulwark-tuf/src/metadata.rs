//! The metadata documents: the [`Metadata`] envelope and the four top-level
//! roles, plus delegations.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Error, KeyId, PublicKey, SigningKey, canonical_json};

/// The specification version written into new metadata.
pub const SPEC_VERSION: &str = "1.0.31";

/// The four top-level role names.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "snapshot", "targets", "timestamp"];

/// Serde for `expires`: `"2030-01-01T00:00:00Z"`, UTC, whole seconds.
pub mod expires_format {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::BorrowedFormatItem;
    use time::macros::format_description;
    use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

    const FORMAT: &[BorrowedFormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

    /// Formats `t` (converted to UTC, fraction dropped) the TUF way.
    pub fn format(t: OffsetDateTime) -> String {
        let t = t.to_offset(UtcOffset::UTC);
        // The format has no component that can fail for a valid date.
        t.format(FORMAT).unwrap_or_default()
    }

    /// Parses the TUF `expires` format.
    pub fn parse(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
        PrimitiveDateTime::parse(s, FORMAT).map(PrimitiveDateTime::assume_utc)
    }

    /// Serializes `t`.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*t))
    }

    /// Deserializes a timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(|e| serde::de::Error::custom(format!("bad expires {s:?}: {e}")))
    }
}

/// One signature in a metadata envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The id of the signing key.
    pub keyid: KeyId,
    /// The signature, lowercase hex.
    pub sig: String,
}

/// The signed part of a metadata document.
pub trait Role: Serialize + DeserializeOwned + Clone {
    /// The `_type` value: `root`, `timestamp`, `snapshot` or `targets`.
    const TYPE: &'static str;
    /// The metadata version.
    fn version(&self) -> u64;
    /// The expiry.
    fn expires(&self) -> OffsetDateTime;
    /// Checks the rules serde cannot express. Called by
    /// [`Metadata::from_slice`].
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the broken rule.
    fn validate(&self) -> Result<(), Error> {
        Ok(())
    }
    /// Whether the metadata has expired at `now` (expiry is exclusive: at
    /// `expires` it has already expired).
    fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires()
    }
}

/// A signed metadata envelope: `{"signed": T, "signatures": [...]}`.
///
/// A document read with [`Metadata::from_slice`] keeps the signed part
/// exactly as received, so signatures verify over what the signer signed,
/// unknown fields included.
#[derive(Debug, Clone)]
pub struct Metadata<T: Role> {
    signed: T,
    /// The signed part as received; `None` for documents built here.
    raw_signed: Option<Value>,
    signatures: Vec<Signature>,
}

impl<T: Role> Metadata<T> {
    /// Wraps `signed`, with no signatures yet.
    pub fn new(signed: T) -> Self {
        Metadata {
            signed,
            raw_signed: None,
            signatures: Vec::new(),
        }
    }

    /// Parses a document and checks that its `_type` is `T::TYPE`.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] for bad JSON or a wrong shape, [`Error::WrongType`],
    /// and [`Error::Invalid`] for broken rules (duplicate signature key ids,
    /// version 0, unsupported spec version, ...).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Envelope {
            signed: Value,
            signatures: Vec<Signature>,
        }
        let envelope: Envelope = serde_json::from_slice(bytes)?;
        let Value::Object(mut fields) = envelope.signed.clone() else {
            return Err(Error::Invalid("signed is not an object".to_owned()));
        };
        match fields.remove("_type") {
            Some(Value::String(t)) if t == T::TYPE => {}
            Some(Value::String(found)) => {
                return Err(Error::WrongType {
                    expected: T::TYPE,
                    found,
                });
            }
            _ => {
                return Err(Error::Invalid(
                    "signed._type missing or not a string".into(),
                ));
            }
        }
        let signed: T = serde_json::from_value(Value::Object(fields))?;
        signed.validate()?;
        let mut seen = BTreeSet::new();
        for s in &envelope.signatures {
            if !seen.insert(&s.keyid) {
                return Err(Error::Invalid(format!(
                    "more than one signature by key {}",
                    s.keyid
                )));
            }
        }
        Ok(Metadata {
            signed,
            raw_signed: Some(envelope.signed),
            signatures: envelope.signatures,
        })
    }

    /// The signed part.
    pub fn signed(&self) -> &T {
        &self.signed
    }

    /// The signed part, for editing. Forgets the received form and drops all
    /// signatures: they would no longer verify.
    pub fn signed_mut(&mut self) -> &mut T {
        self.raw_signed = None;
        self.signatures.clear();
        &mut self.signed
    }

    /// The signatures.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    fn signed_value(&self) -> Result<Value, Error> {
        if let Some(raw) = &self.raw_signed {
            return Ok(raw.clone());
        }
        let mut value = serde_json::to_value(&self.signed)?;
        if let Value::Object(map) = &mut value {
            map.insert("_type".to_owned(), Value::String(T::TYPE.to_owned()));
        }
        Ok(value)
    }

    /// The canonical JSON of the signed part: what signers sign.
    ///
    /// # Errors
    ///
    /// [`Error::Canonical`] if the signed part holds a float.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, Error> {
        canonical_json(&self.signed_value()?)
    }

    /// Signs with `key`, replacing an earlier signature by the same key id.
    ///
    /// # Errors
    ///
    /// As [`Metadata::signed_bytes`] and [`SigningKey::sign`].
    pub fn sign(&mut self, key: &SigningKey) -> Result<(), Error> {
        let sig = key.sign(&self.signed_bytes()?)?;
        self.add_signature(Signature {
            keyid: key.key_id(),
            sig: hex::encode(sig),
        });
        Ok(())
    }

    /// Adds a signature made elsewhere, replacing an earlier signature by the
    /// same key id.
    pub fn add_signature(&mut self, sig: Signature) {
        if let Some(existing) = self.signatures.iter_mut().find(|s| s.keyid == sig.keyid) {
            *existing = sig;
        } else {
            self.signatures.push(sig);
        }
    }

    /// The whole envelope as JSON bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Json`] if serialization fails.
    pub fn to_vec(&self) -> Result<Vec<u8>, Error> {
        let mut map = serde_json::Map::new();
        map.insert("signed".to_owned(), self.signed_value()?);
        map.insert(
            "signatures".to_owned(),
            serde_json::to_value(&self.signatures)?,
        );
        Ok(serde_json::to_vec(&Value::Object(map))?)
    }

    /// Verifies that at least `role_keys.threshold` distinct keys listed in
    /// `role_keys` signed this document validly.
    pub(crate) fn verify_threshold(
        &self,
        keys: &BTreeMap<KeyId, PublicKey>,
        role_name: &str,
        role_keys: &RoleKeys,
    ) -> Result<(), Error> {
        let valid = self.count_valid_by(keys, role_keys)?;
        if (valid as u64) < role_keys.threshold {
            return Err(Error::Threshold {
                role: role_name.to_owned(),
                valid,
                threshold: role_keys.threshold,
            });
        }
        Ok(())
    }

    /// Counts distinct keys of `role_keys` with a valid signature. Two key
    /// ids naming the same key material count once.
    pub(crate) fn count_valid_by(
        &self,
        keys: &BTreeMap<KeyId, PublicKey>,
        role_keys: &RoleKeys,
    ) -> Result<usize, Error> {
        let msg = self.signed_bytes()?;
        let mut counted_ids = BTreeSet::new();
        let mut counted_keys = BTreeSet::new();
        for keyid in &role_keys.keyids {
            if !counted_ids.insert(keyid) {
                continue;
            }
            let Some(key) = keys.get(keyid) else { continue };
            let Some(signature) = self.signatures.iter().find(|s| &s.keyid == keyid) else {
                continue;
            };
            let Ok(raw) = hex::decode(&signature.sig) else {
                continue;
            };
            if key.verify(&msg, &raw).is_ok() {
                counted_keys.insert((key.keytype.as_str(), key.keyval.public.as_str()));
            }
        }
        Ok(counted_keys.len())
    }
}

fn validate_common(spec_version: &str, version: u64) -> Result<(), Error> {
    if version == 0 {
        return Err(Error::Invalid("version must be at least 1".to_owned()));
    }
    let parts: Vec<&str> = spec_version.split('.').collect();
    let well_formed = matches!(parts.len(), 2 | 3)
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(Error::Invalid(format!(
            "spec_version {spec_version:?} is not X.Y or X.Y.Z"
        )));
    }
    if parts[0] != "1" {
        return Err(Error::Invalid(format!(
            "unsupported spec_version {spec_version:?}: this client implements 1.x"
        )));
    }
    Ok(())
}

/// The keys and threshold of a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleKeys {
    /// Ids of the keys that may sign for the role.
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: u64,
}

impl RoleKeys {
    fn validate(&self, name: &str) -> Result<(), Error> {
        if self.threshold == 0 {
            return Err(Error::Invalid(format!("role {name:?} has threshold 0")));
        }
        let unique: BTreeSet<&KeyId> = self.keyids.iter().collect();
        if unique.len() != self.keyids.len() {
            return Err(Error::Invalid(format!(
                "role {name:?} lists a key id twice"
            )));
        }
        Ok(())
    }
}

/// Root metadata: the keys and thresholds of the top-level roles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Root {
    /// The TUF specification version.
    pub spec_version: String,
    /// The metadata version.
    pub version: u64,
    /// The expiry.
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// Whether files are published under version- and hash-prefixed names.
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// Every key any top-level role uses.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The four top-level roles.
    pub roles: BTreeMap<String, RoleKeys>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl Role for Root {
    const TYPE: &'static str = "root";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> OffsetDateTime {
        self.expires
    }
    fn validate(&self) -> Result<(), Error> {
        validate_common(&self.spec_version, self.version)?;
        let names: BTreeSet<&str> = self.roles.keys().map(String::as_str).collect();
        if names != TOP_LEVEL_ROLES.into_iter().collect() {
            return Err(Error::Invalid(
                "root roles must be exactly root, snapshot, targets and timestamp".to_owned(),
            ));
        }
        for (name, role) in &self.roles {
            role.validate(name)?;
        }
        Ok(())
    }
}

impl Root {
    /// Version 1, consistent snapshots on, the four roles with threshold 1
    /// and no keys.
    pub fn new(expires: OffsetDateTime) -> Root {
        let roles = TOP_LEVEL_ROLES
            .into_iter()
            .map(|name| {
                let keys = RoleKeys {
                    keyids: Vec::new(),
                    threshold: 1,
                };
                (name.to_owned(), keys)
            })
            .collect();
        Root {
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            consistent_snapshot: true,
            keys: BTreeMap::new(),
            roles,
            unrecognized: BTreeMap::new(),
        }
    }

    /// Adds `key` to `role` (and to `keys`). Adding a key twice is a no-op.
    /// Creates the role with threshold 1 if it does not exist.
    pub fn add_key(&mut self, role: &str, key: PublicKey) {
        let id = key.key_id();
        self.keys.insert(id.clone(), key);
        let entry = self
            .roles
            .entry(role.to_owned())
            .or_insert_with(|| RoleKeys {
                keyids: Vec::new(),
                threshold: 1,
            });
        if !entry.keyids.contains(&id) {
            entry.keyids.push(id);
        }
    }

    /// Removes key `id` from `role`, and from `keys` if no role uses it any more.
    pub fn revoke_key(&mut self, role: &str, id: &KeyId) {
        if let Some(entry) = self.roles.get_mut(role) {
            entry.keyids.retain(|k| k != id);
        }
        if !self.roles.values().any(|r| r.keyids.contains(id)) {
            self.keys.remove(id);
        }
    }

    /// Sets the threshold of `role` (creating it with no keys if needed).
    pub fn set_threshold(&mut self, role: &str, threshold: u64) {
        self.roles
            .entry(role.to_owned())
            .or_insert_with(|| RoleKeys {
                keyids: Vec::new(),
                threshold,
            })
            .threshold = threshold;
    }

    /// Verifies `md` carries at least the threshold of valid signatures from
    /// distinct keys of `role` in this root.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownRole`] or [`Error::Threshold`].
    pub fn verify_role<T: Role>(&self, role: &str, md: &Metadata<T>) -> Result<(), Error> {
        let keys = self
            .roles
            .get(role)
            .ok_or_else(|| Error::UnknownRole(role.to_owned()))?;
        md.verify_threshold(&self.keys, role, keys)
    }

    /// Number of distinct valid signatures on `md` by keys of `role`.
    pub fn count_valid<T: Role>(&self, role: &str, md: &Metadata<T>) -> usize {
        self.roles
            .get(role)
            .and_then(|keys| md.count_valid_by(&self.keys, keys).ok())
            .unwrap_or(0)
    }
}

/// The description of a metadata file in snapshot or timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaFile {
    /// The version of the file.
    pub version: u64,
    /// Its length in bytes, if listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Its hashes (algorithm → lowercase hex), if listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
}

impl MetaFile {
    /// Only a version, as python-tuf writes by default.
    pub fn version_only(version: u64) -> MetaFile {
        MetaFile {
            version,
            length: None,
            hashes: None,
        }
    }

    /// Describes `bytes` as version `version`, with length and sha256.
    pub fn describing(version: u64, bytes: &[u8]) -> MetaFile {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), crate::hash::sha256_hex(bytes));
        MetaFile {
            version,
            length: Some(bytes.len() as u64),
            hashes: Some(hashes),
        }
    }

    fn validate(&self, name: &str) -> Result<(), Error> {
        if self.version == 0 {
            return Err(Error::Invalid(format!("meta {name:?} has version 0")));
        }
        if self.hashes.as_ref().is_some_and(BTreeMap::is_empty) {
            return Err(Error::Invalid(format!("meta {name:?} has empty hashes")));
        }
        Ok(())
    }
}

/// Snapshot metadata: the versions of all targets metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The TUF specification version.
    pub spec_version: String,
    /// The metadata version.
    pub version: u64,
    /// The expiry.
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// `<role>.json` → description.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl Snapshot {
    /// Version 1, listing `targets.json` version 1.
    pub fn new(expires: OffsetDateTime) -> Snapshot {
        let mut meta = BTreeMap::new();
        meta.insert("targets.json".to_owned(), MetaFile::version_only(1));
        Snapshot {
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            meta,
            unrecognized: BTreeMap::new(),
        }
    }
}

impl Role for Snapshot {
    const TYPE: &'static str = "snapshot";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> OffsetDateTime {
        self.expires
    }
    fn validate(&self) -> Result<(), Error> {
        validate_common(&self.spec_version, self.version)?;
        for (name, meta) in &self.meta {
            meta.validate(name)?;
        }
        Ok(())
    }
}

/// Timestamp metadata: the current snapshot version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timestamp {
    /// The TUF specification version.
    pub spec_version: String,
    /// The metadata version.
    pub version: u64,
    /// The expiry.
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// Holds exactly `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl Timestamp {
    /// Version 1, listing `snapshot.json` version 1.
    pub fn new(expires: OffsetDateTime) -> Timestamp {
        let mut meta = BTreeMap::new();
        meta.insert("snapshot.json".to_owned(), MetaFile::version_only(1));
        Timestamp {
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            meta,
            unrecognized: BTreeMap::new(),
        }
    }

    /// The `snapshot.json` entry (validated to exist on parse).
    pub fn snapshot_meta(&self) -> Option<&MetaFile> {
        self.meta.get("snapshot.json")
    }
}

impl Role for Timestamp {
    const TYPE: &'static str = "timestamp";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> OffsetDateTime {
        self.expires
    }
    fn validate(&self) -> Result<(), Error> {
        validate_common(&self.spec_version, self.version)?;
        let meta = self
            .snapshot_meta()
            .ok_or_else(|| Error::Invalid("timestamp meta lacks snapshot.json".to_owned()))?;
        meta.validate("snapshot.json")
    }
}

/// One target file: its length and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFile {
    /// Length in bytes.
    pub length: u64,
    /// Algorithm → lowercase hex digest.
    pub hashes: BTreeMap<String, String>,
    /// Application data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Value>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl TargetFile {
    /// Describes `bytes`: length and sha256.
    pub fn from_bytes(bytes: &[u8]) -> TargetFile {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_owned(), crate::hash::sha256_hex(bytes));
        TargetFile {
            length: bytes.len() as u64,
            hashes,
            custom: None,
            unrecognized: BTreeMap::new(),
        }
    }

    /// The sha256 hex digest, if listed.
    pub fn sha256(&self) -> Option<&str> {
        self.hashes.get("sha256").map(String::as_str)
    }
}

/// Targets metadata (top-level or delegated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targets {
    /// The TUF specification version.
    pub spec_version: String,
    /// The metadata version.
    pub version: u64,
    /// The expiry.
    #[serde(with = "expires_format")]
    pub expires: OffsetDateTime,
    /// Target path → file description.
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations to other targets roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl Targets {
    /// Version 1, no targets, no delegations.
    pub fn new(expires: OffsetDateTime) -> Targets {
        Targets {
            spec_version: SPEC_VERSION.to_owned(),
            version: 1,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            unrecognized: BTreeMap::new(),
        }
    }

    /// Verifies `md` (metadata of `role`) against this metadata's delegation
    /// of `role`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownRole`] or [`Error::Threshold`].
    pub fn verify_delegate<T: Role>(&self, role: &str, md: &Metadata<T>) -> Result<(), Error> {
        let delegations = self
            .delegations
            .as_ref()
            .ok_or_else(|| Error::UnknownRole(role.to_owned()))?;
        let keys = delegations
            .role_keys(role)
            .ok_or_else(|| Error::UnknownRole(role.to_owned()))?;
        md.verify_threshold(&delegations.keys, role, &keys)
    }
}

impl Role for Targets {
    const TYPE: &'static str = "targets";
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> OffsetDateTime {
        self.expires
    }
    fn validate(&self) -> Result<(), Error> {
        validate_common(&self.spec_version, self.version)?;
        for (path, file) in &self.targets {
            if file.hashes.is_empty() {
                return Err(Error::Invalid(format!("target {path:?} has no hashes")));
            }
        }
        if let Some(d) = &self.delegations {
            d.validate()?;
        }
        Ok(())
    }
}

/// The delegations of a targets role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delegations {
    /// The keys delegated roles use.
    pub keys: BTreeMap<KeyId, PublicKey>,
    /// The delegated roles, in priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// Hash-bin delegation (TAP 15), instead of `roles`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl Delegations {
    fn validate(&self) -> Result<(), Error> {
        match (&self.roles, &self.succinct_roles) {
            (Some(roles), None) => {
                let mut names = BTreeSet::new();
                for role in roles {
                    if TOP_LEVEL_ROLES.contains(&role.name.as_str()) {
                        return Err(Error::Invalid(format!(
                            "delegated role name {:?} is a top-level role name",
                            role.name
                        )));
                    }
                    if !names.insert(role.name.as_str()) {
                        return Err(Error::Invalid(format!(
                            "delegated role {:?} appears twice",
                            role.name
                        )));
                    }
                    role.validate()?;
                }
                Ok(())
            }
            (None, Some(succinct)) => succinct.validate(),
            _ => Err(Error::Invalid(
                "delegations need exactly one of roles and succinct_roles".to_owned(),
            )),
        }
    }

    /// The keys and threshold of delegated role `name`, if delegated here.
    pub fn role_keys(&self, name: &str) -> Option<RoleKeys> {
        if let Some(roles) = &self.roles {
            return roles.iter().find(|r| r.name == name).map(|r| RoleKeys {
                keyids: r.keyids.clone(),
                threshold: r.threshold,
            });
        }
        let succinct = self.succinct_roles.as_ref()?;
        succinct.is_delegated_role(name).then(|| RoleKeys {
            keyids: succinct.keyids.clone(),
            threshold: succinct.threshold,
        })
    }

    /// The roles to search for `target_path`, in order, each with its
    /// `terminating` flag.
    pub fn roles_for_target(&self, target_path: &str) -> Vec<(String, bool)> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .filter(|r| r.is_delegated_path(target_path))
                .map(|r| (r.name.clone(), r.terminating))
                .collect();
        }
        match &self.succinct_roles {
            Some(s) => vec![(s.role_for_target(target_path), false)],
            None => Vec::new(),
        }
    }
}

/// One delegated role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelegatedRole {
    /// The role name.
    pub name: String,
    /// Ids of the keys that may sign for the role.
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: u64,
    /// Whether the search stops at this role when it matches.
    pub terminating: bool,
    /// Shell-style patterns of target paths delegated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of the SHA-256 of target paths delegated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl DelegatedRole {
    fn validate(&self) -> Result<(), Error> {
        let keys = RoleKeys {
            keyids: self.keyids.clone(),
            threshold: self.threshold,
        };
        keys.validate(&self.name)?;
        if self.paths.is_some() == self.path_hash_prefixes.is_some() {
            return Err(Error::Invalid(format!(
                "delegated role {:?} needs exactly one of paths and path_hash_prefixes",
                self.name
            )));
        }
        Ok(())
    }

    /// Whether `target_path` is delegated to this role.
    ///
    /// `paths` patterns match segment by segment (a `*` never crosses a
    /// `/`), as python-tuf does.
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        if let Some(prefixes) = &self.path_hash_prefixes {
            let digest = crate::hash::sha256_hex(target_path.as_bytes());
            return prefixes.iter().any(|p| digest.starts_with(p.as_str()));
        }
        if let Some(patterns) = &self.paths {
            return patterns
                .iter()
                .any(|p| crate::glob::path_matches(target_path, p));
        }
        false
    }
}

/// Hash-bin delegation (TAP 15): `2^bit_length` roles named
/// `<name_prefix>-<hex bin>`, sharing keys and threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccinctRoles {
    /// Ids of the keys that may sign for every bin.
    pub keyids: Vec<KeyId>,
    /// How many of them must sign.
    pub threshold: u64,
    /// Number of leading bits of the path hash that pick the bin (1..=32).
    pub bit_length: u32,
    /// The common name prefix.
    pub name_prefix: String,
    /// Fields this implementation does not know.
    #[serde(flatten)]
    pub unrecognized: BTreeMap<String, Value>,
}

impl SuccinctRoles {
    fn validate(&self) -> Result<(), Error> {
        RoleKeys {
            keyids: self.keyids.clone(),
            threshold: self.threshold,
        }
        .validate(&self.name_prefix)?;
        if !(1..=32).contains(&self.bit_length) {
            return Err(Error::Invalid(format!(
                "succinct_roles bit_length {} is not in 1..=32",
                self.bit_length
            )));
        }
        Ok(())
    }

    fn suffix_len(&self) -> usize {
        let bins = 1u64 << self.bit_length;
        format!("{:x}", bins - 1).len()
    }

    /// The bin role responsible for `target_path`.
    pub fn role_for_target(&self, target_path: &str) -> String {
        let digest = crate::hash::sha256(target_path.as_bytes());
        let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let bin = u64::from(first) >> (32 - self.bit_length);
        format!(
            "{}-{:0width$x}",
            self.name_prefix,
            bin,
            width = self.suffix_len()
        )
    }

    /// Whether `name` is one of the bins.
    pub fn is_delegated_role(&self, name: &str) -> bool {
        let Some(suffix) = name
            .strip_prefix(self.name_prefix.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
        else {
            return false;
        };
        if suffix.len() != self.suffix_len() || !suffix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        u64::from_str_radix(suffix, 16).is_ok_and(|bin| bin < (1u64 << self.bit_length))
    }
}
