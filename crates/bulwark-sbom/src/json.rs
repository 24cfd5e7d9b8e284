//! Bounded, path-tracking access to a parsed JSON document.
//!
//! The readers walk a [`serde_json::Value`] with these helpers so every
//! error names the field it is about (`components[3].purl`) and every
//! string read is held to [`Limits::max_string_len`]. Paths are built on
//! the stack ([`JsonPath`] borrows its parent) and only formatted when an
//! error is reported.

use std::fmt;

use serde_json::{Map, Value};

use crate::{Limits, SbomError};

/// The deepest nesting of arrays and objects accepted: `serde_json`'s own
/// recursion limit, checked first by [`check_nesting`] so that the error
/// says what is wrong.
pub(crate) const JSON_MAX_NESTING: usize = 128;

/// Where a value sits in the document.
#[derive(Debug, Clone, Copy)]
pub(crate) enum JsonPath<'a> {
    /// The top-level value.
    Root,
    /// A member of an object.
    Key(&'a JsonPath<'a>, &'a str),
    /// An element of an array.
    Index(&'a JsonPath<'a>, usize),
}

impl<'a> JsonPath<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> JsonPath<'a> {
        JsonPath::Key(self, key)
    }

    pub(crate) fn index(&'a self, index: usize) -> JsonPath<'a> {
        JsonPath::Index(self, index)
    }
}

impl fmt::Display for JsonPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonPath::Root => f.write_str("$"),
            JsonPath::Key(JsonPath::Root, key) => f.write_str(key),
            JsonPath::Key(parent, key) => write!(f, "{parent}.{key}"),
            JsonPath::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Fails when arrays and objects nest deeper than [`JSON_MAX_NESTING`].
/// A linear scan that skips strings; the input need not be valid JSON.
pub(crate) fn check_nesting(bytes: &[u8]) -> Result<(), SbomError> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > JSON_MAX_NESTING {
                    return Err(SbomError::JsonTooDeep {
                        limit: JSON_MAX_NESTING,
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// `a string`, `an object`, … for error messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(path: &JsonPath<'_>, expected: &'static str, value: &Value) -> SbomError {
    SbomError::WrongType {
        path: path.to_string(),
        expected,
        found: kind(value),
    }
}

/// An object and where it is, with the limits strings are held to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Obj<'v, 'p> {
    pub(crate) map: &'v Map<String, Value>,
    pub(crate) path: &'p JsonPath<'p>,
    pub(crate) limits: &'p Limits,
}

impl<'v, 'p> Obj<'v, 'p> {
    /// `value` as an object.
    pub(crate) fn new(
        value: &'v Value,
        path: &'p JsonPath<'p>,
        limits: &'p Limits,
    ) -> Result<Self, SbomError> {
        match value {
            Value::Object(map) => Ok(Obj { map, path, limits }),
            other => Err(wrong_type(path, "an object", other)),
        }
    }

    fn missing(&self, key: &str) -> SbomError {
        SbomError::Missing {
            path: self.path.key(key).to_string(),
        }
    }

    /// A member that must be present.
    pub(crate) fn req(&self, key: &str) -> Result<&'v Value, SbomError> {
        self.map.get(key).ok_or_else(|| self.missing(key))
    }

    /// A string member that must be present.
    pub(crate) fn req_str(&self, key: &str) -> Result<&'v str, SbomError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// A string member, if present.
    pub(crate) fn opt_str(&self, key: &str) -> Result<Option<&'v str>, SbomError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(value) => string(value, &self.path.key(key), self.limits).map(Some),
        }
    }

    /// An array member, if present.
    pub(crate) fn opt_array(&self, key: &str) -> Result<Option<&'v [Value]>, SbomError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(wrong_type(&self.path.key(key), "an array", other)),
        }
    }

    /// A boolean member, if present.
    pub(crate) fn opt_bool(&self, key: &str) -> Result<Option<bool>, SbomError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(&self.path.key(key), "a boolean", other)),
        }
    }

    /// An error about member `key` of this object.
    pub(crate) fn invalid(&self, key: &str, reason: impl Into<String>) -> SbomError {
        SbomError::Invalid {
            path: self.path.key(key).to_string(),
            reason: reason.into(),
        }
    }
}

/// `value` as a string no longer than the limit.
pub(crate) fn string<'v>(
    value: &'v Value,
    path: &JsonPath<'_>,
    limits: &Limits,
) -> Result<&'v str, SbomError> {
    match value {
        Value::String(s) if s.len() > limits.max_string_len => Err(SbomError::StringTooLong {
            path: path.to_string(),
            len: s.len(),
            limit: limits.max_string_len,
        }),
        Value::String(s) => Ok(s),
        other => Err(wrong_type(path, "a string", other)),
    }
}

/// Whether `s` is 64 hex digits (either case), a SHA-256 digest.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
