//! Canonical JSON, as securesystemslib's `encode_canonical` (OLPC) writes it.
//!
//! This is the byte string TUF signers sign. The rules:
//!
//! - objects have their keys sorted (by code point, which is UTF-8 byte order)
//!   and no whitespace;
//! - strings escape only `"` and `\`; every other character, control
//!   characters and non-ASCII included, is written as is (UTF-8);
//! - numbers must be integers: a float is an error.

use serde_json::Value;

use crate::Error;

/// Encodes `value` as canonical JSON.
///
/// # Errors
///
/// [`Error::Canonical`] if `value` holds a number that is not an integer.
pub fn canonical_json(value: &Value) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    write_value(value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), Error> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.extend_from_slice(i.to_string().as_bytes());
            } else if let Some(u) = n.as_u64() {
                out.extend_from_slice(u.to_string().as_bytes());
            } else {
                return Err(Error::Canonical(format!(
                    "{n} is not an integer: canonical JSON has no floats"
                )));
            }
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                write_value(item, out)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for byte in s.bytes() {
        if byte == b'"' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out.push(b'"');
}
