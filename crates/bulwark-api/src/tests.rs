//! The closed vocabularies keep their words on the wire and in the schema,
//! and the field rules written into the schemas are the shared ones.

use serde_json::{Value, json};
use utoipa::{IntoParams, PartialSchema};

use crate::words::{
    DEVICE_ID_PATTERN, LINE_PATTERN, NAME_PATTERN, REASON_PATTERN, REFERENCE_PATTERN,
    SHA256_PATTERN, VERSION_PATTERN,
};
use crate::*;

fn schema<T: PartialSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap()
}

fn params<T: IntoParams>() -> Value {
    serde_json::to_value(T::into_params(|| None)).unwrap()
}

/// Each word serializes as itself, reads back, is listed in the schema,
/// and nothing else is read.
fn check_words<T>(words: &[&str], all: &[T])
where
    T: serde::Serialize
        + serde::de::DeserializeOwned
        + std::str::FromStr<Err = UnknownValue>
        + std::fmt::Display
        + PartialSchema
        + PartialEq
        + std::fmt::Debug
        + Copy,
{
    assert_eq!(words.len(), all.len());
    for (word, value) in words.iter().zip(all) {
        assert_eq!(serde_json::to_value(value).unwrap(), json!(word));
        assert_eq!(
            serde_json::from_value::<T>(json!(word)).unwrap(),
            *value,
            "{word}"
        );
        assert_eq!(word.parse::<T>().unwrap(), *value);
        assert_eq!(value.to_string(), *word);
    }
    assert!(serde_json::from_value::<T>(json!("no-such-word")).is_err());
    let err = "no-such-word".parse::<T>().unwrap_err();
    assert!(err.to_string().contains("must be one of"), "{err}");
    assert_eq!(schema::<T>()["enum"], json!(words));
}

#[test]
fn enums_keep_the_words_the_server_sends() {
    check_words(
        &["admin", "operator", "release-manager", "security", "viewer"],
        Role::ALL,
    );
    check_words(&["active", "revoked"], DeviceStatus::ALL);
    check_words(bulwark_proto::UPDATE_PHASES, UpdatePhase::ALL);
    check_words(&["scanning", "pass", "block"], GateState::ALL);
    check_words(
        &["extracted", "uploaded", "uploaded+extracted"],
        SbomSource::ALL,
    );
    check_words(&["cyclonedx", "spdx"], SbomFormat::ALL);
    check_words(&["vulnerability"], AlertKind::ALL);
    check_words(
        &[
            "rule",
            "zscore",
            "novelty",
            "fanout",
            "peer-outlier",
            "rarity",
            "scan",
            "flood",
            "c2",
            "bruteforce",
        ],
        DetectionKind::ALL,
    );
    check_words(&["low", "medium", "high", "critical"], Severity::ALL);
    check_words(&["quarantine"], AlertAction::ALL);
    check_words(&["detection", "vulnerability"], EventKind::ALL);
    check_words(&["pending", "delivered", "failed"], DeliveryState::ALL);
    check_words(&["file", "ab", "script"], Installer::ALL);
    check_words(&["unsigned", "published"], ReleaseStatus::ALL);
}

#[test]
fn display_pads_like_a_string() {
    assert_eq!(format!("{:<10}|", Role::Admin), "admin     |");
    assert_eq!(format!("{:>8}", Severity::High), "    high");
}

#[test]
fn an_unknown_role_is_refused_with_the_field_named() {
    let err = serde_json::from_str::<CreateAccount>(r#"{"name":"eve","role":"root"}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant `root`"), "{err}");
    let err = "wizard".parse::<Role>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "role: must be one of admin, operator, release-manager, security, viewer (not \"wizard\")"
    );
}

#[test]
fn schema_patterns_are_the_shared_field_rules() {
    let cases: &[(Value, &str, &str)] = &[
        (schema::<CreateAccount>(), "name", NAME_PATTERN),
        (schema::<CreateToken>(), "label", LINE_PATTERN),
        (schema::<CreateEnrollToken>(), "group", NAME_PATTERN),
        (schema::<CreateEnrollToken>(), "environment", NAME_PATTERN),
        (schema::<RevokeDevice>(), "reason", REASON_PATTERN),
        (schema::<QuarantineDevice>(), "reason", REASON_PATTERN),
        (schema::<CreateWaiver>(), "finding", LINE_PATTERN),
        (schema::<CreateWaiver>(), "reason", LINE_PATTERN),
        (schema::<CreateRelease>(), "name", NAME_PATTERN),
        (schema::<CreateRelease>(), "version", VERSION_PATTERN),
        (schema::<CreateRelease>(), "sha256", SHA256_PATTERN),
        (schema::<CreateRelease>(), "sbom_sha256", SHA256_PATTERN),
        (schema::<PromoteRelease>(), "environment", NAME_PATTERN),
        (schema::<CreateDeployment>(), "release", REFERENCE_PATTERN),
        (schema::<CreateDeployment>(), "group", NAME_PATTERN),
        (schema::<CreateDeployment>(), "environment", NAME_PATTERN),
    ];
    for (schema, field, pattern) in cases {
        let property = &schema["properties"][field];
        // An optional field's schema may be wrapped (`oneOf` with null).
        let found = property["pattern"].as_str().or_else(|| {
            property["oneOf"]
                .as_array()?
                .iter()
                .find_map(|s| s["pattern"].as_str())
        });
        assert_eq!(found, Some(*pattern), "{field}: {property}");
    }
    let tags = &schema::<TagDevice>()["properties"]["tags"];
    assert_eq!(
        tags["propertyNames"]["pattern"],
        json!(NAME_PATTERN),
        "{tags}"
    );
    assert_eq!(tags["maxProperties"], json!(64), "{tags}");
    assert_eq!(tags["minProperties"], json!(1), "{tags}");
    let device_after = params::<DeviceQuery>();
    let after = device_after
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "after")
        .unwrap();
    assert_eq!(after["schema"]["pattern"], json!(DEVICE_ID_PATTERN));
}

#[test]
fn stored_integers_have_a_signed_64_bit_ceiling() {
    for (params, name) in [
        (params::<AuditQuery>(), "start"),
        (params::<ProofQuery>(), "from"),
        (params::<ProofQuery>(), "size"),
    ] {
        let p = params
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone();
        assert_eq!(
            p["schema"]["maximum"].as_u64(),
            Some(crate::words::MAX_STORED_INT),
            "{name}: {p}"
        );
    }
}
