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
//! use bulwark_store::{NewAccount, Role};
//! let store = bulwark_store::open("sqlite::memory:").await.unwrap();
//! let now = time::OffsetDateTime::now_utc();
//! let admin = store
//!     .create_account(NewAccount { name: "admin".into(), role: Role::Admin }, now)
//!     .await
//!     .unwrap();
//! assert_eq!(store.list_accounts().await.unwrap(), vec![admin]);
//! # });
//! ```
//!
//! # Design
//!
//! Both backends are generated from one implementation (`backend.rs`): the
//! SQL is written once, in the dialect common to SQLite and PostgreSQL
//! (`$N` placeholders, `ON CONFLICT`, `RETURNING`), and timestamps are Unix
//! milliseconds in both. Schema changes are sqlx migrations, one directory
//! per dialect, applied at [`open`]. One conformance suite
//! (`tests/conformance.rs`) runs every case against both backends.
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
mod model;

pub use backend::{PostgresStore, SqliteStore, open};
pub use model::{
    Account, ApiTokenRecord, CheckinUpdate, Device, DeviceFilter, DeviceStatus, EnrollTokenRecord,
    NewAccount, NewApiToken, NewDevice, NewEnrollToken, Role, StoredInventory,
};

use async_trait::async_trait;
use bulwark_proto::DeviceId;
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
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Which backend this is (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;

    /// Creates an account; [`Error::Conflict`] when the name is taken.
    async fn create_account(&self, new: NewAccount, now: OffsetDateTime) -> Result<Account>;
    /// Looks an account up by name.
    async fn account_by_name(&self, name: &str) -> Result<Option<Account>>;
    /// All accounts, by name.
    async fn list_accounts(&self) -> Result<Vec<Account>>;

    /// Stores a new API token (its hash only).
    async fn insert_api_token(
        &self,
        new: NewApiToken,
        now: OffsetDateTime,
    ) -> Result<ApiTokenRecord>;
    /// A token and its account, by token id.
    async fn api_token(&self, id: &str) -> Result<Option<(ApiTokenRecord, Account)>>;
    /// All API tokens, newest first.
    async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>>;
    /// Marks a token revoked; false when there was no such unrevoked token.
    async fn revoke_api_token(&self, id: &str, now: OffsetDateTime) -> Result<bool>;

    /// Stores a new enrollment token (its hash only).
    async fn insert_enroll_token(
        &self,
        new: NewEnrollToken,
        now: OffsetDateTime,
    ) -> Result<EnrollTokenRecord>;
    /// An enrollment token by id.
    async fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRecord>>;
    /// All enrollment tokens, newest first.
    async fn list_enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>>;
    /// In one transaction: consumes the token (only if unused and unexpired
    /// at `now`) and creates the device with the token's group and
    /// environment. `None` when the token was not usable.
    async fn enroll_device(
        &self,
        token_id: &str,
        device: NewDevice,
        now: OffsetDateTime,
    ) -> Result<Option<Device>>;

    /// Inserts devices directly (bulk provisioning and benchmarks).
    async fn insert_devices(
        &self,
        devices: &[NewDevice],
        group: &str,
        environment: &str,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// One device.
    async fn device(&self, id: DeviceId) -> Result<Option<Device>>;
    /// Devices matching `filter`, ordered by id.
    async fn list_devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>>;
    /// Number of devices.
    async fn count_devices(&self) -> Result<u64>;
    /// Merges `tags` into the device's tags (an empty value removes the key).
    async fn tag_device(&self, id: DeviceId, tags: &[(String, String)]) -> Result<Option<Device>>;
    /// Revokes a device; `None` when it does not exist. Revoking twice keeps
    /// the first time and reason.
    async fn revoke_device(
        &self,
        id: DeviceId,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Device>>;
    /// Certificate serials of every revoked device.
    async fn revoked_serials(&self) -> Result<Vec<String>>;
    /// Applies a batch of check-ins (last seen, agent version, boot id).
    async fn record_checkins(&self, batch: &[CheckinUpdate]) -> Result<()>;
    /// Replaces a device's stored inventory.
    async fn put_inventory(
        &self,
        id: DeviceId,
        digest: &str,
        inventory_json: &str,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// A device's stored inventory.
    async fn inventory(&self, id: DeviceId) -> Result<Option<StoredInventory>>;
}
