//! One method per admin route of `docs/openapi.json`, grouped as the
//! document tags them, named after its `operationId` (a few made clearer:
//! `advisory_affected`, `put_gate_policy`, `promote_release`). Path
//! parameters (`id`, `reference`) are taken as given and percent-encoded;
//! the server validates them. Not here: the device listener's routes
//! (`/api/v1/device/*`, `/api/v1/enroll`, the agent's) and
//! `GET /api/v1/repo/targets/{path}` (an artifact, larger than this
//! client's answer cap: the agent's updater streams it).

use std::path::Path;

use bulwark_api::{
    AccountView, AddSignature, AdvisoriesView, AffectedView, AlertList, AlertQuery, ApplyProfile,
    AuditPage, AuditQuery, BlobView, CheckpointView, ConsistencyView, CreateAccount,
    CreateDeployment, CreateEnrollToken, CreateRelease, CreateToken, CreateWaiver, CreateWebhook,
    CreatedEnrollToken, CreatedToken, DeliveryList, DeploymentList, DeploymentView, DeviceDetail,
    DeviceList, DeviceQuery, DeviceView, EffectiveProfile, EffectiveProfileQuery, EnrollTokenView,
    GateView, GcView, ImportView, InclusionView, JournalKeyView, OnlineKeyView, PolicyView,
    ProfileList, ProfileView, PromoteRelease, ProofQuery, QuarantineDevice, ReleaseList,
    ReleaseView, RenameDevice, RevokeDevice, RootAccepted, SigningView, TagDevice,
    TelemetryHistory, TelemetryQuery, TokenView, WaiverList, WaiverView, WebhookList, WebhookView,
    WhoAmI,
};
use bytes::Bytes;
use serde::Serialize;

use crate::{Client, ClientError, EventStream, Raw, encode_component as enc, with_query};

type Answer<T> = Result<Raw<T>, ClientError>;

/// Accounts and API tokens.
impl Client {
    /// `GET /api/v1/whoami`: the caller's account and token.
    pub async fn whoami(&self) -> Answer<WhoAmI> {
        self.get("/api/v1/whoami").await
    }

    /// `GET /api/v1/accounts` (admin).
    pub async fn list_accounts(&self) -> Answer<Vec<AccountView>> {
        self.get("/api/v1/accounts").await
    }

    /// `POST /api/v1/accounts` (admin).
    pub async fn create_account(&self, body: &CreateAccount) -> Answer<AccountView> {
        self.post("/api/v1/accounts", body).await
    }

    /// `GET /api/v1/tokens`: the caller's API tokens (never their secrets).
    pub async fn list_tokens(&self) -> Answer<Vec<TokenView>> {
        self.get("/api/v1/tokens").await
    }

    /// `POST /api/v1/tokens`: the token's secret is in the answer, once.
    pub async fn create_token(&self, body: &CreateToken) -> Answer<CreatedToken> {
        self.post("/api/v1/tokens", body).await
    }

    /// `DELETE /api/v1/tokens/{id}`.
    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/api/v1/tokens/{}", enc(id))).await
    }
}

/// Devices and their enrollment tokens.
impl Client {
    /// `GET /api/v1/enroll-tokens`.
    pub async fn list_enroll_tokens(&self) -> Answer<Vec<EnrollTokenView>> {
        self.get("/api/v1/enroll-tokens").await
    }

    /// `POST /api/v1/enroll-tokens`: the token's secret is in the answer,
    /// once.
    pub async fn create_enroll_token(
        &self,
        body: &CreateEnrollToken,
    ) -> Answer<CreatedEnrollToken> {
        self.post("/api/v1/enroll-tokens", body).await
    }

    /// `GET /api/v1/devices`: one page; pass its `next_after` as
    /// `query.after` for the next.
    pub async fn list_devices(&self, query: &DeviceQuery) -> Answer<DeviceList> {
        self.get(&with_query("/api/v1/devices", query)?).await
    }

    /// `GET /api/v1/devices/{id}`.
    pub async fn show_device(&self, id: &str) -> Answer<DeviceDetail> {
        self.get(&format!("/api/v1/devices/{}", enc(id))).await
    }

