//! Attack scenarios against the client workflow, over an in-memory
//! repository written with this crate's own writer API. Each attack must
//! fail with the right `UpdateError::kind`. Time is passed in; nothing
//! sleeps and nothing touches the network or the disk.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bulwark_tuf::{
    Fetch, FetchError, Limits, LocalMetadata, MetaFile, Metadata, Root, SigningKey, Snapshot,
    TargetFile, TargetVerifier, Targets, Timestamp, UpdateError, Updater,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);
const EXPIRES: OffsetDateTime = datetime!(2027-01-01 0:00 UTC);

/// Drives a future that never waits (the in-memory fetcher is synchronous).
fn block_on<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("in-memory future should not wait"),
    }
}

#[derive(Debug, Clone, Default)]
struct MemFetch {
    files: BTreeMap<String, Vec<u8>>,
}

impl Fetch for MemFetch {
    async fn fetch(&mut self, path: &str, max_len: u64) -> Result<Vec<u8>, FetchError> {
        let bytes = self.files.get(path).ok_or(FetchError::NotFound)?;
        if bytes.len() as u64 > max_len {
            return Err(FetchError::TooLarge { limit: max_len });
        }
        Ok(bytes.clone())
    }
}

#[derive(Debug, Clone, Default)]
struct MemStore {
    roles: BTreeMap<String, Vec<u8>>,
}

impl LocalMetadata for MemStore {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        self.roles.get(role).cloned()
    }
    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), String> {
        self.roles.insert(role.to_owned(), bytes.to_vec());
        Ok(())
    }
}

fn key() -> SigningKey {
    SigningKey::generate_ed25519().unwrap().0
}

/// A repository: current unsigned metadata plus what is being served.
struct Repo {
    root_keys: Vec<SigningKey>,
    timestamp_key: SigningKey,
    snapshot_key: SigningKey,
    targets_keys: Vec<SigningKey>,
    root: Root,
    timestamp: Timestamp,
    snapshot: Snapshot,
    targets: Targets,
    served: MemFetch,
    artifacts: BTreeMap<String, Vec<u8>>,
}

impl Repo {
    fn new() -> Repo {
        let (root_key, timestamp_key, snapshot_key, targets_key) = (key(), key(), key(), key());
        let mut root = Root::new(EXPIRES);
        root.add_key("root", root_key.public().clone());
        root.add_key("timestamp", timestamp_key.public().clone());
        root.add_key("snapshot", snapshot_key.public().clone());
        root.add_key("targets", targets_key.public().clone());
        let mut repo = Repo {
            root_keys: vec![root_key],
            timestamp_key,
            snapshot_key,
            targets_keys: vec![targets_key],
            root,
            timestamp: Timestamp::new(EXPIRES),
            snapshot: Snapshot::new(EXPIRES),
            targets: Targets::new(EXPIRES),
            served: MemFetch::default(),
            artifacts: BTreeMap::new(),
        };
        repo.publish_root();
        repo.publish_targets();
        repo
    }

    fn sign<T: bulwark_tuf::Role>(signed: &T, keys: &[&SigningKey]) -> Vec<u8> {
        let mut md = Metadata::new(signed.clone());
        for k in keys {
            md.sign(k).unwrap();
        }
        md.to_vec().unwrap()
    }

    fn publish_root(&mut self) {
        let keys: Vec<&SigningKey> = self.root_keys.iter().collect();
        let bytes = Repo::sign(&self.root, &keys);
        self.served
            .files
            .insert(format!("{}.root.json", self.root.version), bytes);
    }

    /// Publishes targets, snapshot and timestamp (bumping each after the first).
    fn publish_targets(&mut self) {
        let keys: Vec<&SigningKey> = self.targets_keys.iter().collect();
        let targets = Repo::sign(&self.targets, &keys);
        self.served
            .files
            .insert(format!("{}.targets.json", self.targets.version), targets);
        self.snapshot.meta.insert(
            "targets.json".into(),
            MetaFile::version_only(self.targets.version),
        );
        self.publish_snapshot();
    }

    fn publish_snapshot(&mut self) {
        let snapshot = Repo::sign(&self.snapshot, &[&self.snapshot_key]);
        self.timestamp.meta.insert(
            "snapshot.json".into(),
            MetaFile::describing(self.snapshot.version, &snapshot),
        );
        self.served
            .files
            .insert(format!("{}.snapshot.json", self.snapshot.version), snapshot);
        self.publish_timestamp();
    }

    fn publish_timestamp(&mut self) {
        let ts = Repo::sign(&self.timestamp, &[&self.timestamp_key]);
        self.served.files.insert("timestamp.json".into(), ts);
    }

