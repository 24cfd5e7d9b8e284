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

/// A [`NodeSource`] over nodes fetched in advance. Proof algorithms ask for
/// the same nodes whatever the hash values are, so a first pass with
/// [`Recorder`] learns which nodes to fetch.
#[derive(Debug, Default)]
struct Prefetched(HashMap<(u8, u64), Hash>);

impl NodeSource for Prefetched {
    fn node(&self, level: u8, index: u64) -> bulwark_tlog::Result<Hash> {
        self.0
            .get(&(level, index))
            .copied()
            .ok_or(bulwark_tlog::Error::MissingNode { level, index })
    }
}

#[derive(Debug, Default)]
struct Recorder(std::sync::Mutex<Vec<(u8, u64)>>);

impl NodeSource for Recorder {
    fn node(&self, level: u8, index: u64) -> bulwark_tlog::Result<Hash> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((level, index));
        Ok([0; 32])
    }
}

/// Runs `f` (a proof or tile computation) against the store's nodes.
pub(crate) async fn with_nodes<T>(
    store: &dyn Store,
    f: impl Fn(&dyn NodeSource) -> bulwark_tlog::Result<T>,
) -> anyhow::Result<T> {
    let rec = Recorder::default();
    f(&rec)?;
    let mut keys = rec
        .0
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    keys.sort_unstable();
    keys.dedup();
    let hashes = store.journal_nodes(&keys).await?;
    let mut map = HashMap::with_capacity(keys.len());
    for (k, h) in keys.into_iter().zip(hashes) {
        if let Some(h) = h {
            map.insert(k, h);
        }
    }
    Ok(f(&Prefetched(map))?)
}
