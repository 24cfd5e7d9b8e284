//! The SQLite and PostgreSQL backends, generated from one implementation.

use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bulwark_proto::{DeviceId, JournalAction, JournalEntry, state_digest};
use bulwark_tlog::{CompactRange, leaf_hash};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::{
    Account, ApiTokenRecord, Audit, CheckinUpdate, Device, DeviceFilter, DeviceStatus,
    EnrollTokenRecord, Error, JournalRow, NewAccount, NewApiToken, NewDevice, NewEnrollToken,
    Result, Role, Store, StoredInventory,
};

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

use crate::model::ms;

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

/// A stored non-negative count that must fit a `u32`.
fn count_u32(what: &'static str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Corrupt {
        what,
        detail: format!("{v} is not a count"),
    })
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

/// Internal Merkle nodes below this level are not stored: they are
/// recomputed from at most `2^STORED_NODE_LEVEL` (16) leaf hashes when a
/// proof or tile needs them. Appends then write ~1.1 rows per entry instead
/// of ~3; a proof costs two queries.
const STORED_NODE_LEVEL: u8 = 4;

/// Root of a perfect subtree given its leaf-level hashes (length a power of two).
fn perfect_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    let mut level: Vec<[u8; 32]> = hashes.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| bulwark_tlog::node_hash(&p[0], &p[1]))
            .collect();
    }
    level
        .first()
        .copied()
        .unwrap_or_else(bulwark_tlog::empty_root)
}

/// Rows per multi-row statement: 3 parameters a row stays far below the
/// bound-parameter limits of SQLite (32766) and PostgreSQL (65535).
const ROWS_PER_INSERT: usize = 500;

/// `INSERT INTO {table} VALUES ($1, $2, $3), ($4, …)…` for `rows` rows of
/// `cols` placeholders. Only placeholders are generated: no value is ever
/// spliced into SQL.
fn multi_row_insert(table: &str, cols: usize, rows: usize) -> String {
    let mut sql = format!("INSERT INTO {table} VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * cols + c + 1));
        }
        sql.push(')');
    }
    sql
}

