//! Attacks on signed updates, each a named scenario against a real server
//! (mTLS device listener, SQLite store) whose database or blob files are
//! tampered with the way a compromised server would: the agent refuses,
//! says why, and the server's record of the device shows the refusal.
//!
//! The pure TUF-level attack fixtures live in `bulwark-tuf/tests/it/attacks.rs`;
//! these check that the whole agent path enforces them end to end.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulwark_agent::update::{FinalState, InstallConfig};
use bulwark_agent::{CycleOutcome, UpdateClient};
use bulwark_server::{ManualClock, RawConfig, Server};
use bulwark_store::Audit;
use bulwark_tuf::{MetaFile, Metadata, Root, SigningKey, Snapshot, Targets, Timestamp};
use serde_json::json;
use time::OffsetDateTime;

struct World {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    server: Server,
    http: reqwest::Client,
    token: String,
    rel: [SigningKey; 2],
    db: sqlx::SqlitePool,
    now: OffsetDateTime,
}

fn sha256(b: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(b))
}

impl World {
    async fn new() -> World {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let cfg = RawConfig {
            data_dir: Some(dir.join("data")),
            listen: Some("127.0.0.1:0".into()),
            device_listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let now = OffsetDateTime::now_utc();
        let server = Server::start(cfg, Arc::new(ManualClock::new(now)))
            .await
            .unwrap();
        let token = std::fs::read_to_string(dir.join("data/admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        let db = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            dir.join("data/bulwark.db").display()
        ))
        .await
        .unwrap();
        let w = World {
            _dir: tmp,
            dir,
            server,
            http: reqwest::Client::new(),
            token,
            rel: [
                SigningKey::generate_ed25519().unwrap().0,
                SigningKey::generate_ed25519().unwrap().0,
            ],
            db,
            now,
        };
        // repo init: 1 root key, targets 2-of-2.
        let online: serde_json::Value = w.get("/api/v1/repo/online-key").await;
        let online: bulwark_tuf::PublicKey = serde_json::from_value(online["key"].clone()).unwrap();
        let root_key = SigningKey::generate_ed25519().unwrap().0;
        let mut root = Root::new(now + time::Duration::days(365));
        root.add_key("root", root_key.public().clone());
        root.add_key("targets", w.rel[0].public().clone());
        root.add_key("targets", w.rel[1].public().clone());
        root.set_threshold("targets", 2);
        root.add_key("snapshot", online.clone());
        root.add_key("timestamp", online);
        let mut md = Metadata::new(root);
        md.sign(&root_key).unwrap();
        w.post_raw(
            "/api/v1/repo/root",
            md.to_vec().unwrap(),
            "application/json",
        )
        .await;
        w
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.api_addr())
    }

