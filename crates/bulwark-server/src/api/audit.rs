//! The audit journal's read API: entries, proofs, checkpoints, and the log
//! as C2SP tlog-tiles under `/api/v1/audit/log/`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bulwark_proto::JournalEntry;
use bulwark_store::JournalRow;

use super::dto::{
    AuditEntryView, AuditPage, AuditQuery, CheckpointView, ConsistencyView, InclusionView,
    JournalKeyView, ProofQuery,
};
use crate::auth::{Authorized, need};
use crate::error::{ApiError, Json, Path, Query};
use crate::journal::with_nodes;
use crate::state::AppState;

/// An entry as served: its stored bytes always, decoded when they are a
/// canonical entry. A damaged or tampered row is evidence, not a server
/// error: `bulwark audit verify` must get its bytes to name it.
fn view(row: JournalRow) -> AuditEntryView {
    let (entry, problem) = match JournalEntry::from_canonical(&row.entry) {
        Ok(e) => (Some(e), None),
        Err(e) => {
            tracing::warn!(seq = row.seq, error = %e, "journal row is not a canonical entry");
            (None, Some(e.to_string()))
        }
    };
    AuditEntryView {
        seq: row.seq,
        leaf_hash: hex::encode(row.leaf_hash),
        raw: STANDARD.encode(&row.entry),
        entry,
        problem,
    }
}

/// A position or size from a request, refused above what the journal's
/// tables can hold (signed 64-bit) rather than clamped or wrapped.
fn stored_int(field: &str, v: u64) -> Result<u64, ApiError> {
    if v > super::dto::words::MAX_STORED_INT {
        return Err(ApiError::InvalidFields(vec![format!(
            "{field}: at most {}",
            super::dto::words::MAX_STORED_INT
        )]));
    }
    Ok(v)
}

fn hexes(proof: &[bulwark_tlog::Hash]) -> Vec<String> {
    proof.iter().map(hex::encode).collect()
}

async fn newest_checkpoint(state: &AppState) -> Result<(u64, String), ApiError> {
    state
        .0
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::NotFound("checkpoint (the journal is empty)".into()))
}

/// Journal entries, in order.
#[utoipa::path(get, path = "/api/v1/audit/entries", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 400, body = bulwark_proto::ErrorBody)))]
pub(crate) async fn entries(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = q.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::InvalidFields(vec![
            "limit: must be between 1 and 1000".into(),
        ]));
    }
    let start = stored_int("start", q.start.unwrap_or(0))?;
    let (size, _) = state.0.store.journal_root().await?;
    let rows = state.0.store.journal_entries(start, limit).await?;
    let next = rows
        .last()
        .map(|r| r.seq + 1)
        .filter(|n| *n < size && rows.len() == limit as usize);
    let entries = rows.into_iter().map(view).collect();
    Ok(Json(AuditPage {
        entries,
        size,
        next,
    }))
}

/// One entry with its inclusion proof against a signed checkpoint.
#[utoipa::path(get, path = "/api/v1/audit/entries/{seq}", tag = "audit", params(("seq" = u64, Path, description = "Sequence number", maximum = 9223372036854775807_u64), ProofQuery),
    responses((status = 200, body = InclusionView), (status = 400, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody),
        (status = 409, description = "the stored journal is damaged (`journal_damaged`)", body = bulwark_proto::ErrorBody)))]
pub(crate) async fn entry(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(seq): Path<String>,
    Query(q): Query<ProofQuery>,
) -> Result<Json<InclusionView>, ApiError> {
    let seq: u64 = seq
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{seq:?} is not a sequence number")))?;
    let seq = stored_int("seq", seq)?;
    let size = q.size.map(|s| stored_int("size", s)).transpose()?;
    let (size, note) = match size {
        None => Some(newest_checkpoint(&state).await?),
        Some(s) => state.0.store.checkpoint(s).await?.map(|note| (s, note)),
    }
    .ok_or_else(|| ApiError::NotFound("signed checkpoint of that size".into()))?;
    if seq >= size {
        return Err(ApiError::NotFound(format!(
            "entry {seq} in a checkpoint (newest covers {size} entries)"
        )));
    }
    let row = state
        .0
        .store
        .journal_entries(seq, 1)
        .await?
        .pop()
        .filter(|r| r.seq == seq)
        .ok_or_else(|| ApiError::NotFound(format!("entry {seq}")))?;
    let proof = with_nodes(&*state.0.store, |src| {
        bulwark_tlog::inclusion_proof(seq, size, src)
    })
    .await?;
    Ok(Json(InclusionView {
        entry: view(row),
        size,
        proof: hexes(&proof),
        checkpoint: note,
    }))
}