    /// `GET /api/v1/devices/{id}/telemetry`: per-minute history.
    pub async fn device_telemetry(
        &self,
        id: &str,
        query: &TelemetryQuery,
    ) -> Answer<TelemetryHistory> {
        let path = format!("/api/v1/devices/{}/telemetry", enc(id));
        self.get(&with_query(&path, query)?).await
    }

    /// `POST /api/v1/devices/{id}/tags`.
    pub async fn tag_device(&self, id: &str, body: &TagDevice) -> Answer<DeviceView> {
        self.post(&format!("/api/v1/devices/{}/tags", enc(id)), body)
            .await
    }

    /// `POST /api/v1/devices/{id}/rename`.
    pub async fn rename_device(&self, id: &str, body: &RenameDevice) -> Answer<DeviceView> {
        self.post(&format!("/api/v1/devices/{}/rename", enc(id)), body)
            .await
    }

    /// `POST /api/v1/devices/{id}/revoke`.
    pub async fn revoke_device(&self, id: &str, body: &RevokeDevice) -> Answer<DeviceView> {
        self.post(&format!("/api/v1/devices/{}/revoke", enc(id)), body)
            .await
    }

    /// `POST /api/v1/devices/{id}/quarantine`.
    pub async fn quarantine_device(&self, id: &str, body: &QuarantineDevice) -> Answer<DeviceView> {
        self.post(&format!("/api/v1/devices/{}/quarantine", enc(id)), body)
            .await
    }

    /// `POST /api/v1/devices/{id}/release`: out of quarantine.
    pub async fn release_device(&self, id: &str, body: &QuarantineDevice) -> Answer<DeviceView> {
        self.post(&format!("/api/v1/devices/{}/release", enc(id)), body)
            .await
    }
}

/// The audit journal.
impl Client {
    /// `GET /api/v1/audit/entries`: one page; its `next` is the next
    /// page's `start`.
    pub async fn audit_entries(&self, query: &AuditQuery) -> Answer<AuditPage> {
        self.get(&with_query("/api/v1/audit/entries", query)?).await
    }

    /// `GET /api/v1/audit/entries/{seq}`: the entry with its inclusion
    /// proof (`query.size`: in that checkpoint; default the newest).
    pub async fn audit_entry(&self, seq: u64, query: &ProofQuery) -> Answer<InclusionView> {
        self.get(&with_query(&format!("/api/v1/audit/entries/{seq}"), query)?)
            .await
    }

    /// `GET /api/v1/audit/consistency?from=&size=`.
    pub async fn consistency(&self, query: &ProofQuery) -> Answer<ConsistencyView> {
        self.get(&with_query("/api/v1/audit/consistency", query)?)
            .await
    }

    /// `GET /api/v1/audit/checkpoints`: every stored signed checkpoint.
    pub async fn checkpoints(&self) -> Answer<Vec<CheckpointView>> {
        self.get("/api/v1/audit/checkpoints").await
    }

    /// `GET /api/v1/audit/key`: the journal's origin and verifier key (as
    /// the server says; pin it).
    pub async fn journal_key(&self) -> Answer<JournalKeyView> {
        self.get("/api/v1/audit/key").await
    }

    /// `GET /api/v1/audit/log/checkpoint`: the newest signed checkpoint
    /// note (tlog-tiles).
    pub async fn log_checkpoint(&self) -> Result<String, ClientError> {
        self.get_text("/api/v1/audit/log/checkpoint").await
    }

    /// `GET /api/v1/audit/log/{path}`: a tile or entry bundle (tlog-tiles;
    /// `path` as the spec names it, e.g. `tile/0/000`).
    pub async fn log_tile(&self, path: &str) -> Result<Bytes, ClientError> {
        let path: Vec<String> = path.split('/').map(enc).collect();
        self.get_bytes(&format!("/api/v1/audit/log/{}", path.join("/")))
            .await
    }
}

/// Blobs, releases, signing, promotion, deployments and the image
/// repository.
impl Client {
    /// `POST /api/v1/blobs`: `file` streamed; with `sha256`, the server
    /// refuses other bytes.
    pub async fn upload_blob(&self, file: &Path, sha256: Option<&str>) -> Answer<BlobView> {
        match sha256 {
            Some(d) => {
                self.upload("/api/v1/blobs", file, &[("x-bulwark-sha256", d)])
                    .await
            }
            None => self.upload("/api/v1/blobs", file, &[]).await,
        }
    }

