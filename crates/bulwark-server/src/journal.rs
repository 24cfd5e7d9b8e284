//! The audit journal's online half: the checkpoint signing key, the
//! checkpointer, and proofs served from stored nodes.
//!
//! Entries are appended by the store, inside each change's transaction.
//! This module turns the log into signed C2SP checkpoints (at most
//! `checkpoint_interval` after an append) and answers proof requests by
//! fetching exactly the perfect-subtree nodes a proof needs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bulwark_store::Store;
use bulwark_tlog::{Checkpoint, Hash, NodeSource, NoteSigner};

use crate::error::ApiError;

/// The journal's identity and signing key.
pub(crate) struct Journal {
    pub(crate) signer: NoteSigner,
    pub(crate) origin: String,
    checkpointed: AtomicU64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("origin", &self.origin)
            .field("signer", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Journal {
    pub(crate) fn new(signer: NoteSigner, origin: String) -> Self {
        Self {
            signer,
            origin,
            checkpointed: AtomicU64::new(0),
        }
    }

    /// Signs a checkpoint for the journal's current size, if it grew since
    /// the last one. Returns the size checkpointed.
    pub(crate) async fn checkpoint(
        &self,
        store: &dyn Store,
        now: time::OffsetDateTime,
    ) -> anyhow::Result<Option<u64>> {
        let (size, root) = store.journal_root().await?;
        let done = self.checkpointed.load(Ordering::Acquire);
        if size == 0 || size <= done {
            return Ok(None);
        }
        let note = Checkpoint::new(&self.origin, size, root).sign(&self.signer)?;
        store.put_checkpoint(size, &note, now).await?;
        self.checkpointed.fetch_max(size, Ordering::AcqRel);
        Ok(Some(size))
    }

    /// Remembers the newest stored checkpoint (at start-up).
    pub(crate) fn resume(&self, size: u64) {
        self.checkpointed.fetch_max(size, Ordering::AcqRel);
    }
}

/// Runs `f` (a proof or tile computation) against the store's nodes,
/// fetching exactly the ones it needs in one batch. A node the store
/// cannot give (a deleted or damaged row) is
/// [`ApiError::JournalDamaged`], not a server error.
pub(crate) async fn with_nodes<T>(
    store: &dyn Store,
    f: impl Fn(&dyn NodeSource) -> bulwark_tlog::Result<T>,
) -> Result<T, ApiError> {
    let keys = bulwark_tlog::nodes_needed(&f).map_err(tlog_error)?;
    let hashes = store.journal_nodes(&keys).await.map_err(|e| match e {
        bulwark_store::Error::Corrupt { what, detail } => {
            ApiError::JournalDamaged(format!("{what}: {detail}"))
        }
        other => ApiError::from(other),
    })?;
    let map: HashMap<(u8, u64), Hash> = keys
        .into_iter()
        .zip(hashes)
        .filter_map(|(k, h)| h.map(|h| (k, h)))
        .collect();
    f(&map).map_err(tlog_error)
}

fn tlog_error(e: bulwark_tlog::Error) -> ApiError {
    match e {
        bulwark_tlog::Error::MissingNode { .. } => ApiError::JournalDamaged(e.to_string()),
        other => ApiError::internal(other),
    }
}