/// RFC 9162 consistency proof between two tree sizes.
#[utoipa::path(get, path = "/api/v1/audit/consistency", tag = "audit", params(ProofQuery),
    responses((status = 200, body = ConsistencyView), (status = 400, body = bulwark_proto::ErrorBody), (status = 404, body = bulwark_proto::ErrorBody),
        (status = 409, description = "the stored journal is damaged (`journal_damaged`)", body = bulwark_proto::ErrorBody)))]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Query(q): Query<ProofQuery>,
) -> Result<Json<ConsistencyView>, ApiError> {
    let from = q.from.map(|f| stored_int("from", f)).transpose()?;
    let size = q.size.map(|s| stored_int("size", s)).transpose()?;
    let (journal_size, _) = state.0.store.journal_root().await?;
    let size = match size {
        Some(s) => s,
        None => newest_checkpoint(&state).await?.0,
    };
    let from = from.ok_or_else(|| ApiError::InvalidFields(vec!["from: required".into()]))?;
    if from > size || size > journal_size {
        return Err(ApiError::InvalidFields(vec![format!(
            "need from <= size <= {journal_size} (got {from}, {size})"
        )]));
    }
    let proof = with_nodes(&*state.0.store, |src| {
        bulwark_tlog::consistency_proof(from, size, src)
    })
    .await?;
    Ok(Json(ConsistencyView {
        from,
        size,
        proof: hexes(&proof),
    }))
}

/// Every signed checkpoint, oldest first.
#[utoipa::path(get, path = "/api/v1/audit/checkpoints", tag = "audit",
    responses((status = 200, body = Vec<CheckpointView>)))]
pub(crate) async fn checkpoints(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<Vec<CheckpointView>>, ApiError> {
    let all = state.0.store.checkpoints().await?;
    Ok(Json(
        all.into_iter()
            .map(|(size, note)| CheckpointView { size, note })
            .collect(),
    ))
}

/// The journal's origin and checkpoint verifier key.
#[utoipa::path(get, path = "/api/v1/audit/key", tag = "audit", responses((status = 200, body = JournalKeyView)))]
pub(crate) async fn key(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Json<JournalKeyView>, ApiError> {
    let j = &state.0.journal;
    Ok(Json(JournalKeyView {
        origin: j.origin.clone(),
        vkey: j.signer.verifier_key(),
    }))
}

/// tlog-tiles: the newest checkpoint.
#[utoipa::path(get, path = "/api/v1/audit/log/checkpoint", tag = "audit",
    responses((status = 200, description = "C2SP signed checkpoint note", content_type = "text/plain")))]
pub(crate) async fn log_checkpoint(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
) -> Result<Response, ApiError> {
    let (_, note) = newest_checkpoint(&state).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        note,
    )
        .into_response())
}

/// A tile path: `tile/<L>/<N…>[.p/<W>]` or `tile/entries/<N…>[.p/<W>]`.
#[derive(Debug, PartialEq, Eq)]
struct TileRequest {
    /// `None` for an entry bundle.
    level: Option<u8>,
    index: u64,
    width: Option<u16>,
}

