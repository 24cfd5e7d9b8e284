//! Bulwark's state: a repository trait per domain, two real backends.
//!
//! # Brief overview
//!
//! - [`Store`] — what the server holds as `Arc<dyn Store>`: every
//!   repository below, plus [`Backend`]. A service that needs one domain
//!   takes that repository alone (`Arc<dyn WebhookRepo>`: a `dyn Store`
//!   coerces to it).
//! - The repositories: [`AccountRepo`] (accounts, API tokens),
//!   [`DeviceRepo`] (enrollment tokens, devices, check-ins, inventories,
//!   tags, quarantine, revocation), [`ReleaseRepo`] (blobs, releases,
//!   promotions, deployments, update reports), [`TufRepo`] (TUF metadata,
//!   signing proposals and signatures, the director's per-device state),
//!   [`JournalRepo`] (entries, Merkle nodes, checkpoints), [`GateRepo`]
//!   (scans, verdicts, the gate policy, waivers, alerts), [`MonitorRepo`]
//!   (detection profiles and alerts, telemetry history) and
//!   [`WebhookRepo`] (webhooks, the delivery outbox and its claims).
//!   `use bulwark_store::prelude::*;` brings them all into scope.
//! - [`SqliteStore`] — the embedded default: a WAL-mode SQLite file
//!   (bundled SQLite, extension loading off).
//! - [`PostgresStore`] — the scale-out backend.
//! - [`open`] — picks a backend from a URL (`sqlite://…`, `postgres://…`).
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
//! Each repository is one module (`accounts.rs`, `devices.rs`, …) holding
//! its trait, its records and its implementation: a macro body expanded
//! for each backend. The SQL is written once, in the dialect common to
//! SQLite and PostgreSQL (`$N` placeholders, `ON CONFLICT`, `RETURNING`),
//! and timestamps are Unix milliseconds in both. Schema changes are sqlx
//! migrations, one directory per dialect, applied at [`open`]. One
//! conformance suite (`tests/conformance.rs`) runs every case against
//! both backends.
//!
//! Every mutating method takes an [`Audit`] and appends its journal entry
//! (an RFC 6962 Merkle leaf, its action a `bulwark_proto::JournalAction`)
//! in the same transaction as the change; the first statement of such a
//! transaction locks the journal head, so entries are totally ordered and a
//! change without its entry cannot commit. Check-ins, detection alerts and
//! telemetry are observations, not state changes, and are not journaled.
//!
//! Operations that must be atomic stay one method, on the repository of
//! their main entity: enrolling consumes an enrollment token's use and
//! creates the device ([`DeviceRepo::enroll_device`]); a signature that
//! meets the threshold stores metadata, publishes the release and puts it
//! in its first environment ([`TufRepo::add_signature`]); an advisory
//! import's verdicts and alerts are one entry
//! ([`GateRepo::record_evaluation`]). Callers cannot get them half right.
//!
//! States kept as text (release status, installer, TUF role and
//! repository, gate status, delivery state, …) are enums, stored as the
//! same words they always were and read back strictly: another word is
//! [`Error::Corrupt`].
//!
//! # Current limitations
//!
//! No in-memory backend: SQLite's `:memory:` serves that purpose and runs the
//! same SQL as production.

mod model;

mod accounts;
mod backend;
mod devices;
mod gates;
mod journal;
mod monitor;
mod releases;
mod tuf;
mod webhooks;

pub use accounts::{Account, AccountRepo, ApiTokenRecord, NewAccount, NewApiToken, Role};
pub use backend::{PostgresStore, SqliteStore, open};
pub use devices::{
    CheckinUpdate, Device, DeviceFilter, DeviceRepo, DeviceStatus, EnrollTokenRecord, NewDevice,
    NewEnrollToken, StoredInventory, free_name, name_base,
};
pub use gates::{
    Alert, AlertKind, GateRepo, GateStatus, NewAlert, ReleaseScan, SbomSource, VerdictChange,
    WaiverRow,
};
pub use journal::{JournalRepo, JournalRow};
pub use model::Audit;
pub use monitor::{
    AlertAction, DetectionAlert, DetectionKind, LatestTelemetry, MonitorRepo, ProfileRow, Severity,
    TelemetryMinute,
};
pub use releases::{
    BlobRecord, Deployment, Installer, NewRelease, Release, ReleaseRepo, ReleaseStatus,
    UpdatePhase, UpdateStatus,
};
pub use tuf::{DirectorState, Proposal, Publication, Repository, TufRepo, TufRole, TufRow};
pub use webhooks::{
    AttemptOutcome, Delivery, DeliveryEvent, DeliveryState, NewDelivery, WebhookRepo, WebhookRow,
};

/// The repository traits, for callers that call them on a concrete store
/// or a single repository: `use bulwark_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AccountRepo, Backend, DeviceRepo, GateRepo, JournalRepo, MonitorRepo, ReleaseRepo, Store,
        TufRepo, WebhookRepo,
    };
}

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

/// Which database keeps the repositories.
pub trait Backend: Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;
}

/// Every repository of one database: what the server holds as
/// `Arc<dyn Store>`. Implemented for anything that implements them all;
/// each method is one transaction.
pub trait Store:
    Backend
    + AccountRepo
    + DeviceRepo
    + ReleaseRepo
    + TufRepo
    + JournalRepo
    + GateRepo
    + MonitorRepo
    + WebhookRepo
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> Store for T where
    T: Backend
        + AccountRepo
        + DeviceRepo
        + ReleaseRepo
        + TufRepo
        + JournalRepo
        + GateRepo
        + MonitorRepo
        + WebhookRepo
        + Send
        + Sync
        + std::fmt::Debug
        + ?Sized
{
}
