//! Bulwark's state: one [`Store`] interface, two real backends.
//!
//! # Brief overview
//!
//! - [`Store`] — the repository trait the server holds as `Arc<dyn Store>`.
//! - [`SqliteStore`] — the embedded default: a WAL-mode SQLite file
//!   (bundled SQLite, extension loading off).
//! - [`PostgresStore`] — the scale-out backend.
//! - [`open`] — picks a backend from a URL (`sqlite://…`, `postgres://…`).
//! - Records: [`Account`], [`ApiTokenRecord`], [`EnrollTokenRecord`],
//!   [`Device`], [`CheckinUpdate`].
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use bulwark_store::{Audit, NewAccount, Role};
//! let store = bulwark_store::open("sqlite::memory:").await.unwrap();
//! let now = time::OffsetDateTime::now_utc();
//! let admin = store
//!     .create_account(NewAccount { name: "admin".into(), role: Role::Admin }, &Audit::system(now))
//!     .await
//!     .unwrap();
//! assert_eq!(store.list_accounts().await.unwrap(), vec![admin]);
//! // The change was journaled in the same transaction.
//! assert_eq!(store.journal_root().await.unwrap().0, 1);
//! # });
//! ```
//!
//! # Design
//!
//! Both backends are generated from one implementation per trait: a macro
//! body expanded for each backend, one in each of `backend.rs` ([`Store`]),
//! `updates.rs`, `gates.rs`, `monitor.rs`, `telemetry.rs` and `webhooks.rs`.
//! The SQL is written once, in the dialect common to SQLite and PostgreSQL
//! (`$N` placeholders, `ON CONFLICT`, `RETURNING`), and timestamps are Unix
//! milliseconds in both. Schema changes are sqlx migrations, one directory
//! per dialect, applied at [`open`]. One conformance suite
//! (`tests/conformance.rs`) runs every case against both backends.
//!
//! Every mutating method takes an [`Audit`] and appends its journal entry
//! (an RFC 6962 Merkle leaf) in the same transaction as the change; the
//! first statement of such a transaction locks the journal head, so entries
//! are totally ordered and a change without its entry cannot commit.
//! Check-ins (`record_checkins`) are observations, not state changes, and are
//! not journaled.
//!
//! Operations that must be atomic (consuming an enrollment token and
//! creating the device) are one transaction inside the store, so callers
//! cannot get them half right.
//!
//! # Current limitations
//!
//! No in-memory backend: SQLite's `:memory:` serves that purpose and runs the
//! same SQL as production.

mod backend;
mod gates;
mod model;
mod monitor;
mod telemetry;
mod updates;
mod webhooks;

