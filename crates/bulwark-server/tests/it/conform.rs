//! Responses checked against the OpenAPI document: the status must be one
//! the operation documents, and a JSON body must fit its schema.
//!
//! The checker understands what utoipa emits (OpenAPI 3.1): `$ref` into
//! `components/schemas`, `type` (one or a list, `null` for options),
//! `properties`, `required`, `additionalProperties`, `items`, `enum`,
//! `oneOf`/`anyOf`/`allOf`, `format: date-time`, `minimum`/`maximum`.
//! Anything else in a schema is not checked (said here, not silently
//! assumed).

use std::sync::OnceLock;

use serde_json::Value;

fn doc() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| serde_json::to_value(bulwark_server::api::openapi()).unwrap())
}

/// The documented path template `uri` (without its query) falls under.
fn template(uri: &str) -> Option<&'static str> {
    let path = uri.split('?').next().unwrap_or(uri);
    let segs: Vec<&str> = path.split('/').collect();
    // The most specific template: most literal segments.
    doc()["paths"]
        .as_object()?
        .keys()
        .filter_map(|t| {
            let tsegs: Vec<&str> = t.split('/').collect();
            let wild = tsegs.last().is_some_and(|s| *s == "{path}");
            let fits = if wild {
                segs.len() >= tsegs.len()
            } else {
                segs.len() == tsegs.len()
            };
            let same = tsegs
                .iter()
                .zip(&segs)
                .all(|(t, s)| (t.starts_with('{') && !s.is_empty()) || t == s);
            let literal = tsegs.iter().filter(|t| !t.starts_with('{')).count();
            (fits && same).then_some((literal, t.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, t)| t)
}

/// Checks one response; `Err` says what does not match the document.
pub(crate) fn check(method: &str, uri: &str, status: u16, body: &[u8]) -> Result<(), String> {
    let method = method.to_ascii_lowercase();
    let Some(t) = template(uri) else {
        // Routes outside the document (/healthz, /metrics, unknown
        // paths) answer in the error shape, checked by the callers.
        return Ok(());
    };
    let op = &doc()["paths"][t][&method];
    if op.is_null() {
        return if status == 405 {
            Ok(())
        } else {
            Err(format!(
                "{method} {t}: undocumented method answered {status}"
            ))
        };
    }
    let resp = &op["responses"][status.to_string()];
    if resp.is_null() {
        return Err(format!(
            "{method} {t}: status {status} is not documented (documented: {:?})",
            op["responses"]
                .as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>())
        ));
    }
    let schema = &resp["content"]["application/json"]["schema"];
    if schema.is_null() || body.is_empty() {
        return Ok(());
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("{method} {t} {status}: documented as JSON, body does not parse: {e}")
    })?;
    fits(&value, schema, "$").map_err(|e| format!("{method} {t} {status}: {e}"))
}

fn resolve(schema: &Value) -> &Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or_default();
            resolve(&doc()["components"]["schemas"][name])
        }
        None => schema,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn fits(v: &Value, schema: &Value, at: &str) -> Result<(), String> {
    let s = resolve(schema);
    if let Some(all) = s["allOf"].as_array() {
        for sub in all {
            fits(v, sub, at)?;
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(any) = s[key].as_array() {
            let ok = any.iter().filter(|sub| fits(v, sub, at).is_ok()).count();
            let good = if key == "oneOf" { ok == 1 } else { ok >= 1 };
            if !good {
                return Err(format!("{at}: {v} fits {ok} of the {key} schemas"));
            }
        }
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let actual = type_name(v);
    if !types.is_empty()
        && !types
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"))
    {
        return Err(format!("{at}: {actual} where the document says {types:?}"));
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {e:?}"));
    }
    match v {
        Value::String(text)
            if s["format"] == "date-time"
                && time::OffsetDateTime::parse(
                    text,
                    &time::format_description::well_known::Rfc3339,
                )
                .is_err() =>
        {
            return Err(format!("{at}: {text:?} is not an RFC 3339 date-time"));
        }
        Value::Number(n) => {
            if let (Some(min), Some(x)) = (s["minimum"].as_f64(), n.as_f64())
                && x < min
            {
                return Err(format!("{at}: {x} is below the minimum {min}"));
            }
            if let (Some(max), Some(x)) = (s["maximum"].as_f64(), n.as_f64())
                && x > max
            {
                return Err(format!("{at}: {x} is above the maximum {max}"));
            }
        }
        Value::Array(items) if !s["items"].is_null() => {
            for (i, item) in items.iter().enumerate() {
                fits(item, &s["items"], &format!("{at}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            let props = s["properties"].as_object();
            if let Some(req) = s["required"].as_array() {
                for r in req.iter().filter_map(Value::as_str) {
                    if !map.contains_key(r) {
                        return Err(format!("{at}: required field {r:?} is missing"));
                    }
                }
            }
            for (k, val) in map {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => fits(val, sub, &format!("{at}.{k}"))?,
                    None => match &s["additionalProperties"] {
                        Value::Bool(false) => {
                            return Err(format!("{at}: field {k:?} is not in the document"));
                        }
                        Value::Object(_) => {
                            fits(val, &s["additionalProperties"], &format!("{at}.{k}"))?
                        }
                        _ if props.is_some() => {
                            return Err(format!("{at}: field {k:?} is not in the document"));
                        }
                        _ => {}
                    },
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[test]
fn the_checker_refuses_what_the_document_does_not_say() {
    // A gate view with `scanned_at` as time's default serde form (an
    // array of numbers), as the server once sent it.
    let gate = serde_json::json!({
        "release": "fw@1", "state": "pass", "scanned_at": [2026, 341, 10, 0, 0, 0, 0, 0, 0],
        "files_scanned": 1
    });
    let e = check(
        "GET",
        "/api/v1/releases/fw@1/gate",
        200,
        gate.to_string().as_bytes(),
    )
    .unwrap_err();
    assert!(e.contains("scanned_at"), "{e}");
    let e = check("GET", "/api/v1/whoami", 418, b"").unwrap_err();
    assert!(e.contains("418 is not documented"), "{e}");
    let e = check(
        "POST",
        "/api/v1/webhooks",
        400,
        br#"{"error":{"code":7,"message":"x"}}"#,
    )
    .unwrap_err();
    assert!(e.contains("code"), "{e}");
    assert_eq!(
        check(
            "POST",
            "/api/v1/webhooks",
            400,
            br#"{"error":{"code":"invalid_fields","message":"x"}}"#
        ),
        Ok(())
    );
    assert_eq!(
        template("/api/v1/audit/log/tile/0/x001/000.p/3"),
        Some("/api/v1/audit/log/{path}")
    );
    assert_eq!(
        template("/api/v1/devices/abc/tags?x=1"),
        Some("/api/v1/devices/{id}/tags")
    );
    assert_eq!(
        template("/api/v1/audit/log/checkpoint"),
        Some("/api/v1/audit/log/checkpoint")
    );
}
