//! Shared fixture: a server state on an in-memory SQLite store with a few
//! accounts, tokens and one device, on a manual clock.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bulwark_pki::{DeviceCa, IssuedToken, SystemRandom, TokenKind};
use bulwark_proto::DeviceId;
use bulwark_server::{AppState, ManualClock, RevokedSerials, Settings};
use bulwark_store::{Audit, NewAccount, NewApiToken, NewDevice, NewEnrollToken, Role, Store};
use time::OffsetDateTime;
use time::macros::datetime;

pub const T0: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub struct Fixture {
    pub state: AppState,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub ca: Arc<DeviceCa>,
    /// Placeholder name → value, for `{name}` in request fixtures.
    pub vars: HashMap<String, String>,
    pub device: DeviceId,
    /// Holds the blob store.
    pub blob_dir: tempfile::TempDir,
}

async fn token(
    store: &dyn Store,
    account_id: &str,
    expires_at: Option<OffsetDateTime>,
) -> IssuedToken {
    let t = IssuedToken::generate(TokenKind::Api, &SystemRandom).unwrap();
    store
        .insert_api_token(
            NewApiToken {
                id: t.id.clone(),
                account_id: account_id.into(),
                label: "test".into(),
                secret_hash: t.secret_hash.to_vec(),
                expires_at,
            },
            &Audit::system(T0),
        )
        .await
        .unwrap();
    t
}

/// The fixture's journal checkpoint signer (the same key every time, so a
/// test can verify the checkpoints it makes).
pub fn journal_signer() -> bulwark_tlog::NoteSigner {
    bulwark_tlog::NoteSigner::new("test.invalid/journal", &[3; 32]).unwrap()
}

pub async fn fixture() -> Fixture {
    let store = bulwark_store::open("sqlite::memory:").await.unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let (ca, _) = DeviceCa::generate("test CA", T0).unwrap();
    let ca = Arc::new(ca);
    let blob_dir = tempfile::tempdir().unwrap();
    let key = || bulwark_tuf::SigningKey::generate_ed25519().unwrap().0;
    let (monitor, engine_out) = bulwark_server::monitor::Monitor::new(Vec::new(), 1);
    let services = bulwark_server::Services {
        journal_signer: journal_signer(),
        updates: bulwark_server::updates::Updates::new(
            bulwark_server::updates::BlobStore::open(blob_dir.path(), 1 << 20).unwrap(),
            key(),
            key(),
            key(),
            vec!["dev".into(), "staging".into(), "production".into()],
            bulwark_server::gate::Gate::open(blob_dir.path(), None).unwrap(),
        ),
        monitor,
        webhooks: Arc::new(
            bulwark_server::webhooks::Webhooks::new(
                store.clone(),
                clock.clone(),
                bulwark_pki::MasterKey::generate(&SystemRandom).unwrap(),
                // The tests' receivers listen on loopback, which production
                // refuses unless allowed.
                bulwark_server::webhooks::DestinationPolicy::new(&["127.0.0.0/8"]).unwrap(),
            )
            .unwrap(),
        ),
        wire: bulwark_server::wire_encoder(),
    };
    let state = AppState::new(
        store.clone(),
        clock.clone(),
        Arc::new(SystemRandom),
        ca.clone(),
        Arc::new(RevokedSerials::default()),
        Settings {
            poll_interval: Duration::from_secs(60),
            device_cert_validity: time::Duration::days(365),
        },
        services,
    );
    bulwark_services::alerts::spawn_alert_pipeline(
        state.monitor(),
        state.alert_pipeline(),
        engine_out,
    );
    state
        .updates()
        .ensure_director_root(&*store, T0)
        .await
        .unwrap();
    let mut vars = HashMap::new();
    let mut ids = HashMap::new();
    for (name, role) in [
        ("admin", Role::Admin),
        ("viewer", Role::Viewer),
        ("security", Role::Security),
        ("operator", Role::Operator),
    ] {
        let a = store
            .create_account(
                NewAccount {
                    name: name.into(),
                    role,
                },
                &Audit::system(T0),
            )
            .await
            .unwrap();
        let t = token(&*store, &a.id, None).await;
        vars.insert(name.to_owned(), t.plaintext.expose().to_owned());
        vars.insert(format!("{name}-token-id"), t.id.clone());
        ids.insert(name, a.id);
    }
    let admin = vars["admin"].clone();
    let last = admin.chars().last().unwrap();
    let wrong = format!(
        "{}{}",
        &admin[..admin.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    vars.insert("admin-wrong-secret".into(), wrong);
    let revoked = token(&*store, &ids["viewer"], None).await;
    store
        .revoke_api_token(&revoked.id, &Audit::system(T0))
        .await
        .unwrap();
    vars.insert("revoked".into(), revoked.plaintext.expose().to_owned());
    vars.insert("revoked-token-id".into(), revoked.id.clone());
    let expired = token(
        &*store,
        &ids["viewer"],
        Some(T0 - time::Duration::seconds(1)),
    )
    .await;
    vars.insert("expired".into(), expired.plaintext.expose().to_owned());
    let enroll = IssuedToken::generate(TokenKind::Enroll, &SystemRandom).unwrap();
    store
        .insert_enroll_token(
            NewEnrollToken {
                id: enroll.id.clone(),
                secret_hash: enroll.secret_hash.to_vec(),
                group: "lobby".into(),
                environment: "staging".into(),
                created_by: ids["admin"].clone(),
                expires_at: T0 + time::Duration::hours(1),
                max_uses: 1,
            },
            &Audit::system(T0),
        )
        .await
        .unwrap();
    vars.insert("enroll".into(), enroll.plaintext.expose().to_owned());
    let device = DeviceId::from_uuid(uuid::Uuid::from_u128(0x1234));
    store
        .insert_devices(
            &[NewDevice {
                id: device,
                hostname: Some("d1".into()),
                cert_serial: "00aa".into(),
                cert_not_after: T0 + time::Duration::days(1),
            }],
            "lobby",
            "staging",
            &Audit::system(T0),
        )
        .await
        .unwrap();
    vars.insert("device".into(), device.to_string());
    Fixture {
        state,
        store,
        clock,
        ca,
        vars,
        device,
        blob_dir,
    }
}