pub use backend::{PostgresStore, SqliteStore, open};
pub use gates::{Alert, GateStore, NewAlert, ReleaseScan, VerdictChange, WaiverRow};
pub use model::{
    Account, ApiTokenRecord, Audit, CheckinUpdate, Device, DeviceFilter, DeviceStatus,
    EnrollTokenRecord, JournalRow, NewAccount, NewApiToken, NewDevice, NewEnrollToken, Role,
    StoredInventory,
};
pub use monitor::{DetectionAlert, MonitorStore, ProfileRow};
pub use telemetry::{LatestTelemetry, TelemetryMinute, TelemetryStore};
pub use updates::{
    BlobRecord, Deployment, DirectorState, Installer, NewRelease, Proposal, Publication, Release,
    ReleaseStatus, TufRow, UpdateStatus, UpdateStore,
};
pub use webhooks::{AttemptOutcome, Delivery, NewDelivery, WebhookRow, WebhookStore};

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalEntry};
use time::OffsetDateTime;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A unique value (account name, token id, device id) already exists.
    #[error("{what} already exists")]
    Conflict {
        /// What collided.
        what: String,
    },
    /// The URL names no supported backend.
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    UnsupportedUrl,
    /// A stored value could not be decoded (schema drift or tampering).
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The repository. Every method is one transaction.
#[async_trait]
pub trait Store:
    UpdateStore
    + GateStore
    + MonitorStore
    + TelemetryStore
    + WebhookStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Which backend this is (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// Creates an account; [`Error::Conflict`] when the name is taken.
    async fn create_account(&self, new: NewAccount, audit: &Audit) -> Result<Account>;
    /// Looks an account up by name.
    async fn account_by_name(&self, name: &str) -> Result<Option<Account>>;
    /// All accounts, by name.
    async fn list_accounts(&self) -> Result<Vec<Account>>;

    /// Stores a new API token (its hash only).
    async fn insert_api_token(&self, new: NewApiToken, audit: &Audit) -> Result<ApiTokenRecord>;
    /// A token and its account, by token id.
    async fn api_token(&self, id: &str) -> Result<Option<(ApiTokenRecord, Account)>>;
    /// All API tokens, newest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>>;
    /// Marks a token revoked; false (and no journal entry) when there was
    /// no such unrevoked token.
    async fn revoke_api_token(&self, id: &str, audit: &Audit) -> Result<bool>;

    /// Stores a new enrollment token (its hash only).
    async fn insert_enroll_token(
        &self,
        new: NewEnrollToken,
        audit: &Audit,
    ) -> Result<EnrollTokenRecord>;
    /// An enrollment token by id.
    async fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRecord>>;
    /// All enrollment tokens, newest first.
    async fn list_enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>>;
    /// In one transaction: consumes one use of the token (only while
    /// `uses < max_uses` and unexpired at `audit.time`; one `UPDATE`, so
    /// concurrent enrollments never exceed `max_uses`) and creates the device
    /// with the token's group and environment. `None` (and no journal entry)
    /// when the token was not usable.
    async fn enroll_device(
        &self,
        token_id: &str,
        device: NewDevice,
        audit: &Audit,
    ) -> Result<Option<Device>>;

    /// Inserts devices directly (bulk provisioning and benchmarks); one
    /// journal entry for the batch.
    async fn insert_devices(
        &self,
        devices: &[NewDevice],
        group: &str,
        environment: &str,
        audit: &Audit,
    ) -> Result<()>;
    /// One device.
    async fn device(&self, id: DeviceId) -> Result<Option<Device>>;
    /// Devices matching `filter`, ordered by id.
    async fn list_devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>>;
    /// Number of devices.
    async fn count_devices(&self) -> Result<u64>;
    /// Merges `tags` into the device's tags (an empty value removes the key).
    async fn tag_device(
        &self,
        id: DeviceId,
        tags: &[(String, String)],
        audit: &Audit,
    ) -> Result<Option<Device>>;
    /// Revokes a device; `None` when it does not exist. Revoking twice keeps
    /// the first time and reason (and journals nothing).
    async fn revoke_device(
        &self,
        id: DeviceId,
        reason: &str,
        audit: &Audit,
    ) -> Result<Option<Device>>;
    /// Certificate serials of every revoked device.
    async fn revoked_serials(&self) -> Result<Vec<String>>;
    /// Applies a batch of check-ins (last seen, agent version, boot id).
    /// Observations, not state changes: not journaled.
    async fn record_checkins(&self, batch: &[CheckinUpdate]) -> Result<()>;
    /// Replaces a device's stored inventory.
    async fn put_inventory(
        &self,
        id: DeviceId,
        digest: &str,
        inventory_json: &str,
        audit: &Audit,
    ) -> Result<()>;
    /// A device's stored inventory.
    async fn inventory(&self, id: DeviceId) -> Result<Option<StoredInventory>>;

    /// Appends entries that record no other state change (engine events);
    /// returns the new journal size.
    async fn append_journal(&self, entries: &[JournalEntry]) -> Result<u64>;
    /// The journal's size and root hash, read together.
    async fn journal_root(&self) -> Result<(u64, [u8; 32])>;
    /// Entries `start..start+limit` as stored: sequence number, canonical
    /// bytes and the leaf hash recorded at append time.
    async fn journal_entries(&self, start: u64, limit: u32) -> Result<Vec<JournalRow>>;
    /// Hashes of complete subtrees `(level, index)`; `None` for a node that
    /// does not exist (yet).
    async fn journal_nodes(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<[u8; 32]>>>;
    /// Stores a signed checkpoint for `size` (idempotent per size).
    async fn put_checkpoint(&self, size: u64, note: &str, now: OffsetDateTime) -> Result<()>;
    /// Every stored checkpoint, by size.
    async fn checkpoints(&self) -> Result<Vec<(u64, String)>>;
    /// The newest checkpoint (one row, not the whole list).
    async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>>;
    /// The checkpoint for exactly `size`.
    async fn checkpoint(&self, size: u64) -> Result<Option<String>>;
}
