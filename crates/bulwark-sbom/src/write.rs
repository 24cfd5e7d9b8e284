//! What both writers check before writing: the inputs that would make an
//! invalid document.

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::json::is_sha256_hex;
use crate::{Component, Purl, SbomError};

/// `timestamp` in UTC to the second, `2024-05-01T12:00:00Z`: the one
/// date-time form both CycloneDX and SPDX accept.
pub(crate) fn utc_timestamp(timestamp: OffsetDateTime) -> Result<String, SbomError> {
    let out_of_range = || SbomError::TimestampOutOfRange {
        timestamp: timestamp.to_string(),
    };
    let utc = timestamp
        .checked_to_offset(UtcOffset::UTC)
        .filter(|t| (0..=9999).contains(&t.year()))
        .ok_or_else(out_of_range)?;
    utc.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .map_err(|_| out_of_range())
}

/// Component `index`'s canonical purl and lower-case SHA-256, or why it
/// cannot be written: an empty name, a purl that does not parse, a
/// SHA-256 that is not 64 hex digits.
pub(crate) fn checked_component(
    c: &Component,
    index: usize,
) -> Result<(String, Option<String>), SbomError> {
    if c.name.is_empty() {
        return Err(SbomError::Invalid {
            path: format!("components[{index}].name"),
            reason: "must not be empty".into(),
        });
    }
    let purl = Purl::parse(&c.purl).map_err(|error| SbomError::InvalidPurl {
        path: format!("components[{index}].purl"),
        error,
    })?;
    let sha256 = match &c.sha256 {
        Some(h) if !is_sha256_hex(h) => {
            return Err(SbomError::Invalid {
                path: format!("components[{index}].sha256"),
                reason: "a SHA-256 is 64 hex digits".into(),
            });
        }
        Some(h) => Some(h.to_ascii_lowercase()),
        None => None,
    };
    Ok((purl.to_string(), sha256))
}