    fn bump(&mut self) {
        self.targets.version += 1;
        self.snapshot.version += 1;
        self.timestamp.version += 1;
        self.publish_targets();
    }

    fn add_artifact(&mut self, path: &str, data: &[u8]) {
        self.targets
            .targets
            .insert(path.into(), TargetFile::from_bytes(data));
        self.artifacts.insert(path.into(), data.to_vec());
    }

    /// A client store holding the root as first published.
    fn client_store(&self) -> MemStore {
        let mut store = MemStore::default();
        store
            .store("root", &self.served.files["1.root.json"])
            .unwrap();
        store
    }
}

/// Runs one client session ("process"): refresh with `now`.
fn refresh(repo: &Repo, store: &mut MemStore, now: OffsetDateTime) -> Result<(), UpdateError> {
    refresh_with(repo, store, now, Limits::default())
}

fn refresh_with(
    repo: &Repo,
    store: &mut MemStore,
    now: OffsetDateTime,
    limits: Limits,
) -> Result<(), UpdateError> {
    let mut updater = Updater::new(repo.served.clone(), store.clone(), limits)?;
    let result = block_on(updater.refresh(now));
    *store = updater.into_parts().1;
    result
}

#[track_caller]
fn assert_kind(result: Result<(), UpdateError>, kind: &str) {
    match result {
        Ok(()) => panic!("expected a {kind} error, got success"),
        Err(e) => assert_eq!(e.kind(), kind, "unexpected error: {e}"),
    }
}

#[test]
fn happy_path_and_target_download() {
    let mut repo = Repo::new();
    repo.add_artifact("dir/app.bin", b"firmware v1");
    repo.bump();
    let mut updater =
        Updater::new(repo.served.clone(), repo.client_store(), Limits::default()).unwrap();
    let info = block_on(updater.target_info("dir/app.bin", NOW))
        .unwrap()
        .expect("target listed");
    assert_eq!(
        updater.target_download_path("dir/app.bin", &info),
        format!("dir/{}.app.bin", info.sha256().unwrap())
    );
    let mut verifier = TargetVerifier::new(&info).unwrap();
    for chunk in repo.artifacts["dir/app.bin"].chunks(3) {
        verifier.update(chunk).unwrap();
    }
    verifier.finish().unwrap();
    assert_eq!(block_on(updater.target_info("missing", NOW)).unwrap(), None);
    let (_, store) = updater.into_parts();
    for role in ["root", "timestamp", "snapshot", "targets"] {
        assert!(store.roles.contains_key(role), "{role} stored");
    }
}

#[test]
fn rollback_timestamp() {
    let mut repo = Repo::new();
    let old_timestamp = repo.served.files["timestamp.json"].clone();
    repo.bump();
    let mut store = repo.client_store();
    refresh(&repo, &mut store, NOW).unwrap();
    repo.served
        .files
        .insert("timestamp.json".into(), old_timestamp);
    assert_kind(refresh(&repo, &mut store, NOW), "rollback");
}

#[test]
fn rollback_snapshot_version_in_timestamp() {
    let mut repo = Repo::new();
    repo.bump();
    let mut store = repo.client_store();
    refresh(&repo, &mut store, NOW).unwrap();
    // A newer timestamp that points back to snapshot v1.
    repo.timestamp.version += 1;
    repo.timestamp
        .meta
        .insert("snapshot.json".into(), MetaFile::version_only(1));
    repo.publish_timestamp();
    assert_kind(refresh(&repo, &mut store, NOW), "rollback");
}

#[test]
fn rollback_targets_version_in_snapshot() {
    let mut repo = Repo::new();
    repo.bump();
    let mut store = repo.client_store();
    refresh(&repo, &mut store, NOW).unwrap();
    // New snapshot lists targets v1 again.
    repo.snapshot.version += 1;
    repo.timestamp.version += 1;
    repo.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::version_only(1));
    repo.publish_snapshot();
    assert_kind(refresh(&repo, &mut store, NOW), "rollback");
}

#[test]
fn freeze_expired_timestamp() {
    let mut repo = Repo::new();
    repo.timestamp.expires = NOW - Duration::hours(1);
    repo.timestamp.version += 1;
    repo.publish_timestamp();
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, NOW), "freeze");
    assert!(
        !store.roles.contains_key("timestamp"),
        "expired timestamp not stored"
    );
}

#[test]
fn freeze_expired_root() {
    let repo = Repo::new();
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, EXPIRES), "freeze");
}