    /// `POST /api/v1/blobs/gc`: deletes blobs no release references.
    pub async fn gc_blobs(&self) -> Answer<GcView> {
        self.send_json(reqwest::Method::POST, "/api/v1/blobs/gc", None)
            .await
    }

    /// `GET /api/v1/releases`, newest first.
    pub async fn list_releases(&self) -> Answer<ReleaseList> {
        self.get("/api/v1/releases").await
    }

    /// `POST /api/v1/releases`: the gate starts scanning it.
    pub async fn create_release(&self, body: &CreateRelease) -> Answer<ReleaseView> {
        self.post("/api/v1/releases", body).await
    }

    /// `GET /api/v1/releases/{reference}` (`name@version`).
    pub async fn show_release(&self, reference: &str) -> Answer<ReleaseView> {
        self.get(&format!("/api/v1/releases/{}", enc(reference)))
            .await
    }

    /// `GET /api/v1/releases/{reference}/gate`: the scan and the verdict
    /// now (`state` is `scanning` until the scan is done).
    pub async fn release_gate(&self, reference: &str) -> Answer<GateView> {
        self.get(&format!("/api/v1/releases/{}/gate", enc(reference)))
            .await
    }

    /// `GET /api/v1/releases/{reference}/sbom?format=` (`cyclonedx` or
    /// `spdx`).
    pub async fn release_sbom(
        &self,
        reference: &str,
        format: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!(
            "/api/v1/releases/{}/sbom?format={}",
            enc(reference),
            enc(format)
        );
        Ok(self.get(&path).await?.value)
    }

    /// `GET /api/v1/releases/{reference}/signing`: what signers sign.
    pub async fn signing(&self, reference: &str) -> Answer<SigningView> {
        self.get(&format!("/api/v1/releases/{}/signing", enc(reference)))
            .await
    }

    /// `POST /api/v1/releases/{reference}/signatures`.
    pub async fn add_signature(&self, reference: &str, body: &AddSignature) -> Answer<SigningView> {
        let path = format!("/api/v1/releases/{}/signatures", enc(reference));
        self.post(&path, body).await
    }

    /// `POST /api/v1/releases/{reference}/promote`.
    pub async fn promote_release(
        &self,
        reference: &str,
        body: &PromoteRelease,
    ) -> Answer<ReleaseView> {
        let path = format!("/api/v1/releases/{}/promote", enc(reference));
        self.post(&path, body).await
    }

    /// `GET /api/v1/deployments`, newest first.
    pub async fn list_deployments(&self) -> Answer<DeploymentList> {
        self.get("/api/v1/deployments").await
    }

    /// `POST /api/v1/deployments`.
    pub async fn create_deployment(&self, body: &CreateDeployment) -> Answer<DeploymentView> {
        self.post("/api/v1/deployments", body).await
    }

    /// `GET /api/v1/repo/online-key`: the key to list under snapshot and
    /// timestamp in a new root.
    pub async fn online_key(&self) -> Answer<OnlineKeyView> {
        self.get("/api/v1/repo/online-key").await
    }

    /// `GET /api/v1/repo/metadata/{name}` (`root.json`, `3.root.json`,
    /// `2.targets.json`, …): the bytes as signed.
    pub async fn repo_metadata(&self, name: &str) -> Result<Bytes, ClientError> {
        self.get_bytes(&format!("/api/v1/repo/metadata/{}", enc(name)))
            .await
    }

    /// `POST /api/v1/repo/root`: a signed root, sent byte for byte.
    pub async fn put_root(&self, signed_root: impl Into<Bytes>) -> Answer<RootAccepted> {
        self.post_bytes("/api/v1/repo/root", signed_root).await
    }
}

/// The release gate: policy, waivers, advisories.
impl Client {
    /// `GET /api/v1/gate/policy`.
    pub async fn gate_policy(&self) -> Answer<PolicyView> {
        self.get("/api/v1/gate/policy").await
    }

    /// `PUT /api/v1/gate/policy`: `policy` is a `bulwark_gate::Policy` (or
    /// its JSON).
    pub async fn put_gate_policy<P: Serialize + ?Sized>(&self, policy: &P) -> Answer<PolicyView> {
        self.put("/api/v1/gate/policy", policy).await
    }