    async fn get(&self, path: &str) -> serde_json::Value {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or(json!(null));
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    async fn post_raw(&self, path: &str, body: Vec<u8>, ct: &str) -> serde_json::Value {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: serde_json::Value = r.json().await.unwrap_or(json!(null));
        assert!(status.is_success(), "POST {path}: {status} {v}");
        v
    }

    /// Waits for a release's gate verdict; returns the gate view.
    async fn gate_verdict(&self, reference: &str) -> serde_json::Value {
        for _ in 0..1000 {
            let g = self
                .get(&format!("/api/v1/releases/{reference}/gate"))
                .await;
            if g["state"] != "scanning" {
                return g;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{reference}: no gate verdict after 10 s");
    }

    /// Publishes (2 signatures), promotes to staging; returns the bytes.
    async fn release(&self, version: &str, signers: usize) -> Vec<u8> {
        let bytes: Vec<u8> = format!("firmware {version} ").repeat(5000).into_bytes();
        self.post_raw("/api/v1/blobs", bytes.clone(), "application/octet-stream")
            .await;
        // The builder's SBOM: the gate needs components to judge.
        let sbom = json!({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
            "components": [{"type": "firmware", "name": "fw", "version": version,
                "purl": format!("pkg:generic/fw@{version}")}]})
        .to_string()
        .into_bytes();
        self.post_raw("/api/v1/blobs", sbom.clone(), "application/octet-stream")
            .await;
        self.post(
            "/api/v1/releases",
            json!({"name": "fw", "version": version, "sha256": sha256(&bytes), "installer": "ab",
                "sbom_sha256": sha256(&sbom)}),
        )
        .await;
        self.gate_verdict(&format!("fw@{version}")).await;
        let s = self
            .get(&format!("/api/v1/releases/fw@{version}/signing"))
            .await;
        let signed = s["signed_canonical"].as_str().unwrap().to_owned();
        for k in &self.rel[..signers] {
            self.post(
                &format!("/api/v1/releases/fw@{version}/signatures"),
                json!({"keyid": k.key_id().to_string(), "sig": hex::encode(k.sign(signed.as_bytes()).unwrap())}),
            )
            .await;
        }
        if signers == 2 {
            self.post(
                &format!("/api/v1/releases/fw@{version}/promote"),
                json!({"environment": "staging"}),
            )
            .await;
        }
        bytes
    }

    async fn deploy(&self, version: &str) {
        self.post(
            "/api/v1/deployments",
            json!({"release": format!("fw@{version}"), "group": "g", "environment": "staging"}),
        )
        .await;
    }

    async fn device(&self, name: &str) -> (UpdateClient, bulwark_proto::DeviceId, PathBuf) {
        let t = self
            .post(
                "/api/v1/enroll-tokens",
                json!({"group": "g", "environment": "staging"}),
            )
            .await;
        let state = self.dir.join(name);
        let resp = bulwark_agent::enroll(&bulwark_agent::EnrollOptions {
            server: format!("https://{}", self.server.device_addr()),
            ca_pem: std::fs::read_to_string(self.dir.join("data/ca.pem")).unwrap(),
            token: t["token"].as_str().unwrap().to_owned(),
            state_dir: state.clone(),
            hostname: None,
        })
        .await
        .unwrap();
        let agent = bulwark_agent::Agent::load(&state, "/nonexistent").unwrap();
        let install = self.dir.join(format!("{name}-install"));
        let client = agent
            .update_client(InstallConfig::new(&state, &install, install.join("hooks")))
            .unwrap();
        (client, resp.device_id, install)
    }

    async fn reported(&self, id: bulwark_proto::DeviceId) -> (String, Option<String>) {
        let u = self
            .server
            .state()
            .store()
            .device_update(id)
            .await
            .unwrap()
            .unwrap();
        (u.phase.as_str().to_owned(), u.outcome)
    }

    async fn sql(&self, q: &str) {
        sqlx::query(sqlx::AssertSqlSafe(q.to_owned()))
            .execute(&self.db)
            .await
            .unwrap();
    }

    /// The server's online image key, as a compromised server has it.
    fn online_key(&self) -> SigningKey {
        let master = bulwark_pki::MasterKey::from_bytes(
            &std::fs::read(self.dir.join("data/master.key")).unwrap(),
        )
        .unwrap();
        let sealed = std::fs::read(self.dir.join("data/tuf-image-online-key.sealed")).unwrap();
        let der = master
            .open(&sealed, b"bulwark tuf image-online key v1")
            .unwrap();
        SigningKey::from_pkcs8_der(&der).unwrap()
    }
}

fn image(install: &Path) -> Vec<u8> {
    std::fs::read(install.join("ab/current/image")).unwrap_or_default()
}

fn refused(o: &CycleOutcome) -> &str {
    match o {
        CycleOutcome::Refused { code, .. } => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn baseline_installs_and_image_listing_alone_does_not_install() {
    let w = World::new().await;
    let v1 = w.release("1.0", 2).await;
    w.deploy("1.0").await;
    let (mut c, id, install) = w.device("d").await;
    let o = c.cycle(w.now).await.unwrap();
    assert!(
        matches!(o, CycleOutcome::Finished(FinalState::Installed(_))),
        "{o:?}"
    );
    assert_eq!(image(&install), v1);
    assert_eq!(
        w.reported(id).await,
        ("installed".into(), Some("installed".into()))
    );
    // The image repository lists 2.0, signed and promoted, but the director
    // does not assign it: nothing happens.
    w.release("2.0", 2).await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(o, CycleOutcome::UpToDate("fw@1.0".into()));
    assert_eq!(image(&install), v1);
}

#[tokio::test]
async fn director_assigns_a_target_the_image_repository_does_not_list() {
    let w = World::new().await;
    w.release("1.0", 2).await;
    // A compromised server creates and deploys a release nobody signed.
    let bytes = b"evil".repeat(100);
    w.post_raw("/api/v1/blobs", bytes.clone(), "application/octet-stream")
        .await;
    let store = w.server.state().store();
    let audit = Audit::system(w.now);
    let rel = store
        .create_release(
            bulwark_store::NewRelease {
                name: "fw".into(),
                version: "6.6.6".into(),
                sha256: sha256(&bytes),
                length: bytes.len() as u64,
                installer: bulwark_store::Installer::Ab,
                install_path: None,
                smoke_test: None,
                smoke_timeout_secs: 60,
            },
            &audit,
        )
        .await
        .unwrap();
    store
        .create_deployment(&rel.id, "g", "staging", &audit)
        .await
        .unwrap();
    let (mut c, id, install) = w.device("d").await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(refused(&o), "unlisted-target", "{o:?}");
    assert!(image(&install).is_empty());
    assert_eq!(
        w.reported(id).await,
        ("refused".into(), Some("unlisted-target".into()))
    );
}

#[tokio::test]
async fn arbitrary_software_is_refused_by_hash() {
    let w = World::new().await;
    let v1 = w.release("1.0", 2).await;
    w.deploy("1.0").await;
    // Swap the stored bytes for others of the same length.
    let path = w.dir.join(format!(
        "data/blobs/sha256/{}/{}",
        &sha256(&v1)[..2],
        sha256(&v1)
    ));
    let mut evil = v1.clone();
    evil[10] ^= 0xff;
    std::fs::write(&path, &evil).unwrap();
    let (mut c, id, install) = w.device("d").await;
    let o = c.cycle(w.now).await.unwrap();
    match &o {
        CycleOutcome::Finished(FinalState::Failed { code, .. }) => {
            assert_eq!(code, "arbitrary-software")
        }
        other => panic!("{other:?}"),
    }
    assert!(image(&install).is_empty(), "nothing unverified goes live");
    assert_eq!(
        w.reported(id).await,
        ("failed".into(), Some("arbitrary-software".into()))
    );
}

#[tokio::test]
async fn freeze_expired_metadata_is_refused() {
    let w = World::new().await;
    w.release("1.0", 2).await;
    w.deploy("1.0").await;
    let (mut c, id, install) = w.device("d").await;
    // The server's clock stands still (it keeps serving old metadata);
    // the device's moves on past every timestamp's expiry.
    let o = c.cycle(w.now + time::Duration::days(3)).await.unwrap();
    assert_eq!(refused(&o), "freeze", "{o:?}");
    assert!(image(&install).is_empty());
    assert_eq!(w.reported(id).await.1.as_deref(), Some("freeze"));
}

#[tokio::test]
async fn rollback_to_older_metadata_is_refused() {
    let w = World::new().await;
    w.release("1.0", 2).await;
    w.release("2.0", 2).await;
    w.deploy("1.0").await;
    let (mut c, id, _install) = w.device("d").await;
    assert!(matches!(
        c.cycle(w.now).await.unwrap(),
        CycleOutcome::Finished(FinalState::Installed(_))
    ));
    // Serve the previous image timestamp again.
    w.sql("DELETE FROM tuf_metadata WHERE repo = 'image' AND role = 'timestamp' \
           AND version = (SELECT MAX(version) FROM tuf_metadata WHERE repo = 'image' AND role = 'timestamp')")
        .await;
    w.deploy("2.0").await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(refused(&o), "rollback", "{o:?}");
    assert_eq!(w.reported(id).await.1.as_deref(), Some("rollback"));
}

#[tokio::test]
async fn mix_and_match_snapshot_is_refused() {
    let w = World::new().await;
    w.release("1.0", 2).await;
    w.release("2.0", 2).await;
    w.deploy("2.0").await;
    // Serve targets version 1 (genuinely signed) where the snapshot says 2.
    w.sql(
        "UPDATE tuf_metadata SET body = (SELECT body FROM tuf_metadata WHERE repo = 'image' \
         AND role = 'targets' AND version = 1) WHERE repo = 'image' AND role = 'targets' AND version = 2",
    )
    .await;
    let (mut c, id, install) = w.device("d").await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(refused(&o), "mix-and-match", "{o:?}");
    assert!(image(&install).is_empty());
    assert_eq!(w.reported(id).await.1.as_deref(), Some("mix-and-match"));
}

#[tokio::test]
async fn endless_data_is_refused() {
    let w = World::new().await;
    w.release("1.0", 2).await;
    w.deploy("1.0").await;
    let huge = vec![b' '; 4 << 20];
    sqlx::query("UPDATE tuf_metadata SET body = $1 WHERE repo = 'image' AND role = 'timestamp'")
        .bind(huge)
        .execute(&w.db)
        .await
        .unwrap();
    let (mut c, id, _) = w.device("d").await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(refused(&o), "endless-data", "{o:?}");
    assert_eq!(w.reported(id).await.1.as_deref(), Some("endless-data"));
}

#[tokio::test]
async fn targets_below_threshold_are_refused() {
    let w = World::new().await;
    // One of two release managers signed; the server refuses to publish…
    w.release("1.0", 1).await;
    let r = w.get("/api/v1/releases/fw@1.0").await;
    assert_eq!(r["status"], "unsigned");
    // …so a compromised server publishes it anyway with its online key.
    let proposal: (Vec<u8>,) = sqlx::query_as("SELECT signed FROM release_proposals")
        .fetch_one(&w.db)
        .await
        .unwrap();
    let signed: Targets = serde_json::from_slice(&proposal.0).unwrap();
    let mut targets = Metadata::new(signed);
    targets.sign(&w.rel[0]).unwrap();
    let online = w.online_key();
    let mut snap = Snapshot::new(w.now + time::Duration::days(7));
    snap.version = 1;
    snap.meta
        .insert("targets.json".into(), MetaFile::version_only(1));
    let mut snap = Metadata::new(snap);
    snap.sign(&online).unwrap();
    let mut ts = Timestamp::new(w.now + time::Duration::days(1));
    ts.version = 1;
    ts.meta.insert(
        "snapshot.json".into(),
        MetaFile::describing(1, &snap.to_vec().unwrap()),
    );
    let mut ts = Metadata::new(ts);
    ts.sign(&online).unwrap();
    let store = w.server.state().store();
    use bulwark_store::TufRole;
    let row = |role: TufRole, version: u64, body: Vec<u8>| bulwark_store::TufRow {
        repo: bulwark_store::Repository::Image,
        role,
        version,
        body,
        expires_at: w.now + time::Duration::days(1),
    };
    store
        .put_tuf(
            &[
                row(TufRole::Targets, 1, targets.to_vec().unwrap()),
                row(TufRole::Snapshot, 1, snap.to_vec().unwrap()),
                row(TufRole::Timestamp, 1, ts.to_vec().unwrap()),
            ],
            // Written as if the server refreshed the repository.
            bulwark_proto::JournalAction::RepoRefresh,
            "repo:image",
            &Audit::system(w.now),
        )
        .await
        .unwrap();
    let rel = store.release("fw", "1.0").await.unwrap().unwrap();
    store
        .create_deployment(&rel.id, "g", "staging", &Audit::system(w.now))
        .await
        .unwrap();
    let (mut c, id, install) = w.device("d").await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(refused(&o), "threshold", "{o:?}");
    assert!(image(&install).is_empty());
    assert_eq!(w.reported(id).await.1.as_deref(), Some("threshold"));
}

#[tokio::test]
async fn quarantine_withholds_updates_except_remediation() {
    let w = World::new().await;
    let v1 = w.release("1.0", 2).await;
    w.deploy("1.0").await;
    let (mut c, id, install) = w.device("d").await;
    assert!(matches!(
        c.cycle(w.now).await.unwrap(),
        CycleOutcome::Finished(FinalState::Installed(_))
    ));
    // Quarantined: the director withdraws the assignment, and a new
    // ordinary deployment does not reach the device.
    w.post(
        &format!("/api/v1/devices/{id}/quarantine"),
        json!({"reason": "port scan"}),
    )
    .await;
    w.release("2.0", 2).await;
    w.deploy("2.0").await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(o, CycleOutcome::NothingAssigned, "{o:?}");
    assert_eq!(image(&install), v1);
    // A remediation deployment does.
    let v3 = w.release("3.0", 2).await;
    w.post(
        "/api/v1/deployments",
        json!({"release": "fw@3.0", "group": "g", "environment": "staging", "remediation": true}),
    )
    .await;
    let o = c.cycle(w.now).await.unwrap();
    assert!(
        matches!(o, CycleOutcome::Finished(FinalState::Installed(_))),
        "{o:?}"
    );
    assert_eq!(image(&install), v3);
    // Released: the group's newest deployment applies again.
    w.post(
        &format!("/api/v1/devices/{id}/release"),
        json!({"reason": "cleaned"}),
    )
    .await;
    let o = c.cycle(w.now).await.unwrap();
    assert_eq!(o, CycleOutcome::UpToDate("fw@3.0".into()), "{o:?}");
}
