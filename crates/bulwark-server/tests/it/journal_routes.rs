//! Every mutating route journals exactly one entry, in the same request.
//!
//! The routes are enumerated from the OpenAPI document, so adding a
//! mutating route without a case here (and a journal entry in its store
//! call) fails this test.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use bulwark_pki::{DeviceKey, PeerIdentity};
use bulwark_proto::{CheckinRequest, Inventory, JournalEntry};
use bulwark_server::device::DeviceConn;
use http_body_util::BodyExt as _;
use serde_json::json;
use tower::ServiceExt as _;

struct Case {
    device_router: bool,
    method: &'static str,
    uri: String,
    body: String,
    auth: Option<String>,
    conn: Option<DeviceConn>,
    action: &'static str,
    /// A raw (non-JSON) body.
    raw: Option<Vec<u8>>,
}

#[tokio::test]
async fn every_mutating_route_journals_exactly_one_entry() {
    let fx = common::fixture().await;
    let admin = fx.vars["admin"].clone();
    let device = fx.vars["device"].clone();
    let inv = Inventory {
        arch: "aarch64".into(),
        ..Inventory::default()
    };
    let checkin = CheckinRequest {
        agent_version: "1".into(),
        boot_id: None,
        inventory_digest: inv.digest(),
        inventory: Some(inv),
    };
    let conn = DeviceConn {
        identity: Some(PeerIdentity {
            device_id: fx.device,
            serial_hex: "00aa".into(),
        }),
        peer: "127.0.0.1:40000".parse().unwrap(),
    };
    let csr = DeviceKey::generate().unwrap().csr_pem("d").unwrap();
    let case = |method, path: &str, body: serde_json::Value, action| Case {
        device_router: false,
        method,
        uri: path.to_owned(),
        body: if body.is_null() {
            String::new()
        } else {
            body.to_string()
        },
        auth: Some(admin.clone()),
        conn: None,
        action,
        raw: None,
    };
    let mut cases: BTreeMap<String, Case> = BTreeMap::new();
    let mut add = |key: &str, c: Case| {
        cases.insert(key.to_owned(), c);
    };
    add(
        "post /api/v1/accounts",
        case(
            "POST",
            "/api/v1/accounts",
            json!({"name":"ben","role":"viewer"}),
            "account.create",
        ),
    );
    add(
        "post /api/v1/tokens",
        case(
            "POST",
            "/api/v1/tokens",
            json!({"label":"ci"}),
            "token.create",
        ),
    );
    add(
        "delete /api/v1/tokens/{id}",
        case(
            "DELETE",
            &format!("/api/v1/tokens/{}", fx.vars["viewer-token-id"]),
            json!(null),
            "token.revoke",
        ),
    );
    add(
        "post /api/v1/enroll-tokens",
        case(
            "POST",
            "/api/v1/enroll-tokens",
            json!({"group":"g","environment":"dev"}),
            "enroll_token.create",
        ),
    );
    add(
        "post /api/v1/devices/{id}/tags",
        case(
            "POST",
            &format!("/api/v1/devices/{device}/tags"),
            json!({"tags":{"site":"x"}}),
            "device.tag",
        ),
    );
    add(
        "post /api/v1/devices/{id}/rename",
        case(
            "POST",
            &format!("/api/v1/devices/{device}/rename"),
            json!({"name":"renamed-1"}),
            "device.rename",
        ),
    );
    // Monitoring: a profile, and a quarantine then its release (keys run
    // in order: quarantine < release < revoke).
    add(
        "post /api/v1/profiles",
        case(
            "POST",
            "/api/v1/profiles",
            json!({"toml": "group = \"g\"\nversion = \"1\"\n[[behaviour]]\nname = \"telnet\"\nseverity = \"high\"\nmetric = \"listening_ports\"\noperator = \"in-set\"\nthreshold = [\"tcp/23\"]\n"}),
            "profile.apply",
        ),
    );
    add(
        "post /api/v1/webhooks",
        case(
            "POST",
            "/api/v1/webhooks",
            json!({"url": "https://hooks.example/bulwark", "secret": "0123456789abcdef0123"}),
            "webhook.add",
        ),
    );
    add(
        "delete /api/v1/webhooks/{id}",
        case(
            "DELETE",
            "/api/v1/webhooks/ID", // the id is filled in when it runs
            json!(null),
            "webhook.remove",
        ),
    );
    add(
        "post /api/v1/devices/{id}/quarantine",
        case(
            "POST",
            &format!("/api/v1/devices/{device}/quarantine"),
            json!({"reason":"scan"}),
            "device.quarantine",
        ),
    );
    add(
        "post /api/v1/devices/{id}/release",
        case(
            "POST",
            &format!("/api/v1/devices/{device}/release"),
            json!({"reason":"clean"}),
            "device.release",
        ),
    );
    add(
        "post /api/v1/devices/{id}/revoke",
        case(
            "POST",
            &format!("/api/v1/devices/{device}/revoke"),
            json!({"reason":"test"}),
            "device.revoke",
        ),
    );
    add(
        "post /api/v1/enroll",
        Case {
            device_router: true,
            auth: None,
            ..case(
                "POST",
                "/api/v1/enroll",
                json!({"token": fx.vars["enroll"], "csr_pem": csr}),
                "device.enroll",
            )
        },
    );
    add(
        "post /api/v1/device/checkin",
        Case {
            device_router: true,
            auth: None,
            conn: Some(conn.clone()),
            ..case(
                "POST",
                "/api/v1/device/checkin",
                serde_json::to_value(&checkin).unwrap(),
                "device.inventory",
            )
        },
    );

    // Signed updates: upload, root, release, signature, promotion,
    // deployment, a device report and garbage collection.
    let firmware = b"firmware image bytes".to_vec();
    let sha = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&firmware))
    };
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
    add(
        "post /api/v1/blobs",
        Case {
            raw: Some(firmware),
            ..case("POST", "/api/v1/blobs", json!(null), "blob.put")
        },
    );
    add(
        "post /api/v1/repo/root",
        Case {
            raw: Some(root.to_vec().unwrap()),
            ..case("POST", "/api/v1/repo/root", json!(null), "repo.init")
        },
    );
    add(
        "post /api/v1/releases",
        case(
            "POST",
            "/api/v1/releases",
            json!({"name": "fw", "version": "1.0", "sha256": sha, "installer": "ab"}),
            "release.create",
        ),
    );
    add(
        "post /api/v1/releases/{reference}/signatures",
        case(
            "POST",
            "/api/v1/releases/fw@1.0/signatures",
            json!(null), // filled in from the signing proposal when it runs
            "release.sign",
        ),
    );
    add(
        "post /api/v1/releases/{reference}/promote",
        case(
            "POST",
            "/api/v1/releases/fw@1.0/promote",
            json!({"environment": "staging"}),
            "release.promote",
        ),
    );
    add(
        "post /api/v1/deployments",
        case(
            "POST",
            "/api/v1/deployments",
            json!({"release": "fw@1.0", "group": "lobby", "environment": "staging"}),
            "deployment.create",
        ),
    );
    add(
        "post /api/v1/device/update-report",
        Case {
            device_router: true,
            auth: None,
            conn: Some(conn.clone()),
            ..case(
                "POST",
                "/api/v1/device/update-report",
                json!({"release": "fw@1.0", "phase": "refused", "outcome": "rollback", "detail": "timestamp version 1 < 2"}),
                "device.update",
            )
        },
    );
    add(
        "post /api/v1/blobs/gc",
        case("POST", "/api/v1/blobs/gc", json!(null), "blob.gc"),
    );

    // The release gate: policy, waivers, advisories. The policy drops the
    // SBOM requirement, so the bare firmware above may be signed.
    add(
        "put /api/v1/gate/policy",
        case(
            "PUT",
            "/api/v1/gate/policy",
            json!({"require_sbom": false}),
            "gate.policy",
        ),
    );
    add(
        "post /api/v1/waivers",
        case(
            "POST",
            "/api/v1/waivers",
            json!({"finding": "CVE-2024-0001", "release": "fw@*", "reason": "not reachable",
                "expires_at": "2099-01-01T00:00:00Z"}),
            "waiver.add",
        ),
    );
    add(
        "post /api/v1/waivers/{id}/revoke",
        case(
            "POST",
            "/api/v1/waivers/ID/revoke", // the id is filled in when it runs
            json!(null),
            "waiver.revoke",
        ),
    );
    add(
        "post /api/v1/advisories",
        Case {
            raw: Some(
                json!({"schema_version": "1.6.0", "id": "PYSEC-0000-1", "modified": "2026-01-01T00:00:00Z",
                    "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]}]})
                .to_string()
                .into_bytes(),
            ),
            ..case(
                "POST",
                "/api/v1/advisories?source=test.json",
                json!(null),
                "advisories.import",
            )
        },
    );

    // The cases cover exactly the mutating operations the API documents.
    let doc = serde_json::to_value(bulwark_server::api::openapi()).unwrap();
    let mut documented = Vec::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys().filter(|m| *m != "get") {
            documented.push(format!("{method} {path}"));
        }
    }
    documented.sort();
    assert_eq!(
        documented,
        cases.keys().cloned().collect::<Vec<_>>(),
        "every mutating route needs a journal case"
    );

    let api =
        bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let dev =
        bulwark_server::device::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    // Checkin and the update flow first (in dependency order), while the
    // device is not yet revoked.
    let first = [
        "post /api/v1/device/checkin",
        "post /api/v1/blobs",
        "post /api/v1/repo/root",
        "post /api/v1/releases",
        "put /api/v1/gate/policy",
        "post /api/v1/releases/{reference}/signatures",
        "post /api/v1/releases/{reference}/promote",
        "post /api/v1/deployments",
        "post /api/v1/device/update-report",
        "post /api/v1/blobs/gc",
        "post /api/v1/webhooks",
    ];
    let mut order: Vec<String> = first.iter().map(|k| (*k).to_owned()).collect();
    order.extend(
        cases
            .keys()
            .filter(|k| !first.contains(&k.as_str()))
            .cloned(),
    );
    for key in order {
        let mut c = cases.remove(&key).unwrap();
        if key.ends_with("/signatures") {
            // Offline signing: fetch the proposal, sign it here.
            let req = Request::builder()
                .uri("/api/v1/releases/fw@1.0/signing")
                .header("authorization", format!("Bearer {admin}"))
                .body(Body::empty())
                .unwrap();
            let resp = api.clone().oneshot(req).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let s: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let signed = s["signed_canonical"].as_str().unwrap();
            let sig = targets_key.sign(signed.as_bytes()).unwrap();
            c.body = json!({"keyid": targets_key.key_id().to_string(), "sig": hex::encode(sig)})
                .to_string();
        }
        if c.uri == "/api/v1/webhooks/ID" {
            let w = fx.store.webhooks().await.unwrap();
            c.uri = format!("/api/v1/webhooks/{}", w[0].id);
        }
        if key.ends_with("/revoke") && c.uri.contains("/waivers/") {
            let w = fx.store.waivers().await.unwrap();
            c.uri = format!("/api/v1/waivers/{}/revoke", w[0].id);
        }
        let before = fx.store.journal_root().await.unwrap().0;
        let mut req = Request::builder().method(c.method).uri(&c.uri);
        if let Some(t) = &c.auth {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if c.raw.is_some() {
            req = req.header("content-type", "application/octet-stream");
        } else if !c.body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let body = match &c.raw {
            Some(raw) => Body::from(raw.clone()),
            None => Body::from(c.body.clone()),
        };
        let mut req = req.body(body).unwrap();
        if let Some(conn) = &c.conn {
            req.extensions_mut().insert(conn.clone());
        }
        let router = if c.device_router {
            dev.clone()
        } else {
            api.clone()
        };
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let request_id = resp
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(
            status.is_success(),
            "{key}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        if let Err(e) = crate::conform::check(c.method, &c.uri, status.as_u16(), &body) {
            panic!("{key}: the response does not match the OpenAPI document: {e}");
        }
        let after = fx.store.journal_root().await.unwrap().0;
        assert_eq!(after, before + 1, "{key} must journal exactly one entry");
        if key == "post /api/v1/releases" {
            // The gate scans in the background and journals its verdict as
            // the server: wait for it, so it is not counted for the next.
            let rel = fx.store.release("fw", "1.0").await.unwrap().unwrap();
            let gate = &fx.state.updates().gate;
            for _ in 0..500 {
                if !gate.is_scanning(&rel.id) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(fx.store.release_scan(&rel.id).await.unwrap().is_some());
            let scan = fx.store.journal_root().await.unwrap().0;
            assert_eq!(scan, after + 1, "the scan journals one entry");
        }
        let row = fx
            .store
            .journal_entries(before, 1)
            .await
            .unwrap()
            .pop()
            .unwrap();
        let entry = JournalEntry::from_canonical(&row.entry).unwrap();
        assert_eq!(entry.action, c.action, "{key}");
        assert_eq!(
            entry.request_id.as_deref(),
            Some(request_id.as_str()),
            "{key}: journal names the request: {entry:?}"
        );
        if c.conn.is_some() {
            assert_eq!(
                entry.source.as_deref(),
                Some("127.0.0.1:40000"),
                "{key}: journal names the source address"
            );
        }
    }
}