#[test]
fn mix_and_match_targets_version() {
    let mut repo = Repo::new();
    // Snapshot says targets v2, but 2.targets.json holds a (validly signed) v3.
    repo.targets.version = 3;
    let keys: Vec<&SigningKey> = repo.targets_keys.iter().collect();
    let v3 = Repo::sign(&repo.targets, &keys);
    repo.served.files.insert("2.targets.json".into(), v3);
    repo.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::version_only(2));
    repo.snapshot.version += 1;
    repo.timestamp.version += 1;
    repo.publish_snapshot();
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, NOW), "mix-and-match");
    assert!(!store.roles.contains_key("targets"));
}

#[test]
fn mix_and_match_targets_hash() {
    let mut repo = Repo::new();
    repo.bump();
    let good = repo.served.files["2.targets.json"].clone();
    repo.snapshot
        .meta
        .insert("targets.json".into(), MetaFile::describing(2, &good));
    repo.snapshot.version += 1;
    repo.timestamp.version += 1;
    repo.publish_snapshot();
    // Serve other (validly signed, same length) bytes for the same version.
    repo.targets.expires = EXPIRES + Duration::days(1);
    let keys: Vec<&SigningKey> = repo.targets_keys.iter().collect();
    let other = Repo::sign(&repo.targets, &keys);
    repo.served.files.insert("2.targets.json".into(), other);
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, NOW), "mix-and-match");
}

#[test]
fn arbitrary_software_target_hash_and_length() {
    let info = TargetFile::from_bytes(b"genuine firmware");
    let mut v = TargetVerifier::new(&info).unwrap();
    v.update(b"evil!!! firmware").unwrap();
    assert_eq!(v.finish().unwrap_err().kind(), "arbitrary-software");

    let mut v = TargetVerifier::new(&info).unwrap();
    v.update(b"genuine").unwrap();
    assert_eq!(v.finish().unwrap_err().kind(), "arbitrary-software");
}

#[test]
fn endless_data_target_longer_than_length() {
    let info = TargetFile::from_bytes(b"genuine firmware");
    let mut v = TargetVerifier::new(&info).unwrap();
    v.update(b"genuine firmware").unwrap();
    assert_eq!(v.update(b"+more").unwrap_err().kind(), "endless-data");
}

#[test]
fn unsupported_hash_algorithm_only() {
    let mut info = TargetFile::from_bytes(b"data");
    let digest = info.hashes.remove("sha256").unwrap();
    info.hashes.insert("md5".into(), digest);
    assert_eq!(
        TargetVerifier::new(&info).unwrap_err().kind(),
        "unsupported-hash"
    );
}

#[test]
fn endless_data_metadata_over_limit() {
    let repo = Repo::new();
    let mut store = repo.client_store();
    let limits = Limits {
        timestamp_max: 64,
        ..Limits::default()
    };
    assert_kind(refresh_with(&repo, &mut store, NOW, limits), "endless-data");
}

#[test]
fn threshold_targets_two_of_two_with_one_signature() {
    let mut repo = Repo::new();
    let second = key();
    repo.root.add_key("targets", second.public().clone());
    repo.root.set_threshold("targets", 2);
    repo.root.version += 1;
    repo.publish_root();
    // Only the first targets key signs.
    repo.bump();
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, NOW), "threshold");
    assert!(!store.roles.contains_key("targets"));
    // Root v2 and the rest were accepted before targets failed.
    let root = Metadata::<Root>::from_slice(&store.roles["root"]).unwrap();
    assert_eq!(root.signed().version, 2);

    // With both signatures it verifies.
    repo.targets_keys.push(second);
    repo.bump();
    refresh(&repo, &mut store, NOW).unwrap();
}

#[test]
fn root_rotation_needs_old_and_new_threshold() {
    let mut repo = Repo::new();
    let new_key = key();
    let old_id = repo.root_keys[0].key_id();
    repo.root.revoke_key("root", &old_id);
    repo.root.add_key("root", new_key.public().clone());
    repo.root.version += 1;
    // Signed by the new key only: the trusted (old) root's threshold fails.
    repo.root_keys = vec![new_key];
    repo.publish_root();
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, NOW), "threshold");

    // Cross-signed by old and new: accepted.
    let mut root = Metadata::new(repo.root.clone());
    root.sign(&repo.root_keys[0]).unwrap();
    let old = Repo::new().root_keys.remove(0); // an unrelated key: still fails
    root.sign(&old).unwrap();
    repo.served
        .files
        .insert("2.root.json".into(), root.to_vec().unwrap());
    assert_kind(refresh(&repo, &mut store, NOW), "threshold");
}

#[test]
fn malformed_metadata() {
    let mut repo = Repo::new();
    repo.served
        .files
        .insert("timestamp.json".into(), b"{\"signed\": 1}".to_vec());
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, NOW), "malformed");
}

