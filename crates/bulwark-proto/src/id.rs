//! [`DeviceId`]: the identity of one device.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

const SAN_PREFIX: &str = "urn:bulwark:device:";

/// A device's identity, assigned by the server at enrollment.
///
/// Deliberately not `Deref<Target = str>`: callers choose between the
/// canonical string ([`fmt::Display`]) and the certificate form
/// ([`DeviceId::to_san_uri`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(Uuid);

/// A string that is not a device id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid device id {value:?}: expected a lowercase hyphenated UUID")]
pub struct InvalidDeviceId {
    /// The offending input, truncated to 64 characters.
    pub value: String,
}

impl DeviceId {
    /// Wraps a UUID.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// Parses the canonical form: a lowercase, hyphenated UUID (36 chars).
    pub fn parse(s: &str) -> Result<Self, InvalidDeviceId> {
        let bad = || InvalidDeviceId {
            value: s.chars().take(64).collect(),
        };
        if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(bad());
        }
        Uuid::try_parse(s).map(Self).map_err(|_| bad())
    }

    /// Parses the certificate SAN URI form (`urn:bulwark:device:<uuid>`).
    pub fn from_san_uri(uri: &str) -> Result<Self, InvalidDeviceId> {
        match uri.strip_prefix(SAN_PREFIX) {
            Some(rest) => Self::parse(rest),
            None => Err(InvalidDeviceId {
                value: uri.chars().take(64).collect(),
            }),
        }
    }

    /// The URI placed in the device certificate's subject alternative name.
    pub fn to_san_uri(&self) -> String {
        format!("{SAN_PREFIX}{}", self.0.hyphenated())
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.0.hyphenated())
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DeviceId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for DeviceId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Uuid,
            )))
            .description(Some("Device id (lowercase hyphenated UUID)"))
            .into()
    }
}

impl utoipa::ToSchema for DeviceId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_only_canonical_form() {
        let ok = "5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10";
        assert_eq!(DeviceId::parse(ok).unwrap().to_string(), ok);
        for bad in [
            "",
            "5F0C6A4E-8D5E-4B8E-9C57-2F4F7D1B2A10",
            "5f0c6a4e8d5e4b8e9c572f4f7d1b2a10",
            "{5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10}",
            "5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a1g",
            "../../../../etc/passwd/aaaaaaaaaaaaaaaa",
        ] {
            assert!(DeviceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn san_uri_round_trip() {
        let id = DeviceId::parse("5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10").unwrap();
        assert_eq!(DeviceId::from_san_uri(&id.to_san_uri()).unwrap(), id);
        assert!(DeviceId::from_san_uri("urn:other:5f0c6a4e-8d5e-4b8e-9c57-2f4f7d1b2a10").is_err());
    }
}
