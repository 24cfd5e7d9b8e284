//! Webhooks and their delivery outbox.
//!
//! Adding and removing a webhook are state changes (journaled). Deliveries
//! are an outbox of observations: enqueued with the alert, attempted by the
//! server's delivery worker, and kept as the delivery log.

use async_trait::async_trait;
use bulwark_proto::{JournalAction, state_digest};
use sqlx::Row as _;
use time::OffsetDateTime;

use crate::backend::{PostgresStore, SqliteStore, from_ms, opt_from_ms};
use crate::model::{ms, stored_enum};
use crate::{Audit, Error, Result};

stored_enum! {
    /// What a delivery reports (`x-bulwark-event`).
    DeliveryEvent, "delivery event" {
        /// A detection alert.
        Detection = "detection",
        /// A vulnerability alert.
        Vulnerability = "vulnerability",
    }
}

stored_enum! {
    /// Where a delivery stands.
    DeliveryState, "delivery state" {
        /// Not delivered yet; attempted when due.
        Pending = "pending",
        /// A 2xx answer came.
        Delivered = "delivered",
        /// Attempts exhausted, or the webhook was removed.
        Failed = "failed",
    }
}

/// A registered webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Id.
    pub id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The HMAC secret, sealed under the server's master key (base64).
    pub secret_sealed: String,
    /// Who added it.
    pub created_by: String,
    /// When.
    pub created_at: OffsetDateTime,
    /// When removed, if it was.
    pub removed_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRow")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("secret_sealed", &"<redacted>")
            .field("created_by", &self.created_by)
            .field("created_at", &self.created_at)
            .field("removed_at", &self.removed_at)
            .finish()
    }
}

/// A delivery to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Id.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// What it reports.
    pub event: DeliveryEvent,
    /// The alert delivered.
    pub alert_id: String,
    /// The exact body to POST (JSON).
    pub body: String,
}

/// A delivery and its attempts so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Id.
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// What it reports.
    pub event: DeliveryEvent,
    /// The alert delivered.
    pub alert_id: String,
    /// The body POSTed.
    pub body: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// HTTP status of the last attempt, if one was received.
    pub last_status: Option<u16>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<OffsetDateTime>,
    /// When enqueued.
    pub created_at: OffsetDateTime,
    /// When delivered.
    pub delivered_at: Option<OffsetDateTime>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A 2xx answer.
    Delivered {
        /// The status.
        status: u16,
    },
    /// Failed; try again at `next_attempt_at`.
    Retry {
        /// The status, if an answer came.
        status: Option<u16>,
        /// What went wrong.
        error: String,
        /// When to try again.
        next_attempt_at: OffsetDateTime,
    },
    /// Failed for the last time.
    GaveUp {
        /// The status, if an answer came.
        status: Option<u16>,
        /// What went wrong.
        error: String,
    },
}

