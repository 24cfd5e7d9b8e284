//! Tampering with the stored journal — in SQLite and in PostgreSQL — is
//! detected by offline verification, which names the bad entry.
//!
//! Each case starts a real server, makes ten journaled changes (checkpoint
//! after each, as a busy server does), saves a trusted checkpoint, tampers
//! with the database directly, and verifies what the store now holds.

use std::sync::Arc;

use bulwark_audit::{Evidence, EvidenceEntry, Failure, verify};
use bulwark_server::{ManualClock, RawConfig, Server};
use bulwark_store::{Audit, NewAccount, Role};
use bulwark_tlog::{NoteVerifier, leaf_hash};

#[derive(Debug, Clone, Copy)]
enum Tamper {
    AlterEntry,
    AlterEntryAndLeaf,
    Reorder,
    Delete,
    RollBack,
    /// Entry 5's bytes replaced by something that is not an entry at all.
    Garble,
}

enum Db {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Pg($pool) => $body,
        }
    };
}

async fn tamper(db: &Db, how: Tamper) {
    async fn entry(db: &Db, seq: i64) -> (Vec<u8>, Vec<u8>) {
        on_db!(db, |p| {
            let row: (Vec<u8>, Vec<u8>) =
                sqlx::query_as("SELECT entry, leaf_hash FROM journal WHERE seq = $1")
                    .bind(seq)
                    .fetch_one(p)
                    .await
                    .unwrap();
            row
        })
    }
    async fn set(db: &Db, seq: i64, entry: &[u8], leaf: &[u8]) {
        on_db!(db, |p| {
            sqlx::query("UPDATE journal SET entry = $1, leaf_hash = $2 WHERE seq = $3")
                .bind(entry)
                .bind(leaf)
                .bind(seq)
                .execute(p)
                .await
                .unwrap();
        })
    }
    match how {
        Tamper::AlterEntry => {
            let (e, leaf) = entry(db, 5).await;
            set(
                db,
                5,
                &String::from_utf8(e)
                    .unwrap()
                    .replace("viewer", "admin")
                    .into_bytes(),
                &leaf,
            )
            .await;
        }
        Tamper::AlterEntryAndLeaf => {
            let (e, _) = entry(db, 5).await;
            let forged = String::from_utf8(e)
                .unwrap()
                .replace("viewer", "admin")
                .into_bytes();
            set(db, 5, &forged, &leaf_hash(&forged)).await;
        }
        Tamper::Garble => {
            let (_, leaf) = entry(db, 5).await;
            set(db, 5, b"{\"not\": \"an entry\"", &leaf).await;
        }
        Tamper::Reorder => {
            // user0 and user1, after the bootstrap's checkpoint.
            let (a, la) = entry(db, 4).await;
            let (b, lb) = entry(db, 5).await;
            set(db, 4, &b, &lb).await;
            set(db, 5, &a, &la).await;
        }
        Tamper::Delete => on_db!(db, |p| {
            sqlx::query("DELETE FROM journal WHERE seq = 3")
                .execute(p)
                .await
                .unwrap();
        }),
        Tamper::RollBack => on_db!(db, |p| {
            sqlx::query("DELETE FROM journal WHERE seq >= 6")
                .execute(p)
                .await
                .unwrap();
            sqlx::query("DELETE FROM checkpoints WHERE size > 6")
                .execute(p)
                .await
                .unwrap();
        }),
    }
}

