//! The release gate through the API: a published release that a newly
//! imported advisory hits is blocked from promotion and deployment, raises
//! one alert, is listed by `affected`, and passes again with a waiver; a
//! release carrying a private key cannot be signed; and only the security
//! role may waive.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::common;

struct Api {
    router: axum::Router,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        token: &str,
        body: Option<Vec<u8>>,
        json_body: bool,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            req = req.header(
                "content-type",
                if json_body {
                    "application/json"
                } else {
                    "application/octet-stream"
                },
            );
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(!status.is_server_error(), "{method} {uri}: {status} {v}");
        (status, v)
    }

    async fn json(&self, method: &str, uri: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            method,
            uri,
            token,
            Some(body.to_string().into_bytes()),
            true,
        )
        .await
    }

    async fn raw(&self, uri: &str, token: &str, body: Vec<u8>) -> (StatusCode, Value) {
        self.call("POST", uri, token, Some(body), false).await
    }

    async fn get(&self, uri: &str, token: &str) -> Value {
        let (s, v) = self.call("GET", uri, token, None, false).await;
        assert_eq!(s, StatusCode::OK, "GET {uri}: {v}");
        v
    }

    async fn gate(&self, reference: &str, token: &str) -> Value {
        for _ in 0..1000 {
            let g = self
                .get(&format!("/api/v1/releases/{reference}/gate"), token)
                .await;
            if g["state"] != "scanning" {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{reference}: no verdict");
    }
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(b))
}

/// A gzipped root filesystem holding the given files.
fn rootfs(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    tar.into_inner().unwrap()
}

