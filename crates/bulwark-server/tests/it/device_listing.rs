//! `GET /api/v1/devices` answers questions (issue 19): each device's state
//! (revoked > quarantined > updating > rolled back > online/offline) and
//! installed release, filtered by state, release, name and search on the
//! server, paged; names are unique and renamed through the API.

use crate::common::{self, T0};

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use bulwark_proto::DeviceId;
use bulwark_store::{Audit, CheckinUpdate, NewDevice, UpdatePhase, UpdateStatus};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

fn id(n: u128) -> DeviceId {
    DeviceId::from_uuid(uuid::Uuid::from_u128(0x5000 + n))
}

async fn report(fx: &common::Fixture, n: u128, release: &str, phase: UpdatePhase) {
    fx.store
        .record_update(
            id(n),
            &UpdateStatus {
                release: release.into(),
                phase,
                outcome: None,
                detail: None,
                at: T0,
            },
            &Audit::system(T0),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn listing_shows_state_and_release_and_filters_them() {
    let fx = common::fixture().await;
    let app =
        bulwark_server::api::router(fx.state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let hosts = ["cam-1", "cam-2", "door-1", "door-2", "gw-1", "gw-2"];
    let new: Vec<NewDevice> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| NewDevice {
            id: id(i as u128),
            hostname: Some((*h).into()),
            cert_serial: format!("50{i:02}"),
            cert_not_after: T0 + time::Duration::days(1),
        })
        .collect();
    fx.store
        .insert_devices(&new, "cams", "production", &Audit::system(T0))
        .await
        .unwrap();
    // 0: online, fw@2 installed; 1: rolled back from fw@3 (fw@2 still
    // installed); 2: updating; 3: quarantined; 4: revoked; 5: never seen.
    let seen: Vec<CheckinUpdate> = (0..4)
        .map(|n| CheckinUpdate {
            id: id(n),
            at: T0,
            agent_version: "1.0".into(),
            boot_id: None,
        })
        .collect();
    fx.store.record_checkins(&seen).await.unwrap();
    report(&fx, 0, "fw@2", UpdatePhase::Installed).await;
    report(&fx, 1, "fw@2", UpdatePhase::Installed).await;
    report(&fx, 1, "fw@3", UpdatePhase::Downloading).await;
    report(&fx, 1, "fw@3", UpdatePhase::RolledBack).await;
    report(&fx, 2, "fw@3", UpdatePhase::Staging).await;
    fx.store
        .quarantine_device(id(3), "test", None, &Audit::system(T0))
        .await
        .unwrap();
    fx.store
        .revoke_device(id(4), "test", &Audit::system(T0))
        .await
        .unwrap();
    fx.store
        .tag_device(
            id(5),
            &[("site".into(), "Lab-North".into())],
            &Audit::system(T0),
        )
        .await
        .unwrap();

    let get = |query: &str| {
        let app = app.clone();
        let uri = format!("/api/v1/devices?group=cams&{query}");
        let token = fx.vars["viewer"].clone();
        async move {
            let req = Request::builder()
                .uri(&uri)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            crate::conform::check("GET", &uri, status, &bytes).unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let hosts_of = |v: &Value| -> Vec<String> {
        v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["hostname"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, all) = get("limit=100").await;
    assert_eq!(status, 200, "{all}");
    let states: Vec<(&str, &str, Value)> = all["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["hostname"].as_str().unwrap(),
                d["state"].as_str().unwrap(),
                d["release"].clone(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("cam-1", "online", Value::from("fw@2")),
            ("cam-2", "rolled_back", Value::from("fw@2")),
            ("door-1", "updating", Value::Null),
            ("door-2", "quarantined", Value::Null),
            ("gw-1", "revoked", Value::Null),
            ("gw-2", "offline", Value::Null),
        ]
    );

    let (_, v) = get("state=rolled_back").await;
    assert_eq!(hosts_of(&v), ["cam-2"]);
    let (_, v) = get("state=quarantined").await;
    assert_eq!(hosts_of(&v), ["door-2"]);
    let (_, v) = get("release=fw@2").await;
    assert_eq!(hosts_of(&v), ["cam-1", "cam-2"]);
    let (_, v) = get("release=fw").await;
    assert_eq!(hosts_of(&v), ["cam-1", "cam-2"]);
    let (_, v) = get("release=fw@3").await;
    assert!(hosts_of(&v).is_empty());
    let (_, v) = get("search=door").await;
    assert_eq!(hosts_of(&v), ["door-1", "door-2"]);
    let (_, v) = get("search=lab-north").await;
    assert_eq!(hosts_of(&v), ["gw-2"]);
    let (_, v) = get(&format!("search={}", &id(4).to_string()[..13])).await;
    assert!(hosts_of(&v).contains(&"gw-1".to_owned()), "{v}");

    // Filtered pages: full pages name where to go on, the last does not.
    let (_, p1) = get("search=-&limit=2").await;
    assert_eq!(hosts_of(&p1), ["cam-1", "cam-2"]);
    let next = p1["next_after"].as_str().unwrap().to_owned();
    let (_, p2) = get(&format!("search=-&limit=2&after={next}")).await;
    assert_eq!(hosts_of(&p2), ["door-1", "door-2"]);
    let next = p2["next_after"].as_str().unwrap().to_owned();
    let (_, p3) = get(&format!("search=-&limit=5&after={next}")).await;
    assert_eq!(hosts_of(&p3), ["gw-1", "gw-2"]);
    assert!(p3["next_after"].is_null());

    // Names: the hostname by default, found by name, renamed uniquely.
    let (_, v) = get("name=door-2").await;
    assert_eq!(hosts_of(&v), ["door-2"]);
    assert_eq!(v["devices"][0]["name"], "door-2");
    let rename = |id: DeviceId, body: &str| {
        let app = app.clone();
        let uri = format!("/api/v1/devices/{id}/rename");
        let token = fx.vars["operator"].clone();
        let body = body.to_owned();
        async move {
            let req = Request::builder()
                .method("POST")
                .uri(&uri)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.unwrap().to_bytes();
            crate::conform::check("POST", &uri, status, &bytes).unwrap();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (status, v) = rename(id(2), r#"{"name":"front-door"}"#).await;
    assert_eq!(
        (status, &v["name"]),
        (200, &Value::from("front-door")),
        "{v}"
    );
    let (_, v) = get("search=front").await;
    assert_eq!(hosts_of(&v), ["door-1"]);
    let (status, v) = rename(id(3), r#"{"name":"front-door"}"#).await;
    assert_eq!(
        (status, &v["error"]["code"]),
        (409, &Value::from("conflict")),
        "{v}"
    );
    for bad in [
        r#"{"name":"Front Door"}"#,
        &format!(r#"{{"name":"{}"}}"#, id(9)),
    ] {
        let (status, v) = rename(id(3), bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let (status, _) = rename(id(77), r#"{"name":"x"}"#).await;
    assert_eq!(status, 404);

    // Bad filters are 400s in the error shape.
    for bad in ["state=asleep", "search=", "release=", "name=Not%20A%20Name"] {
        let (status, v) = get(bad).await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"]["code"].is_string(), "{bad}: {v}");
    }
}
