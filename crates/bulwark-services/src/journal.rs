//! The audit journal's online half: the checkpoint signing key, the
//! checkpointer, and proofs served from stored nodes.
//!
//! Entries are appended by the store, inside each change's transaction.
//! This module turns the log into signed C2SP checkpoints (at most
//! `checkpoint_interval` after an append) and answers proof requests by
//! fetching exactly the perfect-subtree nodes a proof needs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bulwark_store::JournalRepo;
use bulwark_tlog::{Checkpoint, Hash, NodeSource, NoteSigner};

/// Why a journal read failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A stored node or entry is missing or altered: the journal is
    /// damaged, and the edge says so (not a server error).
    #[error("the journal is damaged: {0}")]
    Damaged(String),
    /// The store failed.
    #[error(transparent)]
    Store(bulwark_store::Error),
    /// A proof could not be computed for another reason.
    #[error("journal: {0}")]
    Internal(bulwark_tlog::Error),
}

/// The journal's identity and signing key.
pub struct Journal {
    /// The checkpoint signing key.
    pub signer: NoteSigner,
    /// The log's origin line.
    pub origin: String,
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
    /// A journal signing as `origin` with `signer`.
    pub fn new(signer: NoteSigner, origin: String) -> Self {
        Self {
            signer,
            origin,
            checkpointed: AtomicU64::new(0),
        }
    }

    /// Signs a checkpoint for the journal's current size, if it grew since
    /// the last one. Returns the size checkpointed.
    pub async fn checkpoint(
        &self,
        store: &dyn JournalRepo,
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
    pub fn resume(&self, size: u64) {
        self.checkpointed.fetch_max(size, Ordering::AcqRel);
    }
}

/// Runs `f` (a proof or tile computation) against the store's nodes,
/// fetching exactly the ones it needs in one batch. A node the store
/// cannot give (a deleted or damaged row) is
/// [`JournalError::Damaged`], not a server error.
pub async fn with_nodes<T>(
    store: &dyn JournalRepo,
    f: impl Fn(&dyn NodeSource) -> bulwark_tlog::Result<T>,
) -> Result<T, JournalError> {
    let keys = bulwark_tlog::nodes_needed(&f).map_err(tlog_error)?;
    let hashes = store.journal_nodes(&keys).await.map_err(|e| match e {
        bulwark_store::Error::Corrupt { what, detail } => {
            JournalError::Damaged(format!("{what}: {detail}"))
        }
        other => JournalError::Store(other),
    })?;
    let map: HashMap<(u8, u64), Hash> = keys
        .into_iter()
        .zip(hashes)
        .filter_map(|(k, h)| h.map(|h| (k, h)))
        .collect();
    f(&map).map_err(tlog_error)
}

fn tlog_error(e: bulwark_tlog::Error) -> JournalError {
    match e {
        bulwark_tlog::Error::MissingNode { .. } => JournalError::Damaged(e.to_string()),
        other => JournalError::Internal(other),
    }
}