const DIST_INFO: &[u8] = b"Metadata-Version: 2.1\nName: demo-lib\nVersion: 1.0\n";
const ADVISORY: &str = r#"{"schema_version": "1.6.0", "id": "PYSEC-0000-7", "aliases": ["CVE-0000-7777"],
  "modified": "2026-01-01T00:00:00Z", "summary": "demo-lib runs what it reads",
  "database_specific": {"severity": "CRITICAL"},
  "affected": [{"package": {"ecosystem": "PyPI", "name": "Demo_Lib"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]}"#;

#[tokio::test]
async fn advisories_block_promotion_raise_alerts_and_waivers_let_through() {
    let fx = common::fixture().await;
    let admin = fx.vars["admin"].clone();
    let security = fx.vars["security"].clone();
    let operator = fx.vars["operator"].clone();
    let api = Api {
        router: bulwark_server::api::router(fx.state.clone(), 8 << 20, Duration::from_secs(10)),
    };
    // Image root: one root key, one targets key (threshold 1).
    let root_key = bulwark_tuf::SigningKey::generate_ed25519().unwrap().0;
    let targets_key = bulwark_tuf::SigningKey::generate_ed25519().unwrap().0;
    let online = fx.state.updates().image_online_key().clone();
    let mut root = bulwark_tuf::Root::new(common::T0 + time::Duration::days(365));
    root.add_key("root", root_key.public().clone());
    root.add_key("targets", targets_key.public().clone());
    root.add_key("snapshot", online.clone());
    root.add_key("timestamp", online);
    let mut root = bulwark_tuf::Metadata::new(root);
    root.sign(&root_key).unwrap();
    let (s, v) = api
        .call(
            "POST",
            "/api/v1/repo/root",
            &admin,
            Some(root.to_vec().unwrap()),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // A clean release: published and in dev.
    let fw = rootfs(&[(
        "usr/lib/python3/site-packages/demo_lib-1.0.dist-info/METADATA",
        DIST_INFO,
    )]);
    api.raw("/api/v1/blobs", &admin, fw.clone()).await;
    let (s, v) = api
        .json(
            "POST",
            "/api/v1/releases",
            &admin,
            json!({"name": "fw", "version": "1.0", "sha256": sha256(&fw), "installer": "ab"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let g = api.gate("fw@1.0", &admin).await;
    assert_eq!(g["state"], "pass", "{g}");
    assert_eq!(g["components"], 1);
    // No advisories yet: the verdict says so (a warning, by default).
    assert_eq!(g["verdict"]["advisories"]["count"], 0, "{g}");
    assert_eq!(
        g["verdict"]["warnings"][0]["code"], "advisories_empty",
        "{g}"
    );
    let signing = api.get("/api/v1/releases/fw@1.0/signing", &admin).await;
    let signed = signing["signed_canonical"].as_str().unwrap();
    let sig = targets_key.sign(signed.as_bytes()).unwrap();
    let (s, v) = api
        .json(
            "POST",
            "/api/v1/releases/fw@1.0/signatures",
            &admin,
            json!({"keyid": targets_key.key_id().to_string(), "sig": hex::encode(sig)}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // An advisory arrives: the release is hit, one alert is raised, and the
    // answer to "which releases does it hit" is immediate.
    let (s, v) = api
        .raw(
            "/api/v1/advisories?source=demo.json",
            &operator,
            ADVISORY.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "operators may not import advisories: {v}"
    );
    let (s, v) = api
        .raw(
            "/api/v1/advisories?source=demo.json",
            &security,
            ADVISORY.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verdicts_changed"], 1, "{v}");
    // The import dates the database with the server's clock.
    let db = api.get("/api/v1/advisories", &admin).await;
    assert_eq!(
        (&db["count"], &db["updated_at"]),
        (&json!(1), &json!("2026-11-23T12:00:00Z")),
        "{db}"
    );
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["alerts"][0]["subject"], "release:fw@1.0");
    let (_, again) = api
        .raw(
            "/api/v1/advisories?source=demo.json",
            &security,
            ADVISORY.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(
        again["alerts"].as_array().unwrap().len(),
        0,
        "no second alert: {again}"
    );
    let hit = api
        .get("/api/v1/advisories/CVE-0000-7777/affected", &admin)
        .await;
    assert_eq!(
        hit["releases"]["fw@1.0"][0], "pkg:pypi/demo-lib@1.0",
        "{hit}"
    );
    assert_eq!(
        api.get("/api/v1/alerts", &admin).await["alerts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Blocked: promotion and deployment are refused with the reason.
    let g = api.gate("fw@1.0", &admin).await;
    assert_eq!(g["state"], "block", "{g}");
    assert_eq!(g["verdict"]["advisories"]["age_seconds"], 0, "{g}");
    assert_eq!(g["verdict"]["warnings"], json!([]), "{g}");
    let (s, v) = api
        .json(
            "POST",
            "/api/v1/releases/fw@1.0/promote",
            &admin,
            json!({"environment": "staging"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("gate_blocked")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("PYSEC-0000-7"),
        "{v}"
    );
    let (s, v) = api
        .json(
            "POST",
            "/api/v1/deployments",
            &admin,
            json!({"release": "fw@1.0", "group": "lobby", "environment": "dev"}),
        )
        .await;
    assert_eq!(v["error"]["code"], "gate_blocked", "{s} {v}");

    // A waiver (security only; validated) lets it through.
    let waiver = json!({"finding": "CVE-0000-7777", "release": "fw@1.0", "reason": "the parser is not reachable",
        "expires_at": "2027-01-01T00:00:00Z"});
    let (s, _) = api
        .json("POST", "/api/v1/waivers", &operator, waiver.clone())
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut expired = waiver.clone();
    expired["expires_at"] = json!("2020-01-01T00:00:00Z");
    let (s, v) = api
        .json("POST", "/api/v1/waivers", &security, expired)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, w) = api.json("POST", "/api/v1/waivers", &security, waiver).await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    let g = api.gate("fw@1.0", &admin).await;
    assert_eq!(g["state"], "pass", "{g}");
    assert_eq!(g["verdict"]["waived"][0]["waiver"], w["id"]);
    let (s, v) = api
        .json(
            "POST",
            "/api/v1/releases/fw@1.0/promote",
            &admin,
            json!({"environment": "staging"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Time passes: the waiver expires and the gate closes again.
    fx.clock.advance(time::Duration::days(60));
    let (s, v) = api
        .json(
            "POST",
            "/api/v1/releases/fw@1.0/promote",
            &admin,
            json!({"environment": "production"}),
        )
        .await;
    assert_eq!(v["error"]["code"], "gate_blocked", "{s} {v}");
    // …and the advisories are 60 days old: a warning (the default policy).
    let g = api.gate("fw@1.0", &admin).await;
    assert_eq!(
        g["verdict"]["advisories"]["age_seconds"],
        60 * 86_400,
        "{g}"
    );
    assert_eq!(
        g["verdict"]["warnings"][0]["code"], "advisories_stale",
        "{g}"
    );

    // The SBOM exports in both formats.
    let cdx = api
        .get("/api/v1/releases/fw@1.0/sbom?format=cyclonedx", &admin)
        .await;
    assert_eq!(cdx["specVersion"], "1.6");
    let spdx = api
        .get("/api/v1/releases/fw@1.0/sbom?format=spdx", &admin)
        .await;
    assert_eq!(spdx["spdxVersion"], "SPDX-2.3");
    let (s, _) = api
        .call(
            "GET",
            "/api/v1/releases/fw@1.0/sbom?format=xml",
            &admin,
            None,
            false,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_release_with_a_private_key_cannot_be_signed_and_hostile_input_is_refused() {
    let fx = common::fixture().await;
    let admin = fx.vars["admin"].clone();
    let api = Api {
        router: bulwark_server::api::router(fx.state.clone(), 8 << 20, Duration::from_secs(10)),
    };
    // A fresh, unencrypted PKCS#8 key, the way a build leaks one.
    let key = rcgen::KeyPair::generate()
        .unwrap()
        .serialize_pem()
        .into_bytes();
    let fw = rootfs(&[
        (
            "usr/lib/python3/site-packages/demo_lib-1.0.dist-info/METADATA",
            DIST_INFO,
        ),
        ("etc/ssl/private/device.key", &key),
    ]);
    api.raw("/api/v1/blobs", &admin, fw.clone()).await;
    api.json(
        "POST",
        "/api/v1/releases",
        &admin,
        json!({"name": "fw", "version": "2.0", "sha256": sha256(&fw), "installer": "ab"}),
    )
    .await;
    let g = api.gate("fw@2.0", &admin).await;
    assert_eq!(g["state"], "block", "{g}");
    assert_eq!(g["verdict"]["reasons"][0]["code"], "private_key", "{g}");
    let (s, v) = api
        .json(
            "POST",
            "/api/v1/releases/fw@2.0/signatures",
            &admin,
            json!({"keyid": "ab".repeat(32), "sig": "00"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("gate_blocked")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("etc/ssl/private/device.key"),
        "{v}"
    );

    // Garbage is blocked as unreadable, not lost and not a 500.
    let junk = b"\x1f\x8b\x08\x00garbage that is not gzip".to_vec();
    api.raw("/api/v1/blobs", &admin, junk.clone()).await;
    api.json(
        "POST",
        "/api/v1/releases",
        &admin,
        json!({"name": "fw", "version": "3.0", "sha256": sha256(&junk), "installer": "ab"}),
    )
    .await;
    let g = api.gate("fw@3.0", &admin).await;
    assert_eq!(g["state"], "block", "{g}");
    assert!(
        g["verdict"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "unreadable"),
        "{g}"
    );

    // A bad SBOM is refused before the release exists.
    let bad = br#"{"bomFormat": "CycloneDX", "specVersion": "1.4", "components": []}"#.to_vec();
    api.raw("/api/v1/blobs", &admin, bad.clone()).await;
    let (s, v) = api
        .json("POST", "/api/v1/releases", &admin,
            json!({"name": "fw", "version": "4.0", "sha256": sha256(&fw), "installer": "ab", "sbom_sha256": sha256(&bad)}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(fx.store.release("fw", "4.0").await.unwrap().is_none());
    // A bad advisory archive changes nothing.
    let (s, v) = api
        .raw(
            "/api/v1/advisories",
            &admin,
            b"\x1f\x8b\x08\x00broken".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = api
        .json(
            "PUT",
            "/api/v1/gate/policy",
            &admin,
            json!({"block_severity": "apocalyptic"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}
