//! One conformance suite, run against every backend.
//!
//! Each case is an `async fn(Arc<dyn Store>)`; the `backends!` macro turns
//! every case into one test per backend. SQLite runs on a temp file (WAL,
//! as in production); PostgreSQL runs on a throwaway server started by
//! `bulwark-testpg` (one per test binary, a fresh database per case).

use std::sync::{Arc, OnceLock};

use bulwark_proto::DeviceId;
use bulwark_store::{
    Audit, CheckinUpdate, DeviceFilter, DeviceStatus, Error, NewAccount, NewApiToken, NewDevice,
    NewEnrollToken, Role, Store,
};
use time::{Duration, OffsetDateTime, macros::datetime};

const T0: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);

fn at(t: OffsetDateTime) -> Audit {
    Audit::system(t)
}

fn test_entry(i: i64) -> bulwark_proto::JournalEntry {
    bulwark_proto::JournalEntry {
        time_ms: 1_795_000_000_000 + i,
        actor: bulwark_proto::JournalActor {
            kind: "engine".into(),
            id: "test".into(),
            name: None,
            token_id: None,
        },
        action: String::new(),
        target: format!("thing:{i}"),
        request_id: None,
        source: None,
        before: None,
        after: None,
        detail: Default::default(),
    }
}

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
    enroll_token_uses(store, id, expires, 1).await;
}

async fn enroll_token_uses(store: &dyn Store, id: &str, expires: OffsetDateTime, max_uses: u32) {
    let rec = store
        .insert_enroll_token(
            NewEnrollToken {
                id: id.into(),
                secret_hash: vec![7; 32],
                group: "lobby-sensors".into(),
                environment: "staging".into(),
                created_by: "acct".into(),
                expires_at: expires,
                max_uses,
            },
            &at(T0),
        )
        .await
        .unwrap();
    assert_eq!((rec.uses, rec.max_uses), (0, max_uses));
}

async fn accounts_are_unique_by_name(store: Arc<dyn Store>) {
    let a = store
        .create_account(
            NewAccount {
                name: "ana".into(),
                role: Role::Admin,
            },
            &at(T0),
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
            &at(T0),
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
            &at(T0),
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
            &at(T0),
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
            &at(T0),
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
        store.insert_api_token(dup, &at(T0)).await,
        Err(Error::Conflict { .. })
    ));
    assert!(
        store
            .revoke_api_token("0123456789abcdef", &at(T0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_api_token("0123456789abcdef", &at(T0))
            .await
            .unwrap(),
        "second revoke is a no-op"
    );
    assert!(
        !store
            .revoke_api_token("ffffffffffffffff", &at(T0))
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
        .enroll_device("aaaaaaaaaaaaaaaa", new_device(1), &at(T0))
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
            .enroll_device("aaaaaaaaaaaaaaaa", new_device(2), &at(T0))
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
    assert_eq!((rec.uses, rec.max_uses), (1, 1));
    // Unknown token.
    assert!(
        store
            .enroll_device("bbbbbbbbbbbbbbbb", new_device(3), &at(T0))
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
            .enroll_device("cccccccccccccccc", new_device(1), &at(at_expiry))
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
            .enroll_device("cccccccccccccccc", new_device(1), &at(T0))
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
            s.enroll_device("dddddddddddddddd", new_device(100 + n), &at(T0))
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

async fn multi_use_token_enrolls_exactly_max_uses_devices(store: Arc<dyn Store>) {
    enroll_token_uses(&*store, "eeeeeeeeeeeeeeee", T0 + Duration::hours(1), 3).await;
    for n in 1..=3u128 {
        let when = T0 + Duration::seconds(n as i64);
        let dev = store
            .enroll_device("eeeeeeeeeeeeeeee", new_device(n), &at(when))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(dev.group, "lobby-sensors");
        assert_eq!(dev.environment, "staging");
        let rec = store
            .enroll_token("eeeeeeeeeeeeeeee")
            .await
            .unwrap()
            .unwrap();
        // used_at and device_id record the last use.
        assert_eq!((rec.uses, rec.max_uses), (n as u32, 3));
        assert_eq!(rec.used_at, Some(when));
        assert_eq!(rec.device_id, Some(did(n)));
        let entry = last_entry(&*store).await;
        assert_eq!(entry.action, "device.enroll");
        assert_eq!(
            entry.detail.get("enroll_token_use").map(String::as_str),
            Some(format!("{n}/3").as_str())
        );
    }
    // The fourth is refused exactly as a used one-time token is: no device,
    // no journal entry, the count unchanged.
    let n = journal_size(&*store).await;
    assert!(
        store
            .enroll_device(
                "eeeeeeeeeeeeeeee",
                new_device(4),
                &at(T0 + Duration::seconds(4))
            )
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.device(did(4)).await.unwrap().is_none());
    assert_eq!(journal_size(&*store).await, n);
    let rec = store
        .enroll_token("eeeeeeeeeeeeeeee")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.uses, rec.max_uses), (3, 3));
    assert_eq!(rec.device_id, Some(did(3)));
    assert_eq!(store.count_devices().await.unwrap(), 3);

    // Uses left do not outlive the expiry.
    enroll_token_uses(&*store, "ffffffffffffffff", T0 + Duration::minutes(5), 5).await;
    assert!(
        store
            .enroll_device("ffffffffffffffff", new_device(5), &at(T0))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .enroll_device(
                "ffffffffffffffff",
                new_device(6),
                &at(T0 + Duration::minutes(5))
            )
            .await
            .unwrap()
            .is_none()
    );
    let listed = store.list_enroll_tokens().await.unwrap();
    let f = listed.iter().find(|t| t.id == "ffffffffffffffff").unwrap();
    assert_eq!((f.uses, f.max_uses), (1, 5));
}

async fn concurrent_enrollments_never_exceed_max_uses(store: Arc<dyn Store>) {
    enroll_token_uses(&*store, "dddddddddddddddd", T0 + Duration::hours(1), 3).await;
    let mut tasks = Vec::new();
    for n in 0..10u128 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            // A writer SQLite reports as busy made no change; try again, as
            // an agent would, so every attempt ends in a definite answer.
            for _ in 0..20 {
                match s
                    .enroll_device("dddddddddddddddd", new_device(100 + n), &at(T0))
                    .await
                {
                    Err(Error::Database(_)) => continue,
                    other => return other,
                }
            }
            panic!("attempt {n} stayed busy");
        }));
    }
    let mut created = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(Some(_)) => created += 1,
            Ok(None) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(store.count_devices().await.unwrap(), 3);
    let rec = store
        .enroll_token("dddddddddddddddd")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.uses, rec.max_uses), (3, 3));
}