#[test]
fn fetch_failure() {
    let mut repo = Repo::new();
    repo.served.files.remove("1.snapshot.json");
    let mut store = repo.client_store();
    assert_kind(refresh(&repo, &mut store, NOW), "fetch");
}

#[test]
fn signed_metadata_round_trips_and_replaces_signatures() {
    let k = key();
    let mut md = Metadata::new(Targets::new(EXPIRES));
    md.sign(&k).unwrap();
    md.sign(&k).unwrap();
    assert_eq!(md.signatures().len(), 1, "same key id replaces");
    let bytes = md.to_vec().unwrap();
    let parsed = Metadata::<Targets>::from_slice(&bytes).unwrap();
    assert_eq!(parsed.signed_bytes().unwrap(), md.signed_bytes().unwrap());
    assert!(
        Metadata::<Snapshot>::from_slice(&bytes).is_err(),
        "_type checked"
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains("\"expires\":\"2027-01-01T00:00:00Z\""),
        "{text}"
    );
    assert!(
        format!("{k:?}").contains("[redacted]"),
        "Debug redacts the secret"
    );
}

/// Publishes delegated role `name` (signed by `key`) and lists it in snapshot.
fn publish_delegated(repo: &mut Repo, name: &str, md: &Targets, key: &SigningKey) {
    let bytes = Repo::sign(md, &[key]);
    repo.served
        .files
        .insert(format!("{}.{name}.json", md.version), bytes);
    repo.snapshot
        .meta
        .insert(format!("{name}.json"), MetaFile::version_only(md.version));
}

fn delegate(parent: &mut Targets, name: &str, paths: &[&str], terminating: bool, key: &SigningKey) {
    let delegations = parent
        .delegations
        .get_or_insert_with(|| bulwark_tuf::Delegations {
            keys: BTreeMap::new(),
            roles: Some(Vec::new()),
            succinct_roles: None,
            unrecognized: BTreeMap::new(),
        });
    delegations.keys.insert(key.key_id(), key.public().clone());
    delegations
        .roles
        .get_or_insert_with(Vec::new)
        .push(bulwark_tuf::DelegatedRole {
            name: name.into(),
            keyids: vec![key.key_id()],
            threshold: 1,
            terminating,
            paths: Some(paths.iter().map(|p| (*p).to_owned()).collect()),
            path_hash_prefixes: None,
            unrecognized: BTreeMap::new(),
        });
}

#[test]
fn delegation_search_order_terminating_and_reverification() {
    let mut repo = Repo::new();
    let (a_key, b_key, shared_key, wrong_key) = (key(), key(), key(), key());
    delegate(&mut repo.targets, "a", &["apps/*"], true, &a_key);
    delegate(
        &mut repo.targets,
        "b",
        &["apps/*", "other/*"],
        false,
        &b_key,
    );

    // "a" is terminating for apps/*: "b" is never consulted for apps/.
    let mut a = Targets::new(EXPIRES);
    a.targets
        .insert("apps/x".into(), TargetFile::from_bytes(b"from a"));
    // "a" and "b" both delegate "shared"; only a's key signs it.
    delegate(&mut a, "shared", &["apps/*"], false, &shared_key);
    let mut b = Targets::new(EXPIRES);
    b.targets
        .insert("apps/y".into(), TargetFile::from_bytes(b"from b"));
    delegate(&mut b, "shared", &["other/*"], false, &wrong_key);
    let mut shared = Targets::new(EXPIRES);
    shared
        .targets
        .insert("apps/z".into(), TargetFile::from_bytes(b"shared a"));
    shared
        .targets
        .insert("other/z".into(), TargetFile::from_bytes(b"shared b"));
    publish_delegated(&mut repo, "a", &a, &a_key);
    publish_delegated(&mut repo, "b", &b, &b_key);
    publish_delegated(&mut repo, "shared", &shared, &shared_key);
    repo.bump();

    let mut updater =
        Updater::new(repo.served.clone(), repo.client_store(), Limits::default()).unwrap();
    let found = |u: &mut Updater<MemFetch, MemStore>, path: &str| {
        block_on(u.target_info(path, NOW)).map(|t| t.map(|t| t.length))
    };
    assert_eq!(found(&mut updater, "apps/x").unwrap(), Some(6));
    // apps/y is only in "b", which "a" (terminating) hides.
    assert_eq!(found(&mut updater, "apps/y").unwrap(), None);
    // Through a: shared is signed by the key a delegates to.
    assert_eq!(found(&mut updater, "apps/z").unwrap(), Some(8));
    // Through b: the same (cached) role must be re-verified against b's
    // delegation, whose key did not sign it.
    let err = found(&mut updater, "other/z").unwrap_err();
    assert_eq!(err.kind(), "threshold", "{err}");
}