/// The journal's right edge from `journal_head` (size, concatenated hashes).
fn decode_edge(size: i64, blob: &[u8]) -> Option<CompactRange> {
    let size = u64::try_from(size).ok()?;
    if !blob.len().is_multiple_of(32) {
        return None;
    }
    let hashes = blob
        .chunks_exact(32)
        .map(|c| c.try_into().unwrap_or([0; 32]))
        .collect();
    CompactRange::from_parts(size, hashes).ok()
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Digests of the state snapshots recorded as `before`/`after` in the
/// journal. Secrets and hashes of secrets are never part of a snapshot.
fn account_digest(a: &Account) -> String {
    state_digest(&serde_json::json!({"id": a.id, "name": a.name, "role": a.role.as_str()}))
}

fn token_digest(t: &ApiTokenRecord) -> String {
    state_digest(&serde_json::json!({
        "id": t.id, "account_id": t.account_id, "label": t.label,
        "expires_at": t.expires_at.map(rfc3339), "revoked_at": t.revoked_at.map(rfc3339),
    }))
}

fn enroll_token_digest(t: &EnrollTokenRecord) -> String {
    state_digest(&serde_json::json!({
        "id": t.id, "group": t.group, "environment": t.environment, "expires_at": rfc3339(t.expires_at),
        "used_at": t.used_at.map(rfc3339), "device_id": t.device_id.map(|d| d.to_string()),
        "max_uses": t.max_uses, "uses": t.uses,
    }))
}

pub(crate) fn device_digest(d: &Device) -> String {
    state_digest(&serde_json::json!({
        "id": d.id.to_string(), "group": d.group, "environment": d.environment, "tags": d.tags,
        "status": d.status.as_str(), "revoked_reason": d.revoked_reason, "cert_serial": d.cert_serial,
        "quarantine_reason": d.quarantine_reason,
    }))
}

pub(crate) const DEVICE_COLUMNS: &str = "d.id, d.hostname, d.device_group, d.environment, d.tags, \
     d.cert_serial, d.cert_not_after, d.enrolled_at, d.last_seen, d.agent_version, d.boot_id, \
     d.status, d.revoked_at, d.revoked_reason, d.quarantined_at, d.quarantine_reason, \
     i.digest AS inventory_digest";
pub(crate) const DEVICE_FROM: &str = "devices d LEFT JOIN device_inventory i ON i.device_id = d.id";

const ACCOUNT_COLUMNS: &str = "id, name, role, created_at";
const API_TOKEN_COLUMNS: &str =
    "id, account_id, label, secret_hash, created_at, expires_at, revoked_at";
const ENROLL_TOKEN_COLUMNS: &str = "id, secret_hash, device_group, environment, created_by, \
     created_at, expires_at, used_at, device_id, max_uses, uses";

/// Generates the `Store` impl for one backend. The body is the single
/// implementation of the SQL; each expansion is type-checked against its
/// own driver, so there are no generic-bound gymnastics.
macro_rules! impl_store {
    ($store:ty, $db:ty, $row:ty, $name:literal) => {
        impl $store {
            fn account(row: &$row) -> Result<Account> {
                let role: String = row.try_get("role")?;
                Ok(Account {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    role: Role::parse(&role)
                        .ok_or_else(|| Error::Corrupt { what: "account role", detail: role.clone() })?,
                    created_at: from_ms("account created_at", row.try_get("created_at")?)?,
                })
            }

            fn api_token_rec(row: &$row) -> Result<ApiTokenRecord> {
                Ok(ApiTokenRecord {
                    id: row.try_get("id")?,
                    account_id: row.try_get("account_id")?,
                    label: row.try_get("label")?,
                    secret_hash: row.try_get("secret_hash")?,
                    created_at: from_ms("token created_at", row.try_get("created_at")?)?,
                    expires_at: opt_from_ms("token expires_at", row.try_get("expires_at")?)?,
                    revoked_at: opt_from_ms("token revoked_at", row.try_get("revoked_at")?)?,
                })
            }

            fn enroll_token_rec(row: &$row) -> Result<EnrollTokenRecord> {
                let device: Option<String> = row.try_get("device_id")?;
                Ok(EnrollTokenRecord {
                    id: row.try_get("id")?,
                    secret_hash: row.try_get("secret_hash")?,
                    group: row.try_get("device_group")?,
                    environment: row.try_get("environment")?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms("enroll token created_at", row.try_get("created_at")?)?,
                    expires_at: from_ms("enroll token expires_at", row.try_get("expires_at")?)?,
                    used_at: opt_from_ms("enroll token used_at", row.try_get("used_at")?)?,
                    device_id: device.as_deref().map(|d| device_id("enroll token device_id", d)).transpose()?,
                    max_uses: count_u32("enroll token max_uses", row.try_get("max_uses")?)?,
                    uses: count_u32("enroll token uses", row.try_get("uses")?)?,
                })
            }

            pub(crate) fn device_rec(row: &$row) -> Result<Device> {
                let id: String = row.try_get("id")?;
                let tags: String = row.try_get("tags")?;
                let status: String = row.try_get("status")?;
                Ok(Device {
                    id: device_id("device id", &id)?,
                    hostname: row.try_get("hostname")?,
                    group: row.try_get("device_group")?,
                    environment: row.try_get("environment")?,
                    tags: serde_json::from_str::<BTreeMap<String, String>>(&tags)
                        .map_err(|e| Error::Corrupt { what: "device tags", detail: e.to_string() })?,
                    cert_serial: row.try_get("cert_serial")?,
                    cert_not_after: from_ms("device cert_not_after", row.try_get("cert_not_after")?)?,
                    enrolled_at: from_ms("device enrolled_at", row.try_get("enrolled_at")?)?,
                    last_seen: opt_from_ms("device last_seen", row.try_get("last_seen")?)?,
                    agent_version: row.try_get("agent_version")?,
                    boot_id: row.try_get("boot_id")?,
                    inventory_digest: row.try_get("inventory_digest")?,
                    status: match status.as_str() {
                        "active" => DeviceStatus::Active,
                        "revoked" => DeviceStatus::Revoked,
                        _ => return Err(Error::Corrupt { what: "device status", detail: status }),
                    },
                    revoked_at: opt_from_ms("device revoked_at", row.try_get("revoked_at")?)?,
                    revoked_reason: row.try_get("revoked_reason")?,
                    quarantined_at: opt_from_ms("device quarantined_at", row.try_get("quarantined_at")?)?,
                    quarantine_reason: row.try_get("quarantine_reason")?,
                })
            }

            /// Locks the journal head (the first write of every mutating
            /// transaction, so writers queue here instead of deadlocking on a
            /// read-to-write upgrade) and returns the tree's right edge.
            pub(crate) async fn lock_journal(tx: &mut sqlx::Transaction<'static, $db>) -> Result<CompactRange> {
                sqlx::query::<$db>("UPDATE journal_head SET size = size WHERE id = 1").execute(&mut **tx).await?;
                let row = sqlx::query::<$db>("SELECT size, compact FROM journal_head WHERE id = 1").fetch_one(&mut **tx).await?;
                let size: i64 = row.try_get("size")?;
                let blob: Vec<u8> = row.try_get("compact")?;
                decode_edge(size, &blob)
                    .ok_or_else(|| Error::Corrupt { what: "journal head", detail: format!("size {size} with {} edge bytes", blob.len()) })
            }

            /// Appends `entries` to the journal inside `tx`, with multi-row
            /// inserts (one statement per few hundred rows, not per row).
            pub(crate) async fn journal_in(tx: &mut sqlx::Transaction<'static, $db>, edge: &mut CompactRange, entries: &[JournalEntry]) -> Result<()> {
                let mut leaves: Vec<(i64, Vec<u8>, Vec<u8>)> = Vec::with_capacity(entries.len());
                let mut nodes: Vec<(i64, i64, Vec<u8>)> = Vec::with_capacity(entries.len() * 2);
                for e in entries {
                    let bytes = e.to_canonical();
                    if bytes.len() > bulwark_proto::MAX_JOURNAL_ENTRY {
                        return Err(Error::Corrupt { what: "journal entry", detail: format!("{} bytes is over the limit", bytes.len()) });
                    }
                    let leaf = leaf_hash(&bytes);
                    let seq = i64::try_from(edge.size()).unwrap_or(i64::MAX);
                    // Levels below STORED_NODE_LEVEL are recomputed from the
                    // leaf hashes on demand (see `journal_nodes`).
                    for (level, idx, hash) in edge.append(leaf).into_iter().filter(|(l, _, _)| *l >= STORED_NODE_LEVEL) {
                        nodes.push((i64::from(level), i64::try_from(idx).unwrap_or(i64::MAX), hash.to_vec()));
                    }
                    leaves.push((seq, bytes, leaf.to_vec()));
                }
                for chunk in leaves.chunks(ROWS_PER_INSERT) {
                    let sql = sqlx::AssertSqlSafe(multi_row_insert("journal (seq, entry, leaf_hash)", 3, chunk.len()));
                    let mut q = sqlx::query::<$db>(sql);
                    for (seq, entry, leaf) in chunk {
                        q = q.bind(*seq).bind(entry.as_slice()).bind(leaf.as_slice());
                    }
                    q.execute(&mut **tx).await?;
                }
                for chunk in nodes.chunks(ROWS_PER_INSERT) {
                    let sql = sqlx::AssertSqlSafe(multi_row_insert("journal_nodes (level, idx, hash)", 3, chunk.len()));
                    let mut q = sqlx::query::<$db>(sql);
                    for (level, idx, hash) in chunk {
                        q = q.bind(*level).bind(*idx).bind(hash.as_slice());
                    }
                    q.execute(&mut **tx).await?;
                }
                sqlx::query::<$db>("UPDATE journal_head SET size = $1, compact = $2 WHERE id = 1")
                    .bind(i64::try_from(edge.size()).unwrap_or(i64::MAX))
                    .bind(edge.hashes().concat())
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn insert_device_in<'c, E>(exec: E, d: &NewDevice, group: &str, env: &str, now: OffsetDateTime) -> Result<()>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query::<$db>(
                    "INSERT INTO devices (id, hostname, device_group, environment, tags, cert_serial, \
                     cert_not_after, enrolled_at, status) VALUES ($1, $2, $3, $4, '{}', $5, $6, $7, 'active')",
                )
                .bind(d.id.to_string())
                .bind(d.hostname.clone())
                .bind(group)
                .bind(env)
                .bind(&d.cert_serial)
                .bind(ms(d.cert_not_after))
                .bind(ms(now))
                .execute(exec)
                .await
                .map_err(conflict("device"))?;
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> &'static str {
                $name
            }

            async fn create_account(&self, new: NewAccount, audit: &Audit) -> Result<Account> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO accounts (id, name, role, created_at) VALUES ($1, $2, $3, $4) RETURNING {ACCOUNT_COLUMNS}"
                )))
                .bind(new_id())
                .bind(&new.name)
                .bind(new.role.as_str())
                .bind(ms(audit.time))
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict(&format!("account {:?}", new.name)))?;
                let account = Self::account(&row)?;
                let entry = audit.entry(JournalAction::AccountCreate, format!("account:{}", account.name), None,
                    Some(account_digest(&account)), &[("role", account.role.as_str().to_owned())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(account)
            }

            async fn account_by_name(&self, name: &str) -> Result<Option<Account>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1")))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::account).transpose()
            }

            async fn list_accounts(&self) -> Result<Vec<Account>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY name")))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(Self::account).collect()
            }

            async fn insert_api_token(&self, new: NewApiToken, audit: &Audit) -> Result<ApiTokenRecord> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO api_tokens (id, account_id, label, secret_hash, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING {API_TOKEN_COLUMNS}"
                )))
                .bind(&new.id)
                .bind(&new.account_id)
                .bind(&new.label)
                .bind(&new.secret_hash)
                .bind(ms(audit.time))
                .bind(new.expires_at.map(ms))
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict("API token id"))?;
                let token = Self::api_token_rec(&row)?;
                let entry = audit.entry(JournalAction::TokenCreate, format!("token:{}", token.id), None, Some(token_digest(&token)),
                    &[("account_id", token.account_id.clone()), ("label", token.label.clone())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(token)
            }

            async fn api_token(&self, id: &str) -> Result<Option<(ApiTokenRecord, Account)>> {
                let row = sqlx::query::<$db>(
                    "SELECT t.id, t.account_id, t.label, t.secret_hash, t.created_at, t.expires_at, t.revoked_at, \
                     a.name AS a_name, a.role AS a_role, a.created_at AS a_created_at \
                     FROM api_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let token = Self::api_token_rec(&row)?;
                let role: String = row.try_get("a_role")?;
                let account = Account {
                    id: token.account_id.clone(),
                    name: row.try_get("a_name")?,
                    role: Role::parse(&role).ok_or_else(|| Error::Corrupt { what: "account role", detail: role.clone() })?,
                    created_at: from_ms("account created_at", row.try_get("a_created_at")?)?,
                };
                Ok(Some((token, account)))
            }

            async fn list_api_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {API_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at DESC, id"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::api_token_rec).collect()
            }

            async fn revoke_api_token(&self, id: &str, audit: &Audit) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {API_TOKEN_COLUMNS} FROM api_tokens WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else { return Ok(false) };
                let before = Self::api_token_rec(&row)?;
                if before.revoked_at.is_some() {
                    return Ok(false);
                }
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 RETURNING {API_TOKEN_COLUMNS}"
                )))
                .bind(ms(audit.time))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                let after = Self::api_token_rec(&row)?;
                let entry = audit.entry(JournalAction::TokenRevoke, format!("token:{id}"), Some(token_digest(&before)), Some(token_digest(&after)), &[]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn insert_enroll_token(&self, new: NewEnrollToken, audit: &Audit) -> Result<EnrollTokenRecord> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO enroll_tokens (id, secret_hash, device_group, environment, created_by, created_at, expires_at, max_uses) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {ENROLL_TOKEN_COLUMNS}"
                )))
                .bind(&new.id)
                .bind(&new.secret_hash)
                .bind(&new.group)
                .bind(&new.environment)
                .bind(&new.created_by)
                .bind(ms(audit.time))
                .bind(ms(new.expires_at))
                .bind(i64::from(new.max_uses))
                .fetch_one(&mut *tx)
                .await
                .map_err(conflict("enrollment token id"))?;
                let rec = Self::enroll_token_rec(&row)?;
                let entry = audit.entry(JournalAction::EnrollTokenCreate, format!("enroll_token:{}", rec.id), None, Some(enroll_token_digest(&rec)),
                    &[("group", rec.group.clone()), ("environment", rec.environment.clone()), ("max_uses", rec.max_uses.to_string())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(rec)
            }

            async fn enroll_token(&self, id: &str) -> Result<Option<EnrollTokenRecord>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {ENROLL_TOKEN_COLUMNS} FROM enroll_tokens WHERE id = $1")))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::enroll_token_rec).transpose()
            }

            async fn list_enroll_tokens(&self) -> Result<Vec<EnrollTokenRecord>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {ENROLL_TOKEN_COLUMNS} FROM enroll_tokens ORDER BY created_at DESC, id"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::enroll_token_rec).collect()
            }

            async fn enroll_device(&self, token_id: &str, device: NewDevice, audit: &Audit) -> Result<Option<Device>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                // One statement decides and counts the use, so concurrent
                // enrollments can never exceed max_uses.
                let consumed = sqlx::query::<$db>(
                    "UPDATE enroll_tokens SET uses = uses + 1, used_at = $1, device_id = $2 \
                     WHERE id = $3 AND uses < max_uses AND expires_at > $1 \
                     RETURNING device_group, environment, uses, max_uses",
                )
                .bind(ms(audit.time))
                .bind(device.id.to_string())
                .bind(token_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = consumed else {
                    tx.rollback().await?;
                    return Ok(None);
                };
                let group: String = row.try_get("device_group")?;
                let env: String = row.try_get("environment")?;
                let uses = count_u32("enroll token uses", row.try_get("uses")?)?;
                let max_uses = count_u32("enroll token max_uses", row.try_get("max_uses")?)?;
                Self::insert_device_in(&mut *tx, &device, &group, &env, audit.time).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(device.id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let created = Self::device_rec(&row)?;
                let entry = audit.entry(JournalAction::DeviceEnroll, format!("device:{}", created.id), None, Some(device_digest(&created)), &[
                    ("enroll_token", token_id.to_owned()),
                    ("enroll_token_use", format!("{uses}/{max_uses}")),
                    ("group", group),
                    ("environment", env),
                    ("cert_serial", created.cert_serial.clone()),
                ]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(created))
            }

            async fn insert_devices(&self, devices: &[NewDevice], group: &str, environment: &str, audit: &Audit) -> Result<()> {
                for chunk in devices.chunks(5_000) {
                    let mut tx = self.pool.begin().await?;
                    let mut edge = Self::lock_journal(&mut tx).await?;
                    for d in chunk {
                        Self::insert_device_in(&mut *tx, d, group, environment, audit.time).await?;
                    }
                    let entry = audit.entry(JournalAction::DeviceBulkInsert, format!("group:{environment}/{group}"), None, None, &[
                        ("count", chunk.len().to_string()),
                        ("first", chunk[0].id.to_string()),
                        ("last", chunk[chunk.len() - 1].id.to_string()),
                    ]);
                    Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn device(&self, id: DeviceId) -> Result<Option<Device>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::device_rec).transpose()
            }

            async fn list_devices(&self, filter: &DeviceFilter) -> Result<Vec<Device>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} \
                     WHERE ($1 IS NULL OR d.device_group = $1) AND ($2 IS NULL OR d.environment = $2) \
                     AND ($3 IS NULL OR d.id > $3) ORDER BY d.id LIMIT $4"
                )))
                .bind(filter.group.clone())
                .bind(filter.environment.clone())
                .bind(filter.after.map(|a| a.to_string()))
                .bind(i64::from(filter.limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::device_rec).collect()
            }

            async fn count_devices(&self) -> Result<u64> {
                let n: i64 = sqlx::query::<$db>("SELECT COUNT(*) AS n FROM devices")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get("n")?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn tag_device(&self, id: DeviceId, tags: &[(String, String)], audit: &Audit) -> Result<Option<Device>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let before = Self::device_rec(&row)?;
                let mut map = before.tags.clone();
                for (k, v) in tags {
                    if v.is_empty() {
                        map.remove(k);
                    } else {
                        map.insert(k.clone(), v.clone());
                    }
                }
                let json = serde_json::to_string(&map)
                    .map_err(|e| Error::Corrupt { what: "device tags", detail: e.to_string() })?;
                sqlx::query::<$db>("UPDATE devices SET tags = $1 WHERE id = $2")
                    .bind(json)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1")))
                    .bind(id.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                let device = Self::device_rec(&row)?;
                let changed: Vec<String> = tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let entry = audit.entry(JournalAction::DeviceTag, format!("device:{id}"), Some(device_digest(&before)), Some(device_digest(&device)),
                    &[("tags", changed.join(" "))]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(device))
            }

            async fn revoke_device(&self, id: DeviceId, reason: &str, audit: &Audit) -> Result<Option<Device>> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_optional(&mut *tx).await?;
                let Some(row) = row else { return Ok(None) };
                let before = Self::device_rec(&row)?;
                if before.status == DeviceStatus::Revoked {
                    return Ok(Some(before));
                }
                sqlx::query::<$db>("UPDATE devices SET status = 'revoked', revoked_at = $1, revoked_reason = $2 WHERE id = $3")
                    .bind(ms(audit.time))
                    .bind(reason)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                let select = sqlx::AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM {DEVICE_FROM} WHERE d.id = $1"));
                let row = sqlx::query::<$db>(select).bind(id.to_string()).fetch_one(&mut *tx).await?;
                let device = Self::device_rec(&row)?;
                let entry = audit.entry(JournalAction::DeviceRevoke, format!("device:{id}"), Some(device_digest(&before)), Some(device_digest(&device)), &[
                    ("reason", reason.to_owned()),
                    ("cert_serial", device.cert_serial.clone()),
                ]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(Some(device))
            }

            async fn revoked_serials(&self) -> Result<Vec<String>> {
                let rows = sqlx::query::<$db>("SELECT cert_serial FROM devices WHERE status = 'revoked' ORDER BY cert_serial")
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| Ok(r.try_get("cert_serial")?)).collect()
            }

            async fn record_checkins(&self, batch: &[CheckinUpdate]) -> Result<()> {
                for chunk in batch.chunks(2_000) {
                    let mut tx = self.pool.begin().await?;
                    for c in chunk {
                        sqlx::query::<$db>(
                            "UPDATE devices SET last_seen = $1, agent_version = $2, boot_id = $3 \
                             WHERE id = $4 AND (last_seen IS NULL OR last_seen <= $1)",
                        )
                        .bind(ms(c.at))
                        .bind(&c.agent_version)
                        .bind(c.boot_id.clone())
                        .bind(c.id.to_string())
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn put_inventory(&self, id: DeviceId, digest: &str, inventory_json: &str, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let before: Option<String> = sqlx::query::<$db>("SELECT digest FROM device_inventory WHERE device_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await?
                    .map(|r| r.try_get("digest"))
                    .transpose()?;
                sqlx::query::<$db>(
                    "INSERT INTO device_inventory (device_id, digest, inventory, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (device_id) DO UPDATE SET digest = excluded.digest, \
                     inventory = excluded.inventory, updated_at = excluded.updated_at",
                )
                .bind(id.to_string())
                .bind(digest)
                .bind(inventory_json)
                .bind(ms(audit.time))
                .execute(&mut *tx)
                .await?;
                let entry = audit.entry(JournalAction::DeviceInventory, format!("device:{id}"), before, Some(digest.to_owned()), &[]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn inventory(&self, id: DeviceId) -> Result<Option<StoredInventory>> {
                let row = sqlx::query::<$db>("SELECT digest, inventory, updated_at FROM device_inventory WHERE device_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some(StoredInventory {
                    digest: row.try_get("digest")?,
                    json: row.try_get("inventory")?,
                    updated_at: from_ms("inventory updated_at", row.try_get("updated_at")?)?,
                }))
            }

            async fn append_journal(&self, entries: &[JournalEntry]) -> Result<u64> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                Self::journal_in(&mut tx, &mut edge, entries).await?;
                tx.commit().await?;
                Ok(edge.size())
            }

            async fn journal_root(&self) -> Result<(u64, [u8; 32])> {
                let row = sqlx::query::<$db>("SELECT size, compact FROM journal_head WHERE id = 1").fetch_one(&self.pool).await?;
                let size: i64 = row.try_get("size")?;
                let blob: Vec<u8> = row.try_get("compact")?;
                let edge = decode_edge(size, &blob)
                    .ok_or_else(|| Error::Corrupt { what: "journal head", detail: format!("size {size} with {} edge bytes", blob.len()) })?;
                Ok((edge.size(), edge.root()))
            }

            async fn journal_entries(&self, start: u64, limit: u32) -> Result<Vec<JournalRow>> {
                let rows = sqlx::query::<$db>("SELECT seq, entry, leaf_hash FROM journal WHERE seq >= $1 ORDER BY seq LIMIT $2")
                    .bind(i64::try_from(start).unwrap_or(i64::MAX))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter()
                    .map(|r| {
                        let seq: i64 = r.try_get("seq")?;
                        let leaf: Vec<u8> = r.try_get("leaf_hash")?;
                        Ok(JournalRow {
                            seq: u64::try_from(seq).unwrap_or(0),
                            entry: r.try_get("entry")?,
                            leaf_hash: leaf.try_into().map_err(|_| Error::Corrupt { what: "journal leaf hash", detail: "not 32 bytes".into() })?,
                        })
                    })
                    .collect()
            }

            async fn journal_nodes(&self, keys: &[(u8, u64)]) -> Result<Vec<Option<[u8; 32]>>> {
                let corrupt = |what: &'static str| move |_| Error::Corrupt { what, detail: "hash is not 32 bytes".into() };
                // Stored nodes (level >= STORED_NODE_LEVEL), in batches.
                let stored: Vec<&(u8, u64)> = keys.iter().filter(|(l, _)| *l >= STORED_NODE_LEVEL).collect();
                let mut found: std::collections::HashMap<(u8, u64), [u8; 32]> = std::collections::HashMap::with_capacity(keys.len());
                for chunk in stored.chunks(ROWS_PER_INSERT) {
                    let tuples: Vec<String> = (0..chunk.len()).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect();
                    let sql = sqlx::AssertSqlSafe(format!(
                        "SELECT level, idx, hash FROM journal_nodes WHERE (level, idx) IN (VALUES {})",
                        tuples.join(", ")
                    ));
                    let mut q = sqlx::query::<$db>(sql);
                    for (level, idx) in chunk {
                        q = q.bind(i64::from(*level)).bind(i64::try_from(*idx).unwrap_or(i64::MAX));
                    }
                    for r in q.fetch_all(&self.pool).await? {
                        let (level, idx): (i64, i64) = (r.try_get("level")?, r.try_get("idx")?);
                        let hash: Vec<u8> = r.try_get("hash")?;
                        let key = (u8::try_from(level).unwrap_or(u8::MAX), u64::try_from(idx).unwrap_or(0));
                        found.insert(key, hash.try_into().map_err(corrupt("journal node"))?);
                    }
                }
                // Low nodes: fetch the leaf hashes of every 16-leaf block they
                // fall in (usually one or two blocks per proof) and fold.
                let mut blocks: Vec<u64> = keys
                    .iter()
                    .filter(|(l, _)| *l < STORED_NODE_LEVEL)
                    .map(|(l, i)| (i << l) >> STORED_NODE_LEVEL)
                    .collect();
                blocks.sort_unstable();
                blocks.dedup();
                let mut leaves: std::collections::HashMap<u64, [u8; 32]> = std::collections::HashMap::new();
                for block in blocks {
                    let start = block << STORED_NODE_LEVEL;
                    let rows = sqlx::query::<$db>("SELECT seq, leaf_hash FROM journal WHERE seq >= $1 AND seq < $2")
                        .bind(i64::try_from(start).unwrap_or(i64::MAX))
                        .bind(i64::try_from(start + (1 << STORED_NODE_LEVEL)).unwrap_or(i64::MAX))
                        .fetch_all(&self.pool)
                        .await?;
                    for r in rows {
                        let seq: i64 = r.try_get("seq")?;
                        let hash: Vec<u8> = r.try_get("leaf_hash")?;
                        leaves.insert(u64::try_from(seq).unwrap_or(0), hash.try_into().map_err(corrupt("journal leaf hash"))?);
                    }
                }
                Ok(keys
                    .iter()
                    .map(|&(level, idx)| {
                        if level >= STORED_NODE_LEVEL {
                            return found.get(&(level, idx)).copied();
                        }
                        let start = idx << level;
                        let hashes: Option<Vec<[u8; 32]>> = (start..start + (1 << level)).map(|s| leaves.get(&s).copied()).collect();
                        hashes.map(|h| perfect_root(&h))
                    })
                    .collect())
            }

            async fn put_checkpoint(&self, size: u64, note: &str, now: OffsetDateTime) -> Result<()> {
                sqlx::query::<$db>("INSERT INTO checkpoints (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING")
                    .bind(i64::try_from(size).unwrap_or(i64::MAX))
                    .bind(note)
                    .bind(ms(now))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn latest_checkpoint(&self) -> Result<Option<(u64, String)>> {
                let row = sqlx::query::<$db>("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| {
                    let size: i64 = r.try_get("size")?;
                    Ok((u64::try_from(size).unwrap_or(0), r.try_get::<String, _>("note")?))
                })
                .transpose()
            }

            async fn checkpoint(&self, size: u64) -> Result<Option<String>> {
                let row = sqlx::query::<$db>("SELECT note FROM checkpoints WHERE size = $1")
                    .bind(i64::try_from(size).unwrap_or(i64::MAX))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.try_get("note")).transpose()?)
            }

            async fn checkpoints(&self) -> Result<Vec<(u64, String)>> {
                let rows = sqlx::query::<$db>("SELECT size, note FROM checkpoints ORDER BY size").fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let size: i64 = r.try_get("size")?;
                        Ok((u64::try_from(size).unwrap_or(0), r.try_get::<String, _>("note")?))
                    })
                    .collect()
            }
        }
    };
}

impl_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "sqlite");
impl_store!(
    PostgresStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    "postgres"
);