    /// `GET /api/v1/waivers`.
    pub async fn list_waivers(&self) -> Answer<WaiverList> {
        self.get("/api/v1/waivers").await
    }

    /// `POST /api/v1/waivers`.
    pub async fn add_waiver(&self, body: &CreateWaiver) -> Answer<WaiverView> {
        self.post("/api/v1/waivers", body).await
    }

    /// `POST /api/v1/waivers/{id}/revoke`.
    pub async fn revoke_waiver(&self, id: &str) -> Result<(), ClientError> {
        self.post_empty(&format!("/api/v1/waivers/{}/revoke", enc(id)))
            .await
    }

    /// `GET /api/v1/advisories`: the advisory database's size.
    pub async fn advisories(&self) -> Answer<AdvisoriesView> {
        self.get("/api/v1/advisories").await
    }

    /// `POST /api/v1/advisories?source=`: `file` (an OSV archive or JSON,
    /// or the CISA KEV catalog) streamed; `source` names it in the
    /// journal.
    pub async fn import_advisories(&self, source: &str, file: &Path) -> Answer<ImportView> {
        let path = format!("/api/v1/advisories?source={}", enc(source));
        self.upload(&path, file, &[]).await
    }

    /// `GET /api/v1/advisories/{id}/affected`: releases and devices an
    /// advisory hits now.
    pub async fn advisory_affected(&self, id: &str) -> Answer<AffectedView> {
        self.get(&format!("/api/v1/advisories/{}/affected", enc(id)))
            .await
    }
}

/// Detection: alerts, profiles, webhooks.
impl Client {
    /// `GET /api/v1/alerts`: vulnerability and detection alerts.
    pub async fn alerts(&self, query: &AlertQuery) -> Answer<AlertList> {
        self.get(&with_query("/api/v1/alerts", query)?).await
    }

    /// `GET /api/v1/alerts/stream`: alerts as they are raised
    /// ([`crate::SseEvent::alert`] reads them).
    pub async fn alert_stream(&self) -> Result<EventStream, ClientError> {
        self.sse("/api/v1/alerts/stream").await
    }

    /// `GET /api/v1/profiles`: every stored version, oldest first.
    pub async fn list_profiles(&self) -> Answer<ProfileList> {
        self.get("/api/v1/profiles").await
    }

    /// `POST /api/v1/profiles`: a new version of a group's profile.
    pub async fn apply_profile(&self, body: &ApplyProfile) -> Answer<ProfileView> {
        self.post("/api/v1/profiles", body).await
    }

    /// `GET /api/v1/profiles/effective?group=`: the profile a group's
    /// devices are judged by.
    pub async fn effective_profile(
        &self,
        query: &EffectiveProfileQuery,
    ) -> Answer<EffectiveProfile> {
        self.get(&with_query("/api/v1/profiles/effective", query)?)
            .await
    }

    /// `GET /api/v1/webhooks`.
    pub async fn list_webhooks(&self) -> Answer<WebhookList> {
        self.get("/api/v1/webhooks").await
    }

    /// `POST /api/v1/webhooks`.
    pub async fn add_webhook(&self, body: &CreateWebhook) -> Answer<WebhookView> {
        self.post("/api/v1/webhooks", body).await
    }

    /// `DELETE /api/v1/webhooks/{id}`.
    pub async fn remove_webhook(&self, id: &str) -> Result<(), ClientError> {
        self.delete(&format!("/api/v1/webhooks/{}", enc(id))).await
    }

    /// `GET /api/v1/webhooks/{id}/deliveries`, newest first.
    pub async fn webhook_deliveries(&self, id: &str) -> Answer<DeliveryList> {
        self.get(&format!("/api/v1/webhooks/{}/deliveries", enc(id)))
            .await
    }
}

/// Outside `/api/v1`, on the same listener.
impl Client {
    /// `GET /metrics`: Prometheus (OpenMetrics) text.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.get_text("/metrics").await
    }

    /// `GET /api/v1/openapi.json`: the API's document, as this server
    /// serves it.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        Ok(self.get("/api/v1/openapi.json").await?.value)
    }
}
