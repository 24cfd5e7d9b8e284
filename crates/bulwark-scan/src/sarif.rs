//! SARIF 2.1.0 output for code-scanning dashboards.

use bulwark_gate::{Findings, Severity, Verdict};
use serde_json::{Value, json};

use crate::ArtifactScan;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::None => "note",
    }
}

fn location(path: &str, line: Option<u64>) -> Value {
    let mut region = json!({});
    if let Some(l) = line {
        region = json!({ "startLine": l });
    }
    json!({ "physicalLocation": { "artifactLocation": { "uri": path }, "region": region } })
}

/// A SARIF 2.1.0 log of a scan: one result per vulnerability (located at
/// the file the component was found in), malware hit and secret, with the
/// verdict's status as a run property.
pub fn sarif(scan: &ArtifactScan, findings: &Findings, verdict: &Verdict) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut results: Vec<Value> = Vec::new();
    let mut rule = |id: String, text: String| {
        if !rules.iter().any(|r| r["id"] == id.as_str()) {
            rules.push(json!({ "id": id, "shortDescription": { "text": text } }));
        }
        id
    };
    for v in &findings.vulnerabilities {
        let found_in = scan
            .sbom
            .components
            .iter()
            .find(|c| c.purl == v.purl)
            .and_then(|c| c.found_in.clone())
            .unwrap_or_else(|| v.purl.clone());
        let id = rule(v.id.clone(), v.summary.clone());
        results.push(json!({
            "ruleId": id,
            "level": level(v.severity),
            "message": { "text": format!("{} affects {} ({}); fixed in: {}", v.id, v.purl, v.severity,
                if v.fixed.is_empty() { "unknown".to_owned() } else { v.fixed.join(", ") }) },
            "locations": [location(&found_in, None)],
            "properties": { "aliases": v.aliases, "known_exploited": v.known_exploited, "purl": v.purl },
        }));
    }
    for m in &findings.malware {
        let id = rule(m.key(), format!("YARA rule {}.{}", m.namespace, m.rule));
        results.push(json!({
            "ruleId": id,
            "level": "error",
            "message": { "text": format!("YARA rule {}.{} matched", m.namespace, m.rule) },
            "locations": [location(&m.path, None)],
        }));
    }
    for s in &findings.secrets {
        let id = rule(format!("secret/{}", s.kind), s.kind.clone());
        results.push(json!({
            "ruleId": id,
            "level": level(s.severity),
            "message": { "text": s.description },
            "locations": [location(&s.path, s.line)],
            "partialFingerprints": { "secret/sha256": s.fingerprint },
        }));
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": { "name": "bulwark", "informationUri": "https://example.invalid/bulwark",
                "version": env!("CARGO_PKG_VERSION"), "rules": rules } },
            "results": results,
            "properties": { "verdict": verdict.status, "reasons": verdict.reasons.len() },
        }],
    })
}
