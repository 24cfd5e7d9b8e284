//! The enrollment service: one use of an enrollment token and a CSR made
//! on the device become a device certificate, a stored device and a
//! journal entry; and check-ins, recorded in the presence cache.

use std::sync::Arc;
use std::time::Duration;

use bulwark_pki::{DeviceCa, IssuedToken, PresentedToken, RandomSource, TokenKind};
use bulwark_proto::{CheckinRequest, CheckinResponse, DeviceId, EnrollRequest, EnrollResponse};
use bulwark_store::{Audit, DeviceRepo, EnrollTokenRecord, NewDevice, NewEnrollToken};

use crate::clock::Clock;
use crate::presence::{Cached, Presence};
use crate::valid_name;

/// Most devices one enrollment token may enroll.
pub const MAX_ENROLL_TOKEN_USES: u32 = 100_000;
/// Token lifetime when none is asked for, in seconds.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 3600;
/// Longest token lifetime, in seconds (30 days).
pub const MAX_TOKEN_TTL_SECS: u64 = 30 * 86_400;

/// What an enrollment token is for.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The group its devices join.
    pub group: String,
    /// The environment its devices join: one of the server's.
    pub environment: String,
    /// Lifetime in seconds (default [`DEFAULT_TOKEN_TTL_SECS`]).
    pub ttl_secs: Option<u64>,
    /// How many devices it may enroll (default 1).
    pub uses: Option<u32>,
    /// The account creating it.
    pub created_by: String,
}

/// Why an enrollment or a check-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// No such token, or the secret does not match.
    #[error("invalid enrollment token")]
    TokenInvalid,
    /// The token expired.
    #[error("enrollment token expired")]
    TokenExpired,
    /// The token has no use left.
    #[error("{0}")]
    TokenUsedUp(String),
    /// The request breaks a field rule (each message names its field).
    #[error("invalid request: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] bulwark_store::Error),
    /// Anything else (the random source, the CA).
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl EnrollError {
    /// The outcome label of the enrollment counter.
    pub fn outcome(&self) -> &'static str {
        match self {
            EnrollError::TokenInvalid => "invalid_token",
            EnrollError::TokenExpired => "expired_token",
            EnrollError::TokenUsedUp(_) => "used_token",
            EnrollError::Invalid(_) | EnrollError::Store(_) | EnrollError::Internal(_) => "error",
        }
    }
}

fn limit_errors(errs: Vec<bulwark_proto::LimitError>) -> EnrollError {
    EnrollError::Invalid(errs.iter().map(ToString::to_string).collect())
}

/// A token with no use left: a one-time token used, or a multi-use token
/// used `max_uses` times. Both are the same refusal.
fn used_up(token: &EnrollTokenRecord) -> EnrollError {
    EnrollError::TokenUsedUp(if token.max_uses > 1 {
        format!(
            "enrollment token has already been used (all {} uses)",
            token.max_uses
        )
    } else {
        "enrollment token has already been used".into()
    })
}

/// Who made a device request, for the journal.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The request id.
    pub request_id: Option<String>,
    /// The peer address.
    pub source: Option<String>,
}

/// Enrollment tokens, enrollment and check-in.
#[derive(Debug)]
pub struct Enrollment {
    store: Arc<dyn DeviceRepo>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn RandomSource>,
    ca: Arc<DeviceCa>,
    presence: Arc<Presence>,
    /// Validity of the device certificates issued.
    cert_validity: time::Duration,
    /// The agents' poll interval, told at enrollment and each check-in.
    poll_interval: Duration,
    /// The server's environments, in promotion order.
    environments: Vec<String>,
}

