//! One conformance suite, run against every backend.
//!
//! Each case is an `async fn(Arc<dyn Store>)`; the `backends!` macro turns
//! every case into one test per backend. SQLite runs on a temp file (WAL,
//! as in production); PostgreSQL runs on a throwaway server started by
//! `bulwark-testpg` (one per test binary, a fresh database per case).

use std::sync::{Arc, OnceLock};

use bulwark_proto::DeviceId;
use bulwark_store::{
    CheckinUpdate, DeviceFilter, DeviceStatus, Error, NewAccount, NewApiToken, NewDevice,
    NewEnrollToken, Role, Store,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

fn did(n: u128) -> DeviceId {
    DeviceId::from_uuid(uuid::Uuid::from_u128(n))
}

fn new_device(n: u128) -> NewDevice {
    NewDevice {
        id: did(n),
        hostname: Some(format!("host-{n}")),
        cert_serial: format!("{n:032x}"),
        cert_not_after: T0 + Duration::days(365),
    }
}

async fn enroll_token(store: &dyn Store, id: &str, expires: OffsetDateTime) {
    store
        .insert_enroll_token(
            NewEnrollToken {
                id: id.into(),
                secret_hash: vec![7; 32],
                group: "lobby-sensors".into(),
                environment: "staging".into(),
                created_by: "acct".into(),
                expires_at: expires,
            },
            T0,
        )
        .await
        .unwrap();
}

async fn accounts_are_unique_by_name(store: Arc<dyn Store>) {
    let a = store
        .create_account(
            NewAccount {
                name: "ana".into(),
                role: Role::Admin,
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(a.role, Role::Admin);
    assert_eq!(a.created_at, T0);
    let err = store
        .create_account(
            NewAccount {
                name: "ana".into(),
                role: Role::Viewer,
            },
            T0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    store
        .create_account(
            NewAccount {
                name: "ben".into(),
                role: Role::ReleaseManager,
            },
            T0,
        )
        .await
        .unwrap();
    let names: Vec<_> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.name, a.role))
        .collect();
    assert_eq!(
        names,
        vec![
            ("ana".into(), Role::Admin),
            ("ben".into(), Role::ReleaseManager)
        ]
    );
    assert_eq!(
        store.account_by_name("ben").await.unwrap().unwrap().role,
        Role::ReleaseManager
    );
    assert!(store.account_by_name("nobody").await.unwrap().is_none());
}

async fn api_tokens_store_hashes_and_revoke_once(store: Arc<dyn Store>) {
    let acct = store
        .create_account(
            NewAccount {
                name: "ops".into(),
                role: Role::Operator,
            },
            T0,
        )
        .await
        .unwrap();
    let tok = store
        .insert_api_token(
            NewApiToken {
                id: "0123456789abcdef".into(),
                account_id: acct.id.clone(),
                label: "ci".into(),
                secret_hash: vec![1; 32],
                expires_at: Some(T0 + Duration::hours(1)),
            },
            T0,
        )
        .await
        .unwrap();
    assert_eq!(tok.secret_hash, vec![1; 32]);
    let (found, owner) = store.api_token("0123456789abcdef").await.unwrap().unwrap();
    assert_eq!(found, tok);
    assert_eq!(owner, acct);
    let dup = NewApiToken {
        id: "0123456789abcdef".into(),
        account_id: acct.id.clone(),
        label: "again".into(),
        secret_hash: vec![2; 32],
        expires_at: None,
    };
    assert!(matches!(
        store.insert_api_token(dup, T0).await,
        Err(Error::Conflict { .. })
    ));
    assert!(
        store
            .revoke_api_token("0123456789abcdef", T0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_api_token("0123456789abcdef", T0)
            .await
            .unwrap(),
        "second revoke is a no-op"
    );
    assert!(
        !store
            .revoke_api_token("ffffffffffffffff", T0)
            .await
            .unwrap()
    );
    let listed = store.list_api_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(T0));
    assert!(store.api_token("ffffffffffffffff").await.unwrap().is_none());
}

async fn enrollment_consumes_token_exactly_once(store: Arc<dyn Store>) {
    enroll_token(&*store, "aaaaaaaaaaaaaaaa", T0 + Duration::hours(1)).await;
    let dev = store
        .enroll_device("aaaaaaaaaaaaaaaa", new_device(1), T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dev.group, "lobby-sensors");
    assert_eq!(dev.environment, "staging");
    assert_eq!(dev.status, DeviceStatus::Active);
    assert_eq!(dev.enrolled_at, T0);
    assert!(dev.tags.is_empty());
    // Reuse is refused, and the second device is not created.
    assert!(
        store
            .enroll_device("aaaaaaaaaaaaaaaa", new_device(2), T0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.device(did(2)).await.unwrap().is_none());
    let rec = store
        .enroll_token("aaaaaaaaaaaaaaaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.used_at, Some(T0));
    assert_eq!(rec.device_id, Some(did(1)));
    // Unknown token.
    assert!(
        store
            .enroll_device("bbbbbbbbbbbbbbbb", new_device(3), T0)
            .await
            .unwrap()
            .is_none()
    );
}

async fn expired_enrollment_token_is_refused(store: Arc<dyn Store>) {
    enroll_token(&*store, "cccccccccccccccc", T0 + Duration::minutes(5)).await;
    let at_expiry = T0 + Duration::minutes(5);
    assert!(
        store
            .enroll_device("cccccccccccccccc", new_device(1), at_expiry)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .enroll_token("cccccccccccccccc")
            .await
            .unwrap()
            .unwrap()
            .used_at,
        None
    );
    assert!(
        store
            .enroll_device("cccccccccccccccc", new_device(1), T0)
            .await
            .unwrap()
            .is_some()
    );
}

async fn concurrent_enrollments_with_one_token_create_one_device(store: Arc<dyn Store>) {
    enroll_token(&*store, "dddddddddddddddd", T0 + Duration::hours(1)).await;
    let mut tasks = Vec::new();
    for n in 0..8u128 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.enroll_device("dddddddddddddddd", new_device(100 + n), T0)
                .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(_)) => created += 1,
            Ok(None) => {}
            // SQLite may report the losing writer as busy; it must not have created a device.
            Err(Error::Database(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(store.count_devices().await.unwrap(), 1);
}

async fn devices_list_filter_tag_and_revoke(store: Arc<dyn Store>) {
    let batch: Vec<_> = (1..=30).map(new_device).collect();
    store
        .insert_devices(&batch[..20], "g1", "staging", T0)
        .await
        .unwrap();
    store
        .insert_devices(&batch[20..], "g2", "production", T0)
        .await
        .unwrap();
    assert_eq!(store.count_devices().await.unwrap(), 30);
    let dup = store
        .insert_devices(&batch[..1], "g1", "staging", T0)
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::Conflict { .. }), "{dup}");

    let page = |after, limit| DeviceFilter {
        after,
        limit,
        ..Default::default()
    };
    let first = store.list_devices(&page(None, 7)).await.unwrap();
    assert_eq!(
        first.iter().map(|d| d.id).collect::<Vec<_>>(),
        (1..=7).map(did).collect::<Vec<_>>()
    );
    let next = store.list_devices(&page(Some(did(7)), 100)).await.unwrap();
    assert_eq!(next.len(), 23);
    let prod = store
        .list_devices(&DeviceFilter {
            environment: Some("production".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(prod.len(), 10);
    let g1 = store
        .list_devices(&DeviceFilter {
            group: Some("g1".into()),
            environment: Some("staging".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(g1.len(), 20);

    let tagged = store
        .tag_device(
            did(3),
            &[
                ("site".into(), "berlin".into()),
                ("floor".into(), "2".into()),
            ],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tagged.tags.get("site").map(String::as_str), Some("berlin"));
    let untagged = store
        .tag_device(did(3), &[("floor".into(), String::new())])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        untagged.tags.into_iter().collect::<Vec<_>>(),
        vec![("site".into(), "berlin".into())]
    );
    assert!(store.tag_device(did(999), &[]).await.unwrap().is_none());

    let revoked = store
        .revoke_device(did(4), "stolen", T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.status, DeviceStatus::Revoked);
    let again = store
        .revoke_device(did(4), "other reason", T0 + Duration::hours(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.revoked_reason.as_deref(),
        Some("stolen"),
        "first revocation stands"
    );
    assert_eq!(again.revoked_at, Some(T0));
    assert_eq!(
        store.revoked_serials().await.unwrap(),
        vec![format!("{:032x}", 4)]
    );
    assert!(
        store
            .revoke_device(did(999), "x", T0)
            .await
            .unwrap()
            .is_none()
    );
}

async fn checkins_and_inventory(store: Arc<dyn Store>) {
    store
        .insert_devices(&[new_device(1), new_device(2)], "g", "dev", T0)
        .await
        .unwrap();
    let later = T0 + Duration::seconds(90);
    let update = |n, at, v: &str| CheckinUpdate {
        id: did(n),
        at,
        agent_version: v.into(),
        boot_id: Some("b".into()),
    };
    store
        .record_checkins(&[update(1, later, "0.2"), update(2, T0, "0.1")])
        .await
        .unwrap();
    // An older check-in never moves last_seen backwards.
    store
        .record_checkins(&[update(1, T0, "0.1")])
        .await
        .unwrap();
    let d1 = store.device(did(1)).await.unwrap().unwrap();
    assert_eq!(d1.last_seen, Some(later));
    assert_eq!(d1.agent_version.as_deref(), Some("0.2"));
    assert_eq!(d1.inventory_digest, None);
    // Unknown devices in a batch are ignored, not an error.
    store.record_checkins(&[update(77, T0, "x")]).await.unwrap();

    store
        .put_inventory(did(1), "aa", r#"{"arch":"x86_64"}"#, T0)
        .await
        .unwrap();
    store
        .put_inventory(did(1), "bb", r#"{"arch":"aarch64"}"#, later)
        .await
        .unwrap();
    let inv = store.inventory(did(1)).await.unwrap().unwrap();
    assert_eq!(
        (inv.digest.as_str(), inv.json.as_str(), inv.updated_at),
        ("bb", r#"{"arch":"aarch64"}"#, later)
    );
    assert_eq!(
        store
            .device(did(1))
            .await
            .unwrap()
            .unwrap()
            .inventory_digest
            .as_deref(),
        Some("bb")
    );
    assert!(store.inventory(did(2)).await.unwrap().is_none());
    // Inventory for a device that does not exist violates the foreign key.
    assert!(store.put_inventory(did(99), "cc", "{}", T0).await.is_err());
}

async fn timestamps_round_trip_to_the_millisecond(store: Arc<dyn Store>) {
    let t = datetime!(2031-02-03 04:05:06.789 UTC);
    let a = store
        .create_account(
            NewAccount {
                name: "t".into(),
                role: Role::Security,
            },
            t,
        )
        .await
        .unwrap();
    assert_eq!(a.created_at, t);
}

// ---- backends --------------------------------------------------------------

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bulwark.db").display());
    (bulwark_store::open(&url).await.unwrap(), dir)
}

fn pg_server() -> &'static bulwark_testpg::TempPostgres {
    static PG: OnceLock<bulwark_testpg::TempPostgres> = OnceLock::new();
    PG.get_or_init(|| bulwark_testpg::TempPostgres::start().unwrap_or_else(|e| panic!("{e}")))
}

async fn postgres(case: &str) -> Arc<dyn Store> {
    let url = pg_server().create_database(case).unwrap();
    bulwark_store::open(&url).await.unwrap()
}

macro_rules! backends {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    let (store, _dir) = super::sqlite().await;
                    assert_eq!(store.backend(), "sqlite");
                    super::$case(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let store = super::postgres(stringify!($case)).await;
                    assert_eq!(store.backend(), "postgres");
                    super::$case(store).await;
                }
            )*
        }
    };
}

backends!(
    accounts_are_unique_by_name,
    api_tokens_store_hashes_and_revoke_once,
    enrollment_consumes_token_exactly_once,
    expired_enrollment_token_is_refused,
    concurrent_enrollments_with_one_token_create_one_device,
    devices_list_filter_tag_and_revoke,
    checkins_and_inventory,
    timestamps_round_trip_to_the_millisecond,
);

#[tokio::test]
async fn unsupported_urls_are_refused() {
    assert!(matches!(
        bulwark_store::open("mysql://x").await,
        Err(Error::UnsupportedUrl)
    ));
}