fn parse_tile_path(path: &str) -> Option<TileRequest> {
    let rest = path.strip_prefix("tile/")?;
    let (kind, rest) = rest.split_once('/')?;
    let level = if kind == "entries" {
        None
    } else {
        Some(kind.parse::<u8>().ok().filter(|l| *l <= 63)?)
    };
    let (index_part, width) = match rest.split_once(".p/") {
        Some((i, w)) => (
            i,
            Some(w.parse::<u16>().ok().filter(|w| (1..=255).contains(w))?),
        ),
        None => (rest, None),
    };
    let mut index: u64 = 0;
    let segs: Vec<&str> = index_part.split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let digits = if last { *seg } else { seg.strip_prefix('x')? };
        if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        index = index
            .checked_mul(1000)?
            .checked_add(digits.parse::<u64>().ok()?)?;
    }
    // Only the canonical spelling is served (one URL per tile, for caches).
    let canonical = match level {
        Some(l) => bulwark_tlog::tile_path(l, index, width).ok()?,
        None => bulwark_tlog::entries_path(index, width).ok()?,
    };
    (canonical == path).then_some(TileRequest {
        level,
        index,
        width,
    })
}

/// tlog-tiles: hash tiles and entry bundles, for transparency tooling.
#[utoipa::path(get, path = "/api/v1/audit/log/{path}", tag = "audit", params(("path" = String, Path, description = "tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")),
    responses((status = 200, description = "tile bytes", content_type = "application/octet-stream"), (status = 404, body = bulwark_proto::ErrorBody),
        (status = 409, description = "the stored journal is damaged (`journal_damaged`)", body = bulwark_proto::ErrorBody)))]
pub(crate) async fn log_tile(
    State(state): State<AppState>,
    _: Authorized<need::ReadFleet>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    let req = parse_tile_path(&path).ok_or_else(|| ApiError::NotFound(format!("tile {path:?}")))?;
    let (size, _) = newest_checkpoint(&state).await?;
    let width = u64::from(req.width.unwrap_or(256));
    // How many nodes of this tile's level exist in the checkpointed tree.
    // Levels from 8 up hold no node of a 64-bit tree (a plain shift past
    // 63 bits would wrap in release builds): nothing there, a 404.
    let level_shift = 8 * u32::from(req.level.unwrap_or(0));
    let have = size
        .checked_shr(level_shift)
        .unwrap_or(0)
        .saturating_sub(req.index.saturating_mul(256))
        .min(256);
    if have < width || (req.width.is_some() && have == 256) {
        return Err(ApiError::NotFound(format!(
            "tile {path:?} at checkpoint size {size}"
        )));
    }
    let body = match req.level {
        Some(level) => {
            let w = width as u16;
            with_nodes(&*state.0.store, |src| {
                bulwark_tlog::tile_bytes(level, req.index, w, src)
            })
            .await?
        }
        None => {
            let first = req.index * 256;
            let rows = state.0.store.journal_entries(first, width as u32).await?;
            // A bundle is exactly its entries: a deleted row is reported,
            // not served as a shorter or shifted bundle.
            let gap = (first..)
                .zip(&rows)
                .find(|(want, r)| r.seq != *want)
                .map(|(want, _)| want)
                .or_else(|| (rows.len() as u64 != width).then(|| first + rows.len() as u64));
            if let Some(seq) = gap {
                return Err(ApiError::JournalDamaged(format!("entry {seq} is missing")));
            }
            let refs: Vec<&[u8]> = rows.iter().map(|r| r.entry.as_slice()).collect();
            bulwark_tlog::encode_entry_bundle(&refs).map_err(ApiError::internal)?
        }
    };
    let cache = if req.width.is_none() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=5"
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_only_in_canonical_form() {
        assert_eq!(
            parse_tile_path("tile/0/000"),
            Some(TileRequest {
                level: Some(0),
                index: 0,
                width: None
            })
        );
        assert_eq!(
            parse_tile_path("tile/1/x001/x234/067.p/8"),
            Some(TileRequest {
                level: Some(1),
                index: 1_234_067,
                width: Some(8)
            })
        );
        assert_eq!(
            parse_tile_path("tile/entries/005"),
            Some(TileRequest {
                level: None,
                index: 5,
                width: None
            })
        );
        for bad in [
            "tile/0/0",
            "tile/0/x000/005",
            "tile/0/005.p/0",
            "tile/0/005.p/256",
            "tile/0/../etc",
            "tile/99/000",
            "tiles/0/000",
            "tile/0/005/",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }
}