/// Webhooks and their delivery outbox.
#[async_trait]
pub trait WebhookRepo: Send + Sync + std::fmt::Debug {
    /// Registers a webhook; journals `webhook.add` (the URL, never the
    /// secret).
    async fn add_webhook(&self, hook: &WebhookRow, audit: &Audit) -> Result<()>;
    /// Removes a webhook (its pending deliveries are dropped as failed);
    /// false when unknown or already removed. Journals `webhook.remove`.
    async fn remove_webhook(&self, id: &str, audit: &Audit) -> Result<bool>;
    /// Webhooks not removed, oldest first.
    async fn webhooks(&self) -> Result<Vec<WebhookRow>>;
    /// One webhook (removed ones included).
    async fn webhook(&self, id: &str) -> Result<Option<WebhookRow>>;
    /// Enqueues deliveries, due at `now`.
    async fn enqueue_deliveries(&self, new: &[NewDelivery], now: OffsetDateTime) -> Result<()>;
    /// Pending deliveries due at `now`, oldest first.
    async fn due_deliveries(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Delivery>>;
    /// Claims up to `limit` deliveries due at `now` for one worker: in one
    /// statement their next attempt moves to `lease_until`, so no other
    /// process sharing the store sees them as due until the lease passes
    /// (then, if the claimant died without recording an attempt, another
    /// takes them). Two concurrent claims never return the same delivery.
    async fn claim_deliveries(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Records an attempt of a delivery.
    async fn record_attempt(
        &self,
        id: &str,
        outcome: &AttemptOutcome,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// A webhook's deliveries, newest first.
    async fn deliveries(&self, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>>;
}

const HOOK_COLUMNS: &str = "id, url, secret_sealed, created_by, created_at, removed_at";
const DELIVERY_COLUMNS: &str = "id, webhook_id, event, alert_id, body, state, attempts, \
     last_status, last_error, next_attempt_at, created_at, delivered_at";

fn hook_digest(h: &WebhookRow) -> String {
    state_digest(&serde_json::json!({
        "id": h.id, "url": h.url, "removed_at": h.removed_at.map(ms),
    }))
}

macro_rules! impl_webhook_repo {
    ($store:ty, $db:ty, $row:ty, $skip_locked:expr) => {
        impl $store {
            fn hook_rec(row: &$row) -> Result<WebhookRow> {
                Ok(WebhookRow {
                    id: row.try_get("id")?,
                    url: row.try_get("url")?,
                    secret_sealed: row.try_get("secret_sealed")?,
                    created_by: row.try_get("created_by")?,
                    created_at: from_ms("webhook created_at", row.try_get("created_at")?)?,
                    removed_at: opt_from_ms("webhook removed_at", row.try_get("removed_at")?)?,
                })
            }

            fn delivery_rec(row: &$row) -> Result<Delivery> {
                let attempts: i64 = row.try_get("attempts")?;
                let status: Option<i64> = row.try_get("last_status")?;
                Ok(Delivery {
                    id: row.try_get("id")?,
                    webhook_id: row.try_get("webhook_id")?,
                    event: DeliveryEvent::read(row.try_get("event")?)?,
                    alert_id: row.try_get("alert_id")?,
                    body: row.try_get("body")?,
                    state: DeliveryState::read(row.try_get("state")?)?,
                    attempts: u32::try_from(attempts).map_err(|_| Error::Corrupt { what: "delivery attempts", detail: attempts.to_string() })?,
                    last_status: status.and_then(|s| u16::try_from(s).ok()),
                    last_error: row.try_get("last_error")?,
                    next_attempt_at: opt_from_ms("delivery next_attempt_at", row.try_get("next_attempt_at")?)?,
                    created_at: from_ms("delivery created_at", row.try_get("created_at")?)?,
                    delivered_at: opt_from_ms("delivery delivered_at", row.try_get("delivered_at")?)?,
                })
            }
        }

        #[async_trait]
        impl WebhookRepo for $store {
            async fn add_webhook(&self, hook: &WebhookRow, audit: &Audit) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "INSERT INTO webhooks ({HOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
                )))
                .bind(&hook.id)
                .bind(&hook.url)
                .bind(&hook.secret_sealed)
                .bind(&hook.created_by)
                .bind(ms(hook.created_at))
                .bind(hook.removed_at.map(ms))
                .execute(&mut *tx)
                .await
                .map_err(crate::backend::conflict("webhook"))?;
                let entry = audit.entry(JournalAction::WebhookAdd, format!("webhook:{}", hook.id), None,
                    Some(hook_digest(hook)), &[("url", hook.url.clone())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn remove_webhook(&self, id: &str, audit: &Audit) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let mut edge = Self::lock_journal(&mut tx).await?;
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = $1 AND removed_at IS NULL"
                )))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = row else { return Ok(false) };
                let before = Self::hook_rec(&row)?;
                let mut after = before.clone();
                after.removed_at = Some(audit.time);
                sqlx::query::<$db>("UPDATE webhooks SET removed_at = $1 WHERE id = $2")
                    .bind(ms(audit.time))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query::<$db>(
                    "UPDATE webhook_deliveries SET state = 'failed', last_error = 'webhook removed', next_attempt_at = NULL \
                     WHERE webhook_id = $1 AND state = 'pending'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let entry = audit.entry(JournalAction::WebhookRemove, format!("webhook:{id}"),
                    Some(hook_digest(&before)), Some(hook_digest(&after)), &[("url", before.url.clone())]);
                Self::journal_in(&mut tx, &mut edge, &[entry]).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn webhooks(&self) -> Result<Vec<WebhookRow>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {HOOK_COLUMNS} FROM webhooks WHERE removed_at IS NULL ORDER BY created_at, id"
                )))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::hook_rec).collect()
            }

            async fn webhook(&self, id: &str) -> Result<Option<WebhookRow>> {
                let row = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {HOOK_COLUMNS} FROM webhooks WHERE id = $1"
                )))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                row.as_ref().map(Self::hook_rec).transpose()
            }

            async fn enqueue_deliveries(&self, new: &[NewDelivery], now: OffsetDateTime) -> Result<()> {
                for chunk in new.chunks(500) {
                    let mut tx = self.pool.begin().await?;
                    for d in chunk {
                        sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                            "INSERT INTO webhook_deliveries ({DELIVERY_COLUMNS}) \
                             VALUES ($1, $2, $3, $4, $5, 'pending', 0, NULL, NULL, $6, $6, NULL)"
                        )))
                        .bind(&d.id)
                        .bind(&d.webhook_id)
                        .bind(d.event.as_str())
                        .bind(&d.alert_id)
                        .bind(&d.body)
                        .bind(ms(now))
                        .execute(&mut *tx)
                        .await?;
                    }
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn due_deliveries(&self, now: OffsetDateTime, limit: u32) -> Result<Vec<Delivery>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                     WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
                )))
                .bind(ms(now))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::delivery_rec).collect()
            }

            async fn claim_deliveries(&self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32) -> Result<Vec<Delivery>> {
                // On PostgreSQL the chosen rows are locked and rows another
                // claim holds are skipped (`FOR UPDATE SKIP LOCKED`), so
                // concurrent claims split the due deliveries instead of
                // one waiting for the other's rows and then finding them
                // leased (it came back empty while more were due). The
                // outer WHERE repeats the due condition all the same.
                // SQLite runs one writer at a time.
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "UPDATE webhook_deliveries SET next_attempt_at = $1 \
                     WHERE id IN (SELECT id FROM webhook_deliveries \
                                  WHERE state = 'pending' AND next_attempt_at <= $2 \
                                  ORDER BY next_attempt_at, id LIMIT $3{skip}) \
                       AND state = 'pending' AND next_attempt_at <= $2 \
                     RETURNING {DELIVERY_COLUMNS}",
                    skip = $skip_locked,
                )))
                .bind(ms(lease_until))
                .bind(ms(now))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                let mut out: Vec<Delivery> = rows.iter().map(Self::delivery_rec).collect::<Result<_>>()?;
                out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
                Ok(out)
            }

            async fn record_attempt(&self, id: &str, outcome: &AttemptOutcome, now: OffsetDateTime) -> Result<()> {
                let (state, status, error, next, delivered) = match outcome {
                    AttemptOutcome::Delivered { status } => (DeliveryState::Delivered, Some(*status), None, None, Some(ms(now))),
                    AttemptOutcome::Retry { status, error, next_attempt_at } => (DeliveryState::Pending, *status, Some(error.as_str()), Some(ms(*next_attempt_at)), None),
                    AttemptOutcome::GaveUp { status, error } => (DeliveryState::Failed, *status, Some(error.as_str()), None, None),
                };
                sqlx::query::<$db>(
                    "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, \
                     last_error = $3, next_attempt_at = $4, delivered_at = $5 WHERE id = $6 AND state = 'pending'",
                )
                .bind(state.as_str())
                .bind(status.map(i64::from))
                .bind(error)
                .bind(next)
                .bind(delivered)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn deliveries(&self, webhook_id: &str, limit: u32) -> Result<Vec<Delivery>> {
                let rows = sqlx::query::<$db>(sqlx::AssertSqlSafe(format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE webhook_id = $1 \
                     ORDER BY created_at DESC, id LIMIT $2"
                )))
                .bind(webhook_id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::delivery_rec).collect()
            }
        }
    };
}

impl_webhook_repo!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "");
impl_webhook_repo!(
    PostgresStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    " FOR UPDATE SKIP LOCKED"
);
