//! The SQLite and PostgreSQL backends: opening and migrating, and the
//! helpers every repository's SQL shares. Each repository's module
//! implements its trait for both from one macro body.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use bulwark_proto::DeviceId;
use time::OffsetDateTime;

use crate::{Backend, Error, Result, Store};

/// Opens (creating if needed) the store named by `url` and applies
/// migrations: `sqlite://PATH`, `sqlite::memory:`, or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        Err(Error::UnsupportedUrl)
    }
}

/// The embedded SQLite backend (WAL mode).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
}

impl SqliteStore {
    /// Opens `url` (`sqlite://PATH` creates the file; `sqlite::memory:` is a
    /// private in-memory database) and migrates it.
    pub async fn open(url: &str) -> Result<Self> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        let memory = url.contains(":memory:");
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            // WAL + NORMAL: a committed transaction survives a process crash;
            // only an OS crash may lose the last few.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database exists per connection: keep exactly one.
        let max = if memory { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(if memory { 1 } else { 0 })
            .idle_timeout(if memory {
                None
            } else {
                Some(Duration::from_secs(600))
            })
            .max_lifetime(if memory {
                None
            } else {
                Some(Duration::from_secs(3600))
            })
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }
}

/// The PostgreSQL backend.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: sqlx::PgPool,
}

impl PostgresStore {
    /// Connects to `url` and migrates the database.
    pub async fn open(url: &str) -> Result<Self> {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }
}

impl Backend for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

impl Backend for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }
}

pub(crate) fn from_ms(what: &'static str, v: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).map_err(|e| {
        Error::Corrupt {
            what,
            detail: e.to_string(),
        }
    })
}

pub(crate) fn opt_from_ms(what: &'static str, v: Option<i64>) -> Result<Option<OffsetDateTime>> {
    v.map(|v| from_ms(what, v)).transpose()
}

/// A stored non-negative number that must fit a `u64`.
pub(crate) fn u64_of(what: &'static str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| Error::Corrupt {
        what,
        detail: format!("negative value {v}"),
    })
}

/// A `u64` as stored (`BIGINT`), saturating.
pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn device_id(what: &'static str, s: &str) -> Result<DeviceId> {
    DeviceId::parse(s).map_err(|e| Error::Corrupt {
        what,
        detail: e.to_string(),
    })
}

pub(crate) fn conflict(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| match e.as_database_error() {
        Some(db) if db.is_unique_violation() => Error::Conflict {
            what: what.to_owned(),
        },
        _ => Error::Database(e),
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "row id, not a secret: ids need no RandomSource (ARCHITECTURE.md, Invariants)"
)]
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
