//! The journal served as C2SP tlog-tiles: the checkpoint, hash tiles and
//! entry bundles match what an independent client computes from entries.

use crate::common;

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use bulwark_proto::{JournalActor, JournalEntry};
use bulwark_tlog::{Checkpoint, MemoryTree, decode_entry_bundle, leaf_hash, tile_bytes};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

fn entry(i: i64) -> JournalEntry {
    JournalEntry {
        time_ms: i,
        actor: JournalActor {
            kind: "engine".into(),
            id: "test".into(),
            name: None,
            token_id: None,
        },
        action: format!("test.{i}"),
        target: format!("thing:{i}"),
        request_id: None,
        source: None,
        before: None,
        after: None,
        detail: Default::default(),
    }
}

#[tokio::test]
async fn tiles_and_bundles_match_an_independent_computation() {
    let common::Fixture {
        state, store, vars, ..
    } = common::fixture().await;
    // The fixture's state signs with this key.
    let verifier = common::journal_signer().verifier();
    let entries: Vec<_> = (0..300).map(entry).collect();
    store.append_journal(&entries).await.unwrap();
    let size = state.checkpoint_journal().await.unwrap().unwrap();
    let app = bulwark_server::api::router(state.clone(), common::MAX_BODY, Duration::from_secs(5));
    let get = |path: String| {
        let app = app.clone();
        let token = vars["admin"].clone();
        async move {
            let req = Request::get(path)
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap();
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            (
                status,
                resp.into_body()
                    .collect()
                    .await
                    .unwrap()
                    .to_bytes()
                    .to_vec(),
            )
        }
    };

    // The client rebuilds the tree from every entry it can read.
    let rows = store.journal_entries(0, 1000).await.unwrap();
    assert_eq!(rows.len() as u64, size);
    let mut tree = MemoryTree::new();
    for r in &rows {
        tree.append(leaf_hash(&r.entry));
    }
    let (status, note) = get("/api/v1/audit/log/checkpoint".into()).await;
    assert_eq!(status, 200);
    let (cp, _) = Checkpoint::open(std::str::from_utf8(&note).unwrap(), &[verifier]).unwrap();
    assert_eq!((cp.size, cp.root_hash), (size, tree.root()));

    // Every tile of the checkpointed tree, full and partial.
    let tiles = bulwark_tlog::tiles_for_size(size);
    assert!(tiles.len() >= 3, "{tiles:?}");
    for t in &tiles {
        let (status, body) = get(format!("/api/v1/audit/log/{}", t.path().unwrap())).await;
        assert_eq!(status, 200, "{}", t.path().unwrap());
        assert_eq!(
            body,
            tile_bytes(t.level, t.index, t.width, &tree).unwrap(),
            "{}",
            t.path().unwrap()
        );
        if t.level == 0 {
            let (status, bundle) =
                get(format!("/api/v1/audit/log/{}", t.entries_path().unwrap())).await;
            assert_eq!(status, 200);
            let got = decode_entry_bundle(&bundle).unwrap();
            let start = (t.index * 256) as usize;
            for (i, e) in got.iter().enumerate() {
                assert_eq!(*e, rows[start + i].entry.as_slice());
            }
        }
    }
    // Tiles beyond the checkpoint, levels beyond a 64-bit tree, non-canonical
    // paths and traversal are 404.
    let beyond = bulwark_tlog::tile_path(0, 5, None).unwrap();
    for bad in [
        beyond.as_str(),
        "tile/0/1",
        "tile/0/../../etc/passwd",
        "tile/0/000.p/0",
        "nonsense",
        // Levels whose shift passes 63 bits (a wrapped shift once made
        // these a 500).
        "tile/8/000.p/1",
        "tile/16/000.p/1",
        "tile/24/000",
        "tile/63/000.p/1",
        "tile/7/000.p/1",
    ] {
        let (status, _) = get(format!("/api/v1/audit/log/{bad}")).await;
        assert_eq!(status, 404, "{bad}");
    }
    // Inclusion proof from the API verifies against the signed root.
    let (status, body) = get("/api/v1/audit/entries/123".into()).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let proof: Vec<[u8; 32]> = v["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex_hash(h.as_str().unwrap()))
        .collect();
    bulwark_tlog::verify_inclusion(
        &leaf_hash(&rows[123].entry),
        123,
        size,
        &proof,
        &cp.root_hash,
    )
    .unwrap();
    let (status, body) = get(format!("/api/v1/audit/consistency?from=7&size={size}")).await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let proof: Vec<[u8; 32]> = v["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| hex_hash(h.as_str().unwrap()))
        .collect();
    bulwark_tlog::verify_consistency(7, size, &proof, &tree.root_at(7).unwrap(), &cp.root_hash)
        .unwrap();
}

fn hex_hash(s: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}