/// Names (issue 19): the hostname, deduplicated with `-2`, `-3`, … at
/// enrollment and in bulk; unique on rename (journaled once, the same name
/// is no change); listed by name.
async fn device_names_are_unique_and_renamed(store: Arc<dyn Store>) {
    let named = |n: u128, host: Option<&str>| NewDevice {
        hostname: host.map(str::to_owned),
        ..new_device(n)
    };
    enroll_token_uses(&*store, "nnnnnnnnnnnnnnnn", T0 + Duration::hours(1), 3).await;
    let mut names = Vec::new();
    for n in 1..=3 {
        let d = store
            .enroll_device("nnnnnnnnnnnnnnnn", named(n, Some("Cam_1")), &at(T0))
            .await
            .unwrap()
            .unwrap();
        names.push(d.name);
    }
    assert_eq!(names, ["cam_1", "cam_1-2", "cam_1-3"]);
    store
        .insert_devices(
            &[
                named(4, Some("cam_1")),
                named(5, None),
                named(6, Some("cam_1")),
            ],
            "g",
            "e",
            &at(T0),
        )
        .await
        .unwrap();
    let name = |n| {
        let store = store.clone();
        async move { store.device(did(n)).await.unwrap().unwrap().name }
    };
    assert_eq!(name(4).await, "cam_1-4");
    assert_eq!(
        name(5).await,
        format!("device-{}", &did(5).to_string()[..8])
    );
    assert_eq!(name(6).await, "cam_1-5");

    let j0 = journal_size(&*store).await;
    let renamed = store
        .rename_device(did(2), "porch", &at(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(renamed.name, "porch");
    assert_eq!(journal_size(&*store).await, j0 + 1);
    store
        .rename_device(did(2), "porch", &at(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(journal_size(&*store).await, j0 + 1, "no change, no entry");
    let taken = store
        .rename_device(did(3), "porch", &at(T0))
        .await
        .unwrap_err();
    assert!(matches!(taken, Error::Conflict { .. }), "{taken}");
    assert_eq!(journal_size(&*store).await, j0 + 1);
    assert!(
        store
            .rename_device(did(99), "x", &at(T0))
            .await
            .unwrap()
            .is_none()
    );
    // The freed name is free again.
    let d = store
        .enroll_token("nnnnnnnnnnnnnnnn")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.uses, 3);
    store
        .insert_devices(&[named(7, Some("cam_1"))], "g", "e", &at(T0))
        .await
        .unwrap();
    assert_eq!(name(7).await, "cam_1-2");
    let found = store
        .list_devices(&DeviceFilter {
            name: Some("porch".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.iter().map(|d| d.id).collect::<Vec<_>>(), [did(2)]);
}

async fn devices_list_filter_tag_and_revoke(store: Arc<dyn Store>) {
    let batch: Vec<_> = (1..=30).map(new_device).collect();
    store
        .insert_devices(&batch[..20], "g1", "staging", &at(T0))
        .await
        .unwrap();
    store
        .insert_devices(&batch[20..], "g2", "production", &at(T0))
        .await
        .unwrap();
    assert_eq!(store.count_devices().await.unwrap(), 30);
    let dup = store
        .insert_devices(&batch[..1], "g1", "staging", &at(T0))
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
            &at(T0),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tagged.tags.get("site").map(String::as_str), Some("berlin"));
    let untagged = store
        .tag_device(did(3), &[("floor".into(), String::new())], &at(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        untagged.tags.into_iter().collect::<Vec<_>>(),
        vec![("site".into(), "berlin".into())]
    );
    assert!(
        store
            .tag_device(did(999), &[], &at(T0))
            .await
            .unwrap()
            .is_none()
    );

    let revoked = store
        .revoke_device(did(4), "stolen", &at(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(revoked.status, DeviceStatus::Revoked);
    let again = store
        .revoke_device(did(4), "other reason", &at(T0 + Duration::hours(1)))
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
            .revoke_device(did(999), "x", &at(T0))
            .await
            .unwrap()
            .is_none()
    );
}

async fn checkins_and_inventory(store: Arc<dyn Store>) {
    store
        .insert_devices(&[new_device(1), new_device(2)], "g", "dev", &at(T0))
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
        .put_inventory(did(1), "aa", r#"{"arch":"x86_64"}"#, &at(T0))
        .await
        .unwrap();
    store
        .put_inventory(did(1), "bb", r#"{"arch":"aarch64"}"#, &at(later))
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
    assert!(
        store
            .put_inventory(did(99), "cc", "{}", &at(T0))
            .await
            .is_err()
    );
}

async fn timestamps_round_trip_to_the_millisecond(store: Arc<dyn Store>) {
    let t = datetime!(2031-02-03 04:05:06.789 UTC);
    let a = store
        .create_account(
            NewAccount {
                name: "t".into(),
                role: Role::Security,
            },
            &at(t),
        )
        .await
        .unwrap();
    assert_eq!(a.created_at, t);
}

async fn journal_size(store: &dyn Store) -> u64 {
    store.journal_root().await.unwrap().0
}

async fn every_change_journals_exactly_one_entry(store: Arc<dyn Store>) {
    assert_eq!(
        store.journal_root().await.unwrap(),
        (0, bulwark_tlog::empty_root())
    );
    let mut expect = Vec::new();
    let acct = store
        .create_account(
            NewAccount {
                name: "ana".into(),
                role: Role::Admin,
            },
            &at(T0),
        )
        .await
        .unwrap();
    expect.push("account.create");
    let tok = NewApiToken {
        id: "0123456789abcdef".into(),
        account_id: acct.id.clone(),
        label: "ci".into(),
        secret_hash: vec![9; 32],
        expires_at: None,
    };
    store.insert_api_token(tok, &at(T0)).await.unwrap();
    expect.push("token.create");
    assert!(
        store
            .revoke_api_token("0123456789abcdef", &at(T0))
            .await
            .unwrap()
    );
    expect.push("token.revoke");
    enroll_token(&*store, "aaaaaaaaaaaaaaaa", T0 + Duration::hours(1)).await;
    expect.push("enroll_token.create");
    store
        .enroll_device("aaaaaaaaaaaaaaaa", new_device(1), &at(T0))
        .await
        .unwrap()
        .unwrap();
    expect.push("device.enroll");
    store
        .insert_devices(&[new_device(2), new_device(3)], "g", "dev", &at(T0))
        .await
        .unwrap();
    expect.push("device.bulk_insert");
    store
        .tag_device(did(1), &[("site".into(), "berlin".into())], &at(T0))
        .await
        .unwrap();
    expect.push("device.tag");
    store
        .revoke_device(did(1), "stolen", &at(T0))
        .await
        .unwrap();
    expect.push("device.revoke");
    store
        .put_inventory(did(2), "aa", "{}", &at(T0))
        .await
        .unwrap();
    expect.push("device.inventory");
    assert_eq!(journal_size(&*store).await, expect.len() as u64);

    // Refused or no-op changes journal nothing.
    let n = journal_size(&*store).await;
    assert!(
        store
            .create_account(
                NewAccount {
                    name: "ana".into(),
                    role: Role::Viewer
                },
                &at(T0)
            )
            .await
            .is_err()
    );
    assert!(
        !store
            .revoke_api_token("0123456789abcdef", &at(T0))
            .await
            .unwrap()
    );
    assert!(
        store
            .enroll_device("aaaaaaaaaaaaaaaa", new_device(9), &at(T0))
            .await
            .unwrap()
            .is_none()
    );
    store.revoke_device(did(1), "again", &at(T0)).await.unwrap();
    assert!(
        store
            .put_inventory(did(99), "x", "{}", &at(T0))
            .await
            .is_err()
    );
    store
        .record_checkins(&[CheckinUpdate {
            id: did(2),
            at: T0,
            agent_version: "1".into(),
            boot_id: None,
        }])
        .await
        .unwrap();
    assert_eq!(journal_size(&*store).await, n);

    let entries = store.journal_entries(0, 1000).await.unwrap();
    let actions: Vec<String> = entries
        .iter()
        .map(|r| {
            bulwark_proto::JournalEntry::from_canonical(&r.entry)
                .unwrap()
                .action
        })
        .collect();
    assert_eq!(actions, expect);
    assert_eq!(
        entries.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..expect.len() as u64).collect::<Vec<_>>()
    );
    let revoke = bulwark_proto::JournalEntry::from_canonical(&entries[7].entry).unwrap();
    assert_eq!(revoke.target, format!("device:{}", did(1)));
    assert_eq!(
        revoke.detail.get("reason").map(String::as_str),
        Some("stolen")
    );
    assert!(revoke.before.is_some() && revoke.after.is_some() && revoke.before != revoke.after);
    // No secret or secret hash ever reaches the journal.
    let all: Vec<u8> = entries.iter().flat_map(|r| r.entry.clone()).collect();
    for r in &entries {
        assert_eq!(r.leaf_hash, bulwark_tlog::leaf_hash(&r.entry));
    }
    assert!(
        !String::from_utf8_lossy(&all).contains("0909090909"),
        "a secret hash leaked into the journal"
    );
}

async fn journal_root_and_nodes_match_the_reference(store: Arc<dyn Store>) {
    let mut batch = Vec::new();
    for i in 0..37i64 {
        let mut e = test_entry(i);
        e.action = format!("test.{i}");
        batch.push(e);
    }
    assert_eq!(store.append_journal(&batch[..20]).await.unwrap(), 20);
    assert_eq!(store.append_journal(&batch[20..]).await.unwrap(), 37);
    let leaves: Vec<bulwark_tlog::Hash> = batch
        .iter()
        .map(|e| bulwark_tlog::leaf_hash(&e.to_canonical()))
        .collect();
    let (size, root) = store.journal_root().await.unwrap();
    assert_eq!(size, 37);
    assert_eq!(root, bulwark_tlog::root_from_leaf_hashes(&leaves));
    // Every complete subtree is stored; incomplete ones are not.
    let got = store
        .journal_nodes(&[(0, 36), (1, 17), (5, 0), (3, 3), (3, 4), (6, 0)])
        .await
        .unwrap();
    assert_eq!(got[0], Some(leaves[36]));
    assert_eq!(
        got[1],
        Some(bulwark_tlog::root_from_leaf_hashes(&leaves[34..36]))
    );
    assert_eq!(
        got[2],
        Some(bulwark_tlog::root_from_leaf_hashes(&leaves[0..32]))
    );
    assert_eq!(
        got[3],
        Some(bulwark_tlog::root_from_leaf_hashes(&leaves[24..32]))
    );
    assert_eq!(got[4], None, "leaves 32..40 are not all there yet");
    assert_eq!(got[5], None);
}

async fn journal_nodes_above_and_below_the_stored_level(store: Arc<dyn Store>) {
    // Nodes of level >= 4 are stored; lower ones are folded from leaves.
    let batch: Vec<_> = (0..600).map(test_entry).collect();
    store.append_journal(&batch).await.unwrap();
    let leaves: Vec<bulwark_tlog::Hash> = batch
        .iter()
        .map(|e| bulwark_tlog::leaf_hash(&e.to_canonical()))
        .collect();
    let keys = [
        (8, 0),
        (8, 1),
        (8, 2),
        (9, 0),
        (7, 3),
        (7, 4),
        (2, 149),
        (0, 599),
        (0, 600),
    ];
    let got = store.journal_nodes(&keys).await.unwrap();
    let reference = |a: usize, b: usize| Some(bulwark_tlog::root_from_leaf_hashes(&leaves[a..b]));
    assert_eq!(got[0], reference(0, 256));
    assert_eq!(got[1], reference(256, 512));
    assert_eq!(got[2], None, "512..768 is incomplete");
    assert_eq!(got[3], reference(0, 512));
    assert_eq!(got[4], reference(384, 512));
    assert_eq!(got[5], None, "512..640 is incomplete");
    assert_eq!(got[6], reference(596, 600));
    assert_eq!(got[7], Some(leaves[599]));
    assert_eq!(got[8], None);
    // And proofs built from them verify.
    let tree_root = store.journal_root().await.unwrap().1;
    let mut tree = bulwark_tlog::MemoryTree::new();
    for l in &leaves {
        tree.append(*l);
    }
    assert_eq!(tree_root, tree.root());
}

async fn checkpoints_are_kept_per_size(store: Arc<dyn Store>) {
    assert_eq!(store.latest_checkpoint().await.unwrap(), None);
    store.put_checkpoint(3, "note-3\n", T0).await.unwrap();
    store.put_checkpoint(1, "note-1\n", T0).await.unwrap();
    store.put_checkpoint(3, "other\n", T0).await.unwrap();
    assert_eq!(
        store.checkpoints().await.unwrap(),
        vec![(1, "note-1\n".to_owned()), (3, "note-3\n".to_owned())]
    );
    assert_eq!(
        store.latest_checkpoint().await.unwrap(),
        Some((3, "note-3\n".to_owned()))
    );
    assert_eq!(
        store.checkpoint(1).await.unwrap().as_deref(),
        Some("note-1\n")
    );
    assert_eq!(store.checkpoint(2).await.unwrap(), None);
}

// ---- backends --------------------------------------------------------------

/// Blobs, TUF rows, releases, proposals and signatures, promotion,
/// deployments, director state and update reports: every method of the
/// update half of the store, each change journaled once.
async fn updates_round_trip_and_journal(store: Arc<dyn Store>) {
    use bulwark_store::{
        DirectorState, NewRelease, Publication, Repository, TufRole, TufRow, UpdatePhase,
        UpdateStatus,
    };
    let sha = "ab".repeat(32);
    let j0 = journal_size(&*store).await;
    let b = store.put_blob(&sha, 42, &at(T0)).await.unwrap();
    assert_eq!(
        (b.sha256.as_str(), b.length, b.created_at),
        (sha.as_str(), 42, T0)
    );
    // Dedupe: the row stays as first stored; the upload is still journaled.
    store
        .put_blob(&sha, 42, &at(T0 + Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(store.blob(&sha).await.unwrap().unwrap().created_at, T0);
    assert_eq!(store.blob(&"cd".repeat(32)).await.unwrap(), None);
    let new = NewRelease {
        name: "fw".into(),
        version: "1.0".into(),
        sha256: sha.clone(),
        length: 42,
        installer: bulwark_store::Installer::File,
        install_path: Some("/opt/fw.img".into()),
        smoke_test: Some("true".into()),
        smoke_timeout_secs: 30,
    };
    let rel = store.create_release(new.clone(), &at(T0)).await.unwrap();
    assert_eq!(rel.status, "unsigned");
    assert_eq!(rel.reference(), "fw@1.0");
    assert!(matches!(
        store.create_release(new, &at(T0)).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(store.release("fw", "1.0").await.unwrap().unwrap(), rel);
    assert_eq!(store.release_by_id(&rel.id).await.unwrap().unwrap(), rel);
    // Binary bodies survive byte for byte (BYTEA / BLOB).
    let body: Vec<u8> = (0..=255u8).collect();
    let row = |role: TufRole, version: u64| TufRow {
        repo: Repository::Image,
        role,
        version,
        body: body.clone(),
        expires_at: T0 + Duration::days(1),
    };
    store
        .put_tuf(
            &[row(TufRole::Root, 1)],
            bulwark_proto::JournalAction::RepoInit,
            "repo:image",
            &at(T0),
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_tuf(
                &[row(TufRole::Root, 1)],
                bulwark_proto::JournalAction::RepoInit,
                "repo:image",
                &at(T0)
            )
            .await,
        Err(Error::Conflict { .. })
    ));
    store
        .put_proposal(&rel.id, 0, b"{\"signed\":1}", T0)
        .await
        .unwrap();
    store
        .add_signature(&rel.id, "k1", "aa", None, &at(T0))
        .await
        .unwrap();
    let p = store.proposal(&rel.id).await.unwrap().unwrap();
    assert_eq!(p.signatures, vec![("k1".to_owned(), "aa".to_owned())]);
    // A new proposal drops the old signatures.
    store
        .put_proposal(&rel.id, 0, b"{\"signed\":2}", T0)
        .await
        .unwrap();
    assert!(
        store
            .proposal(&rel.id)
            .await
            .unwrap()
            .unwrap()
            .signatures
            .is_empty()
    );
    store
        .add_signature(
            &rel.id,
            "k2",
            "bb",
            Some(Publication {
                metadata: vec![
                    row(TufRole::Targets, 1),
                    row(TufRole::Snapshot, 1),
                    row(TufRole::Timestamp, 1),
                ],
                first_environment: "dev".into(),
            }),
            &at(T0),
        )
        .await
        .unwrap();
    let rel = store.release("fw", "1.0").await.unwrap().unwrap();
    assert_eq!(
        (rel.status.as_str(), rel.published_at),
        ("published", Some(T0))
    );
    assert_eq!(rel.environments, vec!["dev".to_owned()]);
    let ts = store
        .tuf_latest(Repository::Image, TufRole::Timestamp)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((ts.version, ts.body.clone()), (1, body.clone()));
    assert_eq!(
        store
            .tuf_version(Repository::Image, TufRole::Root, 1)
            .await
            .unwrap()
            .unwrap()
            .body,
        body
    );
    assert!(
        store
            .promote_release(&rel.id, "staging", &at(T0 + Duration::seconds(1)))
            .await
            .unwrap()
    );
    assert!(
        !store
            .promote_release(&rel.id, "staging", &at(T0))
            .await
            .unwrap()
    );
    assert_eq!(
        store.list_releases().await.unwrap()[0].environments,
        vec!["dev", "staging"]
    );
    let d1 = store
        .create_deployment(&rel.id, "g", "staging", &at(T0))
        .await
        .unwrap();
    let d2 = store
        .create_deployment(&rel.id, "g", "staging", &at(T0))
        .await
        .unwrap();
    assert_eq!((d1.seq, d2.seq, d2.release.as_str()), (1, 2, "fw@1.0"));
    assert_eq!(
        store
            .current_deployment("g", "staging")
            .await
            .unwrap()
            .unwrap()
            .seq,
        2
    );
    assert_eq!(store.current_deployment("g", "prod").await.unwrap(), None);
    assert_eq!(store.list_deployments().await.unwrap().len(), 2);
    assert!(!d2.remediation);
    assert_eq!(
        store.current_remediation("g", "staging").await.unwrap(),
        None
    );
    // A remediation deployment, then an ordinary one: the newest overall is
    // the ordinary one, the newest remediation stays the remediation.
    let fix = store
        .create_deployment_marked(&rel.id, "g", "staging", true, &at(T0))
        .await
        .unwrap();
    assert!(fix.remediation);
    let d4 = store
        .create_deployment(&rel.id, "g", "staging", &at(T0))
        .await
        .unwrap();
    assert_eq!(
        store.current_remediation("g", "staging").await.unwrap(),
        Some(fix.clone())
    );
    assert_eq!(
        store
            .current_deployment("g", "staging")
            .await
            .unwrap()
            .unwrap()
            .seq,
        d4.seq
    );
    // Director state: insert once, then optimistic updates on the timestamp version.
    let mut ds = DirectorState {
        device_id: did(1),
        deployment_seq: Some(d4.seq),
        targets_version: 1,
        timestamp_version: 1,
        targets: body.clone(),
        snapshot: vec![1],
        timestamp: vec![2],
        snapshot_expires: T0 + Duration::days(7),
        timestamp_expires: T0 + Duration::days(1),
    };
    assert!(store.put_director_state(&ds, None).await.unwrap());
    assert!(
        !store.put_director_state(&ds, None).await.unwrap(),
        "second insert loses"
    );
    ds.timestamp_version = 2;
    assert!(store.put_director_state(&ds, Some(1)).await.unwrap());
    assert!(
        !store.put_director_state(&ds, Some(1)).await.unwrap(),
        "stale writer loses"
    );
    assert_eq!(store.director_state(did(1)).await.unwrap().unwrap(), ds);
    // Update reports: latest and history.
    for (i, phase) in [UpdatePhase::Downloading, UpdatePhase::Installed]
        .into_iter()
        .enumerate()
    {
        store
            .record_update(
                did(1),
                &UpdateStatus {
                    release: "fw@1.0".into(),
                    phase,
                    outcome: (i == 1).then(|| "installed".to_owned()),
                    detail: None,
                    at: T0 + Duration::seconds(i as i64),
                },
                &at(T0),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store.device_update(did(1)).await.unwrap().unwrap().phase,
        "installed"
    );
    let h = store.update_events(did(1), 10).await.unwrap();
    assert_eq!(
        h.iter().map(|u| u.phase.as_str()).collect::<Vec<_>>(),
        ["installed", "downloading"]
    );
    // GC keeps referenced blobs and young ones.
    let other = "ef".repeat(32);
    store.put_blob(&other, 1, &at(T0)).await.unwrap();
    assert_eq!(
        store.gc_blobs(T0, &at(T0)).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store
            .gc_blobs(T0 + Duration::hours(2), &at(T0))
            .await
            .unwrap(),
        vec![other]
    );
    assert!(
        store.blob(&sha).await.unwrap().is_some(),
        "referenced by a release"
    );
    // 3 blob uploads, 1 release, 1 root, 2 signatures, 1 promotion,
    // 4 deployments, 2 reports, 2 collections; refused changes journal nothing.
    assert_eq!(journal_size(&*store).await - j0, 16);
}

/// Scans and verdicts, policy versions, waivers, re-evaluations with
/// deduplicated alerts: every change journaled once.
async fn monitor_profiles_alerts_and_quarantine(store: Arc<dyn Store>) {
    use bulwark_store::{AlertAction, DetectionAlert, DetectionKind, Severity};
    store
        .insert_devices(
            &[new_device(1), new_device(2)],
            "cams",
            "production",
            &at(T0),
        )
        .await
        .unwrap();
    let j0 = journal_size(&*store).await;
    // Profiles: versioned per group, one entry per new version.
    let p1 = store
        .put_profile("cams", "1", "a = 1", &at(T0))
        .await
        .unwrap();
    let same = store
        .put_profile("cams", "1", "a = 1", &at(T0))
        .await
        .unwrap();
    assert_eq!(p1, same);
    let clash = store
        .put_profile("cams", "1", "a = 2", &at(T0))
        .await
        .unwrap_err();
    assert!(matches!(clash, Error::Conflict { .. }), "{clash}");
    let p2 = store
        .put_profile("cams", "2", "a = 2", &at(T0))
        .await
        .unwrap();
    assert!(p2.revision > p1.revision);
    store
        .put_profile("doors", "1", "b = 1", &at(T0))
        .await
        .unwrap();
    let all = store.profiles().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|p| (p.group.as_str(), p.version.as_str()))
            .collect::<Vec<_>>(),
        [("cams", "1"), ("cams", "2"), ("doors", "1")]
    );
    assert_eq!(journal_size(&*store).await, j0 + 3);

    // Alerts are observations: stored, listed newest first, not journaled.
    let alert = |n: u8, dev: u128, secs: i64| DetectionAlert {
        id: format!("a{n}"),
        device_id: did(dev),
        group: "cams".into(),
        behaviour: "scan".into(),
        kind: DetectionKind::Fanout,
        severity: Severity::Critical,
        profile_version: "2".into(),
        action: (n == 2).then_some(AlertAction::Quarantine),
        message: "many destinations".into(),
        evidence: "[]".into(),
        observed_at: T0 + time::Duration::seconds(secs),
        created_at: T0 + time::Duration::seconds(secs),
    };
    let raised = vec![alert(1, 1, 1), alert(2, 1, 2), alert(3, 2, 3)];
    store.insert_detection_alerts(&raised).await.unwrap();
    let newest = store.detection_alerts(None, 10).await.unwrap();
    assert_eq!(
        newest.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["a3", "a2", "a1"]
    );
    assert_eq!(newest[1], raised[1]);
    let one = store.detection_alerts(Some(did(1)), 1).await.unwrap();
    assert_eq!(
        one.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["a2"]
    );
    assert_eq!(journal_size(&*store).await, j0 + 3);

    // Quarantine and release: journaled once each, idempotent otherwise.
    let q = store
        .quarantine_device(did(1), "port scan", Some("a2"), &at(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.quarantined_at, Some(T0));
    assert_eq!(q.quarantine_reason.as_deref(), Some("port scan"));
    let again = store
        .quarantine_device(did(1), "again", None, &at(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.quarantine_reason.as_deref(), Some("port scan"));
    assert_eq!(store.quarantined_devices().await.unwrap(), vec![did(1)]);
    assert_eq!(journal_size(&*store).await, j0 + 4);
    let entry = last_entry(&*store).await;
    assert_eq!(entry.action, "device.quarantine");
    assert_eq!(entry.detail.get("alert").map(String::as_str), Some("a2"));
    assert!(
        store
            .quarantine_device(did(99), "x", None, &at(T0))
            .await
            .unwrap()
            .is_none()
    );
    let r = store
        .release_device(did(1), "reimaged", &at(T0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.quarantined_at, r.quarantine_reason), (None, None));
    assert!(
        store
            .release_device(did(2), "never quarantined", &at(T0))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(journal_size(&*store).await, j0 + 5);
    assert_eq!(last_entry(&*store).await.action, "device.release");
    assert!(store.quarantined_devices().await.unwrap().is_empty());
}

async fn webhooks_and_the_delivery_outbox(store: Arc<dyn Store>) {
    use bulwark_store::{AttemptOutcome, DeliveryEvent, NewDelivery, WebhookRow};
    let j0 = journal_size(&*store).await;
    let hook = WebhookRow {
        id: "h1".into(),
        url: "https://hooks.example/bulwark".into(),
        secret_sealed: "c2VhbGVk".into(),
        created_by: "ana".into(),
        created_at: T0,
        removed_at: None,
    };
    store.add_webhook(&hook, &at(T0)).await.unwrap();
    assert!(
        !format!("{hook:?}").contains("c2VhbGVk"),
        "the sealed secret is redacted"
    );
    assert_eq!(store.webhooks().await.unwrap(), vec![hook.clone()]);
    assert_eq!(journal_size(&*store).await, j0 + 1);
    let entry = last_entry(&*store).await;
    assert_eq!(entry.action, "webhook.add");
    assert!(!serde_json::to_string(&entry).unwrap().contains("c2VhbGVk"));

    let d = |n: u8| NewDelivery {
        id: format!("d{n}"),
        webhook_id: "h1".into(),
        event: DeliveryEvent::Detection,
        alert_id: format!("a{n}"),
        body: "{}".into(),
    };
    store.enqueue_deliveries(&[d(1), d(2)], T0).await.unwrap();
    assert_eq!(store.due_deliveries(T0, 10).await.unwrap().len(), 2);
    let later = T0 + time::Duration::seconds(2);
    store
        .record_attempt(
            "d1",
            &AttemptOutcome::Retry {
                status: Some(500),
                error: "HTTP 500".into(),
                next_attempt_at: later,
            },
            T0,
        )
        .await
        .unwrap();
    store
        .record_attempt("d2", &AttemptOutcome::Delivered { status: 204 }, T0)
        .await
        .unwrap();
    assert!(store.due_deliveries(T0, 10).await.unwrap().is_empty());
    let due = store.due_deliveries(later, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].attempts, due[0].last_status), (1, Some(500)));
    store
        .record_attempt("d1", &AttemptOutcome::Delivered { status: 200 }, later)
        .await
        .unwrap();
    // Recording twice does nothing once it is no longer pending.
    store
        .record_attempt(
            "d1",
            &AttemptOutcome::GaveUp {
                status: None,
                error: "x".into(),
            },
            later,
        )
        .await
        .unwrap();
    let log = store.deliveries("h1", 10).await.unwrap();
    let d1 = log.iter().find(|d| d.id == "d1").unwrap();
    assert_eq!(
        (d1.state.as_str(), d1.attempts, d1.last_status),
        ("delivered", 2, Some(200))
    );
    assert_eq!(d1.delivered_at, Some(later));
    // Deliveries are not journaled.
    assert_eq!(journal_size(&*store).await, j0 + 1);

    // Claims: a claimed delivery is not due for anyone else until its
    // lease passes; concurrent claims split the due ones.
    let t = later + time::Duration::seconds(1);
    let lease = t + time::Duration::seconds(30);
    store
        .enqueue_deliveries(&[d(4), d(5), d(6), d(7)], t)
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.claim_deliveries(t, lease, 3),
        store.claim_deliveries(t, lease, 3)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut ids: Vec<&str> = a.iter().chain(&b).map(|d| d.id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["d4", "d5", "d6", "d7"], "each claimed exactly once");
    assert!(
        store
            .claim_deliveries(t, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.due_deliveries(t, 10).await.unwrap().is_empty());
    store
        .record_attempt("d4", &AttemptOutcome::Delivered { status: 204 }, t)
        .await
        .unwrap();
    // The claimant of the others died: after the lease they are due again.
    let again = store
        .claim_deliveries(lease, lease + time::Duration::seconds(30), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = again.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["d5", "d6", "d7"]);
    assert!(
        again
            .iter()
            .all(|d| d.attempts == 0 && d.state == "pending")
    );

    store.enqueue_deliveries(&[d(3)], later).await.unwrap();
    assert!(store.remove_webhook("h1", &at(later)).await.unwrap());
    assert!(!store.remove_webhook("h1", &at(later)).await.unwrap());
    assert!(store.webhooks().await.unwrap().is_empty());
    assert!(store.due_deliveries(later, 10).await.unwrap().is_empty());
    assert_eq!(journal_size(&*store).await, j0 + 2);
    assert_eq!(last_entry(&*store).await.action, "webhook.remove");
}

async fn gates_round_trip_and_journal(store: Arc<dyn Store>) {
    use bulwark_store::{
        AlertKind, GateStatus, NewAlert, NewRelease, ReleaseScan, SbomSource, VerdictChange,
        WaiverRow,
    };
    let sha = "ab".repeat(32);
    store.put_blob(&sha, 42, &at(T0)).await.unwrap();
    let rel = store
        .create_release(
            NewRelease {
                name: "fw".into(),
                version: "1.0".into(),
                sha256: sha,
                length: 42,
                installer: bulwark_store::Installer::File,
                install_path: None,
                smoke_test: None,
                smoke_timeout_secs: 30,
            },
            &at(T0),
        )
        .await
        .unwrap();
    let j0 = journal_size(&*store).await;
    assert_eq!(store.release_scan(&rel.id).await.unwrap(), None);
    let mut scan = ReleaseScan {
        release_id: rel.id.clone(),
        sbom_source: Some(SbomSource::Extracted),
        sbom: "{\"components\":[]}".into(),
        findings: "{}".into(),
        status: GateStatus::Block,
        verdict: "{\"status\":\"block\"}".into(),
        scanned_at: T0,
        evaluated_at: T0,
    };
    store.put_release_scan(&scan, &at(T0)).await.unwrap();
    scan.status = GateStatus::Pass;
    store.put_release_scan(&scan, &at(T0)).await.unwrap();
    assert_eq!(store.release_scan(&rel.id).await.unwrap().unwrap(), scan);
    assert_eq!(store.release_scans().await.unwrap(), vec![scan.clone()]);
    // A scan for a release that does not exist is refused.
    let mut ghost = scan.clone();
    ghost.release_id = "nope".into();
    assert!(store.put_release_scan(&ghost, &at(T0)).await.is_err());

    assert_eq!(store.policy().await.unwrap(), None);
    assert_eq!(store.put_policy("{}", &at(T0)).await.unwrap(), 1);
    assert_eq!(
        store
            .put_policy("{\"require_sbom\":false}", &at(T0))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.policy().await.unwrap(),
        Some((2, "{\"require_sbom\":false}".to_owned()))
    );

    let w = WaiverRow {
        id: "w1".into(),
        finding: "CVE-2024-1".into(),
        release: "fw@*".into(),
        reason: "not reachable".into(),
        expires_at: T0 + Duration::days(30),
        created_by: "alice".into(),
        created_at: T0,
        revoked_at: None,
    };
    store.add_waiver(&w, &at(T0)).await.unwrap();
    assert!(matches!(
        store.add_waiver(&w, &at(T0)).await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(store.waivers().await.unwrap(), vec![w]);
    assert!(store.revoke_waiver("w1", &at(T0)).await.unwrap());
    assert!(!store.revoke_waiver("w1", &at(T0)).await.unwrap());
    assert!(store.waivers().await.unwrap().is_empty());

    let alert = NewAlert {
        kind: AlertKind::Vulnerability,
        advisory: "GHSA-x".into(),
        subject: "release:fw@1.0".into(),
        message: "fw@1.0 is hit".into(),
    };
    let change = VerdictChange {
        release_id: rel.id.clone(),
        status: GateStatus::Block,
        verdict: "{\"status\":\"block\"}".into(),
    };
    let raised = store
        .record_evaluation(
            bulwark_proto::JournalAction::AdvisoriesImport,
            "advisories",
            &[("imported", "1".into())],
            std::slice::from_ref(&change),
            &[alert.clone(), alert.clone()],
            &at(T0 + Duration::seconds(5)),
        )
        .await
        .unwrap();
    assert_eq!(raised.len(), 1, "the same alert is raised once");
    let again = store
        .record_evaluation(
            bulwark_proto::JournalAction::AdvisoriesImport,
            "advisories",
            &[],
            &[],
            &[alert],
            &at(T0),
        )
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(store.alerts(10).await.unwrap(), raised);
    let s = store.release_scan(&rel.id).await.unwrap().unwrap();
    assert_eq!(
        (s.status.as_str(), s.evaluated_at),
        ("block", T0 + Duration::seconds(5))
    );
    // 2 scans, 2 policies, 1 waiver, 1 revocation, 2 evaluations.
    assert_eq!(journal_size(&*store).await - j0, 8);
}

async fn sqlite() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bulwark.db").display());
    (bulwark_store::open(&url).await.unwrap(), dir)
}

/// The binary's one server; `None` when PostgreSQL is missing outside CI
/// (each test says so and returns; under CI it fails).
fn pg_server() -> Option<&'static bulwark_testpg::TempPostgres> {
    bulwark_testpg::require_postgres()?;
    static PG: OnceLock<bulwark_testpg::TempPostgres> = OnceLock::new();
    Some(PG.get_or_init(|| bulwark_testpg::TempPostgres::start().unwrap_or_else(|e| panic!("{e}"))))
}

async fn postgres(case: &str) -> Option<Arc<dyn Store>> {
    let url = pg_server()?.create_database(case).unwrap();
    Some(bulwark_store::open(&url).await.unwrap())
}

async fn telemetry_minutes_merge_and_expire(store: Arc<dyn Store>) {
    use bulwark_store::{LatestTelemetry, TelemetryMinute};
    let minute = |m: i64| {
        OffsetDateTime::from_unix_timestamp(1_795_000_000 - 1_795_000_000 % 60 + m * 60).unwrap()
    };
    let row = |d: u128, m: i64, samples: u64, cpu: f64, procs: u64| TelemetryMinute {
        device_id: did(d),
        minute: minute(m),
        samples,
        cpu_sum: cpu * samples as f64,
        cpu_max: cpu,
        memory_sum: 10.0 * samples as f64,
        memory_max: 10.0,
        processes_max: procs,
        bytes_in: 100,
        bytes_out: 200,
        packets_in: 1,
        packets_out: 2,
        connection_attempts: 3,
        failed_logins: 0,
        listening_max: 2,
        connections_max: 5,
        destinations_max: 4,
        unanswered_max: 0,
        failed_attempts: 7,
    };
    let j0 = journal_size(&*store).await;
    store
        .put_telemetry(
            &[
                row(1, 0, 3, 20.0, 40),
                row(1, 1, 6, 5.0, 41),
                row(2, 0, 6, 1.0, 7),
            ],
            &[LatestTelemetry {
                device_id: did(1),
                received_at: minute(1),
                body: "{\"seq\":9}".into(),
            }],
        )
        .await
        .unwrap();
    // A second, partial write of minute 0 merges: sums add, maxima keep the larger.
    store
        .put_telemetry(
            &[row(1, 0, 1, 80.0, 12)],
            &[LatestTelemetry {
                device_id: did(1),
                received_at: minute(0),
                body: "{\"seq\":1}".into(),
            }],
        )
        .await
        .unwrap();
    let rows = store
        .telemetry_minutes(did(1), minute(0), 100)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].samples, 4);
    assert_eq!(rows[0].cpu_sum, 140.0);
    assert_eq!(rows[0].cpu_max, 80.0);
    assert_eq!(rows[0].processes_max, 40);
    assert_eq!(rows[0].bytes_out, 400);
    assert_eq!(rows[0].failed_attempts, 14);
    assert_eq!(rows[1], row(1, 1, 6, 5.0, 41));
    assert_eq!(
        store
            .telemetry_minutes(did(1), minute(1), 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .telemetry_minutes(did(1), minute(0), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    // An older sample never replaces a newer latest one.
    let latest = store.latest_telemetry(did(1)).await.unwrap().unwrap();
    assert_eq!(
        (latest.body.as_str(), latest.received_at),
        ("{\"seq\":9}", minute(1))
    );
    assert!(store.latest_telemetry(did(3)).await.unwrap().is_none());
    // Retention.
    assert_eq!(store.prune_telemetry(minute(1)).await.unwrap(), 2);
    assert_eq!(
        store
            .telemetry_minutes(did(1), minute(-5), 100)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .telemetry_minutes(did(2), minute(-5), 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Observations, not state changes.
    assert_eq!(journal_size(&*store).await, j0);
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
                    let Some(store) = super::postgres(stringify!($case)).await else {
                        return;
                    };
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
    multi_use_token_enrolls_exactly_max_uses_devices,
    concurrent_enrollments_never_exceed_max_uses,
    devices_list_filter_tag_and_revoke,
    device_names_are_unique_and_renamed,
    checkins_and_inventory,
    timestamps_round_trip_to_the_millisecond,
    every_change_journals_exactly_one_entry,
    journal_root_and_nodes_match_the_reference,
    checkpoints_are_kept_per_size,
    journal_nodes_above_and_below_the_stored_level,
    updates_round_trip_and_journal,
    gates_round_trip_and_journal,
    monitor_profiles_alerts_and_quarantine,
    webhooks_and_the_delivery_outbox,
    telemetry_minutes_merge_and_expire,
);

/// Migrations up to (not including) 0008, then a used and an unused
/// one-time token as the old schema stored them.
fn before_0008(m: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    let mut m = m;
    m.migrations = m
        .migrations
        .iter()
        .filter(|m| m.version < 8)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    assert_eq!(m.migrations.len(), 7);
    m
}

const OLD_TOKENS: &str = "INSERT INTO enroll_tokens \
     (id, secret_hash, device_group, environment, created_by, created_at, expires_at, used_at, device_id) VALUES \
     ('aaaaaaaaaaaaaaaa', x'07', 'g', 'e', 'acct', 1, 2, 1, '00000000-0000-4000-8000-000000000001'), \
     ('bbbbbbbbbbbbbbbb', x'07', 'g', 'e', 'acct', 1, 2, NULL, NULL)";

async fn old_tokens_after_0008(store: Arc<dyn Store>) {
    let used = store
        .enroll_token("aaaaaaaaaaaaaaaa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((used.uses, used.max_uses), (1, 1));
    let unused = store
        .enroll_token("bbbbbbbbbbbbbbbb")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((unused.uses, unused.max_uses), (0, 1));
}

#[tokio::test]
async fn migration_0008_counts_a_used_token_as_its_one_use_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        before_0008(sqlx::migrate!("migrations/sqlite"))
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(OLD_TOKENS).execute(&pool).await.unwrap();
        pool.close().await;
    }
    old_tokens_after_0008(bulwark_store::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn migration_0008_counts_a_used_token_as_its_one_use_on_postgres() {
    let Some(pg) = pg_server() else {
        return;
    };
    let url = pg.create_database("migration_0008_old_tokens").unwrap();
    {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        before_0008(sqlx::migrate!("migrations/postgres"))
            .run(&pool)
            .await
            .unwrap();
        sqlx::query(sqlx::AssertSqlSafe(
            OLD_TOKENS.replace("x'07'", "'\\x07'::bytea"),
        ))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    old_tokens_after_0008(bulwark_store::open(&url).await.unwrap()).await;
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    assert!(matches!(
        bulwark_store::open("mysql://x").await,
        Err(Error::UnsupportedUrl)
    ));
}

async fn last_entry(store: &dyn Store) -> bulwark_proto::JournalEntry {
    let size = journal_size(store).await;
    let rows = store.journal_entries(size - 1, 1).await.unwrap();
    serde_json::from_slice(&rows[0].entry).unwrap()
}