impl Enrollment {
    /// The service: certificates from `ca`, valid `cert_validity`; agents
    /// told to poll every `poll_interval`; devices enrolled into one of
    /// `environments`.
    #[allow(
        clippy::too_many_arguments,
        reason = "each part is a distinct dependency"
    )]
    pub fn new(
        store: Arc<dyn DeviceRepo>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn RandomSource>,
        ca: Arc<DeviceCa>,
        presence: Arc<Presence>,
        cert_validity: time::Duration,
        poll_interval: Duration,
        environments: Vec<String>,
    ) -> Self {
        Self {
            store,
            clock,
            rng,
            ca,
            presence,
            cert_validity,
            poll_interval,
            environments,
        }
    }

    /// Creates an enrollment token; returns its plaintext (shown once)
    /// and its record. The environment must be one of the server's: a
    /// typo would strand every device enrolled with it, since promotion
    /// and deployment know only those.
    pub async fn create_token(
        &self,
        req: TokenRequest,
        audit: &Audit,
    ) -> Result<(String, EnrollTokenRecord), EnrollError> {
        let mut errors = Vec::new();
        if !valid_name(&req.group) {
            errors.push("group: 1-64 of a-z 0-9 - _ . starting with a letter or digit".to_owned());
        }
        if !self.environments.contains(&req.environment) {
            errors.push(format!(
                "environment: {:?} is not one of this server's environments ({})",
                req.environment.chars().take(64).collect::<String>(),
                self.environments.join(", ")
            ));
        }
        let ttl = req.ttl_secs.unwrap_or(DEFAULT_TOKEN_TTL_SECS);
        if !(60..=MAX_TOKEN_TTL_SECS).contains(&ttl) {
            errors.push(format!(
                "ttl_secs: must be between 60 and {MAX_TOKEN_TTL_SECS}"
            ));
        }
        let max_uses = req.uses.unwrap_or(1);
        if !(1..=MAX_ENROLL_TOKEN_USES).contains(&max_uses) {
            errors.push(format!(
                "uses: must be between 1 and {MAX_ENROLL_TOKEN_USES}"
            ));
        }
        if !errors.is_empty() {
            return Err(EnrollError::Invalid(errors));
        }
        let token = IssuedToken::generate(TokenKind::Enroll, &*self.rng)
            .map_err(|e| EnrollError::Internal(e.into()))?;
        let rec = self
            .store
            .insert_enroll_token(
                NewEnrollToken {
                    id: token.id.clone(),
                    secret_hash: token.secret_hash.to_vec(),
                    group: req.group,
                    environment: req.environment,
                    created_by: req.created_by,
                    expires_at: audit.time + time::Duration::seconds(ttl as i64),
                    max_uses,
                },
                audit,
            )
            .await?;
        Ok((token.plaintext.expose().to_owned(), rec))
    }

    fn poll_secs(&self) -> u32 {
        u32::try_from(self.poll_interval.as_secs()).unwrap_or(u32::MAX)
    }

    /// Trades one use of an enrollment token and a CSR for a device
    /// certificate (the device id drawn from the random source).
    pub async fn enroll(
        &self,
        req: EnrollRequest,
        origin: Origin,
    ) -> Result<EnrollResponse, EnrollError> {
        req.validate().map_err(limit_errors)?;
        let presented = PresentedToken::parse(TokenKind::Enroll, &req.token)
            .map_err(|_| EnrollError::TokenInvalid)?;
        let token = self
            .store
            .enroll_token(&presented.id)
            .await?
            .ok_or(EnrollError::TokenInvalid)?;
        if !presented.matches(&token.secret_hash) {
            return Err(EnrollError::TokenInvalid);
        }
        let now = self.clock.now();
        if token.uses >= token.max_uses {
            return Err(used_up(&token));
        }
        if token.expires_at <= now {
            return Err(EnrollError::TokenExpired);
        }
        let mut raw = [0u8; 16];
        self.rng
            .fill(&mut raw)
            .map_err(|e| EnrollError::Internal(e.into()))?;
        let id = DeviceId::from_uuid(uuid::Builder::from_random_bytes(raw).into_uuid());
        let cert = self
            .ca
            .sign_device_csr(&req.csr_pem, id, &*self.rng, now, self.cert_validity)
            .map_err(|e| match e {
                bulwark_pki::Error::InvalidCsr { reason } => {
                    EnrollError::Invalid(vec![format!("csr_pem: {reason}")])
                }
                other => EnrollError::Internal(other.into()),
            })?;
        let new = NewDevice {
            id,
            hostname: req.hostname,
            cert_serial: cert.serial_hex.clone(),
            cert_not_after: cert.not_after,
        };
        let device = self
            .store
            .enroll_device(
                &token.id,
                new,
                &Audit::device(now, id, origin.source, origin.request_id),
            )
            .await?
            // Lost a race with other enrollments using the same token.
            .ok_or_else(|| used_up(&token))?;
        self.presence.load(&device);
        tracing::info!(device = %id, group = %device.group, environment = %device.environment, "device enrolled");
        Ok(EnrollResponse {
            device_id: id,
            certificate_pem: cert.pem,
            ca_pem: self.ca.cert_pem().to_owned(),
            poll_interval_secs: self.poll_secs(),
        })
    }

    /// A check-in of the authenticated device `id` (its presence entry
    /// `cached`): presence, agent version, boot id, and the inventory when
    /// it changed (written through and journaled).
    pub async fn checkin(
        &self,
        id: DeviceId,
        cached: Cached,
        req: CheckinRequest,
        origin: Origin,
    ) -> Result<CheckinResponse, EnrollError> {
        req.validate().map_err(limit_errors)?;
        let now = self.clock.now();
        let mut known_digest = cached.inventory_digest;
        if let Some(inv) = &req.inventory {
            if known_digest.as_deref() != Some(req.inventory_digest.as_str()) {
                let json =
                    serde_json::to_string(inv).map_err(|e| EnrollError::Internal(e.into()))?;
                self.store
                    .put_inventory(
                        id,
                        &req.inventory_digest,
                        &json,
                        &Audit::device(now, id, origin.source, origin.request_id),
                    )
                    .await?;
                self.presence
                    .set_inventory_digest(&id, &req.inventory_digest);
            }
            known_digest = Some(req.inventory_digest.clone());
        }
        self.presence
            .record(id, now, &req.agent_version, req.boot_id.as_deref());
        Ok(CheckinResponse {
            poll_interval_secs: self.poll_secs(),
            send_inventory: known_digest.as_deref() != Some(req.inventory_digest.as_str()),
            server_time: now,
            quarantine: cached.quarantine.clone(),
        })
    }
}