async fn case(how: Tamper, postgres: bool) -> Result<bulwark_audit::Report, Failure> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let pg =
        postgres.then(|| bulwark_testpg::TempPostgres::start().unwrap_or_else(|e| panic!("{e}")));
    let url = pg.as_ref().map(|p| p.url().to_owned());
    let cfg = RawConfig {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".into()),
        device_listen: Some("127.0.0.1:0".into()),
        database_url: url.clone().map(Into::into),
        ..Default::default()
    }
    .validate()
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let server = Server::start(cfg, Arc::new(ManualClock::new(now)))
        .await
        .unwrap();
    let store = server.state().store().clone();
    // Bootstrap journaled 4 entries (admin account and token, the
    // built-in detection profile, the director's root); add 8 more.
    for i in 0..8 {
        let role = if i == 1 { Role::Viewer } else { Role::Operator };
        store
            .create_account(
                NewAccount {
                    name: format!("user{i}"),
                    role,
                },
                &Audit::system(now),
            )
            .await
            .unwrap();
        server.state().checkpoint_journal().await.unwrap();
    }
    let checkpoints = store.checkpoints().await.unwrap();
    let trusted = checkpoints.iter().find(|(s, _)| *s == 8).unwrap().1.clone();
    let db = match &url {
        Some(u) => Db::Pg(sqlx::PgPool::connect(u).await.unwrap()),
        None => Db::Sqlite(
            sqlx::SqlitePool::connect(&format!(
                "sqlite://{}",
                dir.path().join("data/bulwark.db").display()
            ))
            .await
            .unwrap(),
        ),
    };
    tamper(&db, how).await;

    // The evidence comes through the API, as `bulwark audit verify` gets
    // it: a damaged row is served (its bytes, no decoded entry, the
    // problem), never a server error.
    let token = std::fs::read_to_string(dir.path().join("data/admin.token")).unwrap();
    let resp = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/audit/entries?limit=1000",
            server.api_addr()
        ))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{how:?}");
    let page: serde_json::Value = resp.json().await.unwrap();
    let entries = page["entries"].as_array().unwrap();
    for e in entries {
        let garbled = matches!(how, Tamper::Garble) && e["seq"] == 5;
        assert_eq!(e["entry"].is_null(), garbled, "{how:?}: {e}");
        assert_eq!(e["problem"].is_string(), garbled, "{how:?}: {e}");
    }
    // Proofs, tiles and bundles over the damage: never a server error.
    // A deleted row leaves nodes the server cannot compute: 409
    // `journal_damaged`, naming `audit verify`.
    let (size, _) = store.journal_root().await.unwrap();
    for path in [
        "/api/v1/audit/entries/5".to_owned(),
        "/api/v1/audit/entries/3?size=8".to_owned(),
        format!("/api/v1/audit/consistency?from=2&size={}", size.min(8)),
        format!("/api/v1/audit/log/tile/0/000.p/{}", size.min(8)),
        format!("/api/v1/audit/log/tile/entries/000.p/{}", size.min(8)),
    ] {
        let resp = reqwest::Client::new()
            .get(format!("http://{}{path}", server.api_addr()))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap();
        assert!(
            matches!(status, 200 | 404 | 409),
            "{how:?} {path}: {status} {body}"
        );
        if status == 409 {
            assert!(
                body.contains("journal_damaged") && body.contains("audit verify"),
                "{how:?} {path}: {body}"
            );
        }
        if matches!(how, Tamper::Delete) && path.contains("entries/000") {
            assert_eq!(status, 409, "{how:?} {path}: a bundle with a hole");
        }
    }
    let evidence = Evidence {
        entries: entries
            .iter()
            .map(|e| {
                use base64::Engine as _;
                let leaf = hex::decode(e["leaf_hash"].as_str().unwrap()).unwrap();
                EvidenceEntry {
                    seq: e["seq"].as_u64().unwrap(),
                    raw: base64::engine::general_purpose::STANDARD
                        .decode(e["raw"].as_str().unwrap())
                        .unwrap(),
                    recorded_leaf_hash: Some(leaf.try_into().unwrap()),
                }
            })
            .collect(),
        checkpoints: store
            .checkpoints()
            .await
            .unwrap()
            .into_iter()
            .map(|(_, n)| n)
            .collect(),
        consistency: vec![],
    };
    let vkey = std::fs::read_to_string(dir.path().join("data/journal.vkey")).unwrap();
    let verifier = NoteVerifier::from_vkey(vkey.trim()).unwrap();
    let result = verify(&evidence, &verifier, Some(&trusted));
    server.shutdown().await.unwrap();
    result
}

async fn all_cases(postgres: bool) {
    use Failure::*;
    // user1 (the viewer) is entry 5: four bootstrap entries (admin account,
    // its token, the built-in detection profile, the director's root), then
    // user0.
    assert_eq!(
        case(Tamper::AlterEntry, postgres).await,
        Err(EntryAltered { seq: 5 })
    );
    assert_eq!(
        case(Tamper::AlterEntryAndLeaf, postgres).await,
        Err(RootMismatch {
            size: 6,
            first: 5,
            last: 5
        })
    );
    assert_eq!(
        case(Tamper::Reorder, postgres).await,
        Err(RootMismatch {
            size: 5,
            first: 4,
            last: 4
        })
    );
    assert_eq!(
        case(Tamper::Delete, postgres).await,
        Err(EntryMissing { seq: 3, found: 4 })
    );
    assert_eq!(
        case(Tamper::RollBack, postgres).await,
        Err(RolledBack {
            trusted: 8,
            size: 6
        })
    );
    assert!(matches!(
        case(Tamper::Garble, postgres).await,
        Err(EntryNotCanonical { seq: 5, .. })
    ));
    let e = case(Tamper::AlterEntryAndLeaf, postgres).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "entries 5..=5 do not match the signed checkpoint for size 6: an entry in that range was altered, reordered or replaced"
    );
}

#[tokio::test]
async fn tampering_is_detected_in_sqlite() {
    all_cases(false).await;
}

#[tokio::test]
async fn tampering_is_detected_in_postgres() {
    if bulwark_testpg::require_postgres().is_none() {
        return;
    }
    all_cases(true).await;
}
