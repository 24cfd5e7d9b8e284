//! The Bulwark device agent: enrollment, mutual-TLS check-in, inventory.
//!
//! # Brief overview
//!
//! - [`enroll`] — generates the device key pair locally (private key written
//!   0600, never sent), trades a one-time token and a CSR for a certificate,
//!   and writes the [`StateDir`].
//! - [`Agent`] — a loaded identity: [`Agent::checkin`] reports presence and,
//!   when the server asks, the full inventory; [`Agent::run`] loops on the
//!   server's poll interval until shut down.
//! - [`update`] — the crash-safe update engine ([`update::UpdateEngine`]):
//!   download, verify, stage, switch, smoke-test, commit or roll back.
//! - [`Collector`] — reads os-release, kernel, hostname, boot id and the
//!   installed packages (dpkg, opkg, apk) under a root directory.
//! - [`logging`] — the agent's and the `bulwark` binary's log output:
//!   plain text off a terminal, `--log-format json` for collectors.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), bulwark_agent::Error> {
//! use bulwark_agent::{Agent, EnrollOptions, enroll};
//! let state = std::path::Path::new("/var/lib/bulwark-agent");
//! enroll(&EnrollOptions {
//!     server: "https://127.0.0.1:8443".into(),
//!     ca_pem: std::fs::read_to_string("/etc/bulwark/ca.pem").unwrap(),
//!     token: "bwe_…".into(),
//!     state_dir: state.into(),
//!     hostname: None,
//! })
//! .await?;
//! let agent = Agent::load(state, "/")?;
//! let answer = agent.checkin().await?;
//! println!("next check-in in {}s", answer.poll_interval_secs);
//! # Ok(()) }
//! ```
//!
//! # Trust model
//!
//! The agent trusts exactly one CA: the one it was given at enrollment
//! (`--ca`), stored as `ca.pem` in its state directory. The server is
//! authenticated by that CA; the device by its certificate.

mod inventory;
pub mod logging;
pub mod monitor;
mod state;
pub mod telemetry;
pub mod update;
mod updater;

pub use inventory::{Collector, MAX_DB_BYTES};
pub use state::{StateDir, StateFile};
pub use updater::{CycleOutcome, DirMetadata, UpdateClient};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulwark_pki::{DeviceKey, Secret};
use bulwark_proto::{CheckinRequest, CheckinResponse, EnrollRequest, EnrollResponse, ErrorBody};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The agent's version, reported at every check-in.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Longest the agent waits for one HTTP exchange.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body the agent accepts.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Everything that can go wrong in the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the state directory failed.
    #[error("{action} {path}: {source}")]
    State {
        /// What was being done.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The state directory exists but is not a usable agent state.
    #[error("state directory {path} is not usable: {reason}")]
    BadState {
        /// Which directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The device is already enrolled (refusing to overwrite its identity).
    #[error(
        "{path} already holds an enrolled identity; use another --state-dir or remove it first"
    )]
    AlreadyEnrolled {
        /// Which directory.
        path: PathBuf,
    },
    /// Key or certificate handling failed.
    #[error("key or certificate error: {0}")]
    Pki(#[from] bulwark_pki::Error),
    /// TLS configuration failed (bad CA file, bad certificate).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The server could not be reached.
    #[error("cannot reach the server at {url}: {reason}")]
    Connect {
        /// URL tried.
        url: String,
        /// Why (the error chain, deduplicated).
        reason: String,
    },
    /// The server refused the request.
    #[error("server refused the request ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The server's error message.
        message: String,
    },
    /// The server's answer was not understood.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The agent's rustls client configuration: the server's CA as the only
/// trust anchor, the device certificate when enrolled; aws-lc-rs only.
pub(crate) fn tls_client_config(
    ca_pem: &str,
    identity: Option<(&str, &Secret)>,
) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| Error::Tls(format!("CA file is not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("CA certificate rejected: {e}")))?;
        n += 1;
    }
    if n == 0 {
        return Err(Error::Tls("CA file holds no certificate".into()));
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((cert_pem, key_pem)) => {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                    .collect::<Result<_, _>>()
                    .map_err(|e| Error::Tls(format!("device certificate is not PEM: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem.expose().as_bytes())
                .map_err(|e| Error::Tls(format!("device key is not PEM: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| Error::Tls(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = cfg;
    // An agent talks to two server names at most (the device listener and
    // the gateway). rustls's default cache is sized for 256 names and
    // preallocates about 15 KB per configuration (a sixth of a simulated
    // device's memory).
    cfg.resumption = rustls::client::Resumption::in_memory_sessions(RESUMPTION_SESSIONS);
    Ok(cfg)
}

/// TLS session tickets kept: 8 per server name, for two names.
const RESUMPTION_SESSIONS: usize = 16;

fn http_client(ca_pem: &str, identity: Option<(&str, &Secret)>) -> Result<reqwest::Client> {
    let mut cfg = tls_client_config(ca_pem, identity)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(cfg)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(300))
        .user_agent(concat!("bulwark-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Tls(e.to_string()))
}

/// Turns a transport error into [`Error::Connect`], or into a refusal when
/// the server's TLS layer rejected this device's certificate.
fn transport_error(url: &str, e: &reqwest::Error) -> Error {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|i| i.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(alert)) = tls {
            use rustls::AlertDescription as A;
            if matches!(
                alert,
                A::CertificateRevoked | A::BadCertificate | A::UnknownCA | A::CertificateUnknown
            ) {
                return Error::Refused {
                    status: 403,
                    message: format!(
                        "the server's TLS layer refused this device's certificate ({alert:?})"
                    ),
                };
            }
        }
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    Error::Connect {
        url: url.to_owned(),
        reason: parts.join(": "),
    }
}

async fn post_json<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: String,
    body: &Req,
) -> Result<Resp> {
    let resp = client
        .post(&url)
        .json(body)
        .send()
        .await
        .map_err(|e| transport_error(&url, &e))?;
    let status = resp.status();
    if let Some(len) = resp.content_length()
        && len > MAX_RESPONSE_BYTES as u64
    {
        return Err(Error::Protocol(format!(
            "response of {len} bytes is over the limit"
        )));
    }
    let bytes = resp.bytes().await.map_err(|e| transport_error(&url, &e))?;
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(Error::Protocol("response over the size limit".into()));
    }
    if !status.is_success() {
        let message = serde_json::from_slice::<ErrorBody>(&bytes)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
        return Err(Error::Refused {
            status: status.as_u16(),
            message,
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| Error::Protocol(e.to_string()))
}

pub(crate) fn base(server: &str) -> String {
    server.trim_end_matches('/').to_owned()
}

/// What [`enroll`] needs.
#[derive(Debug, Clone)]
pub struct EnrollOptions {
    /// Device listener URL, `https://host:port`.
    pub server: String,
    /// The CA certificate (PEM) that signs the device listener's certificate.
    pub ca_pem: String,
    /// The one-time enrollment token.
    pub token: String,
    /// Where to keep the identity (created 0700).
    pub state_dir: PathBuf,
    /// Hostname to report; default: the system's.
    pub hostname: Option<String>,
}

/// Enrolls this device: key pair generated here, CSR sent with the token,
/// certificate and settings written to the state directory.
pub async fn enroll(opts: &EnrollOptions) -> Result<EnrollResponse> {
    let dir = StateDir::new(&opts.state_dir);
    if dir.is_enrolled() {
        return Err(Error::AlreadyEnrolled {
            path: opts.state_dir.clone(),
        });
    }
    if !opts.server.starts_with("https://") {
        return Err(Error::Tls(format!(
            "server URL must start with https:// (got {:?})",
            opts.server
        )));
    }
    let hostname = opts
        .hostname
        .clone()
        .or_else(|| Collector::new("/").collect().hostname)
        .unwrap_or_else(|| "bulwark-device".into());
    let key = DeviceKey::generate()?;
    let csr_pem = key.csr_pem(&hostname)?;
    let client = http_client(&opts.ca_pem, None)?;
    let req = EnrollRequest {
        token: opts.token.clone(),
        csr_pem,
        hostname: Some(hostname),
    };
    let resp: EnrollResponse = post_json(
        &client,
        format!("{}/api/v1/enroll", base(&opts.server)),
        &req,
    )
    .await?;
    dir.write_identity(&opts.server, &resp, &key.to_pem(), &opts.ca_pem)?;
    Ok(resp)
}

/// What one [`Agent::step`] did.
#[derive(Debug)]
pub struct Step {
    /// The server's answer to the check-in.
    pub checkin: CheckinResponse,
    /// The update cycle's outcome, when one ran.
    pub update: Option<Result<CycleOutcome>>,
}

/// An enrolled agent.
#[derive(Debug)]
pub struct Agent {
    state: StateFile,
    state_dir: PathBuf,
    client: reqwest::Client,
    collector: Collector,
    isolation: Option<(Arc<monitor::Isolation>, Option<String>)>,
}

impl Agent {
    /// Loads the identity from `state_dir`; inventory is read under `root`.
    pub fn load(state_dir: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Result<Self> {
        let state_dir: PathBuf = state_dir.into();
        let dir = StateDir::new(state_dir.clone());
        let state = dir.load()?;
        let client = http_client(&state.ca_pem, Some((&state.cert_pem, &state.key_pem)))?;
        Ok(Self {
            state,
            state_dir,
            client,
            collector: Collector::new(root),
            isolation: None,
        })
    }

    /// Obeys quarantines announced in check-in answers with `isolation`,
    /// leaving the device listener (and `gateway`, when given) reachable.
    pub fn set_isolation(&mut self, isolation: Arc<monitor::Isolation>, gateway: Option<String>) {
        self.isolation = Some((isolation, gateway));
    }

    /// This device's id.
    pub fn device_id(&self) -> bulwark_proto::DeviceId {
        self.state.device_id
    }

    /// The update client: TUF verification of the director and the image
    /// repository, and the crash-safe installer configured by `install`.
    pub fn update_client(&self, install: update::InstallConfig) -> Result<UpdateClient> {
        UpdateClient::new(
            self.client.clone(),
            self.state.server.clone(),
            &self.state_dir,
            install,
        )
    }

    /// Pins the image repository's root (from `bulwark repo init`'s
    /// `root.json`): later roots must chain from it.
    pub fn pin_image_root(state_dir: &std::path::Path, root_json: &[u8]) -> Result<()> {
        use bulwark_tuf::LocalMetadata as _;
        bulwark_tuf::Metadata::<bulwark_tuf::Root>::from_slice(root_json)
            .map_err(|e| Error::Protocol(format!("the image root to pin: {e}")))?;
        let mut dir =
            DirMetadata::open(state_dir.join("tuf").join("image")).map_err(|e| Error::State {
                action: "creating",
                path: state_dir.join("tuf"),
                source: e,
            })?;
        dir.store("root", root_json).map_err(Error::Protocol)
    }

    /// One check-in; sends the inventory again at once if the server asks.
    pub async fn checkin(&self) -> Result<CheckinResponse> {
        let inventory = self.collector.collect();
        let digest = inventory.digest();
        let url = format!("{}/api/v1/device/checkin", base(&self.state.server));
        let mut req = CheckinRequest {
            agent_version: AGENT_VERSION.to_owned(),
            boot_id: self.collector.boot_id(),
            inventory_digest: digest,
            inventory: None,
        };
        let first: CheckinResponse = post_json(&self.client, url.clone(), &req).await?;
        if !first.send_inventory {
            return Ok(first);
        }
        req.inventory = Some(inventory);
        let second: CheckinResponse = post_json(&self.client, url, &req).await?;
        if second.send_inventory {
            return Err(Error::Protocol(
                "server still asks for the inventory after receiving it".into(),
            ));
        }
        Ok(second)
    }

    /// One turn of the agent's loop: a check-in, obeying a quarantine (or
    /// its release) announced in the answer, then one update cycle when
    /// `updates` is given. A failed update cycle does not fail the step: it
    /// is in [`Step::update`], and the update engine reports it to the
    /// server itself.
    pub async fn step(&self, updates: Option<&mut UpdateClient>) -> Result<Step> {
        let r = self.checkin().await?;
        if let Some((iso, gateway)) = &self.isolation {
            match &r.quarantine {
                Some(reason) if !iso.attempted() => {
                    let allowed = self.control_plane(gateway.as_deref()).await;
                    let report = iso.isolate(&allowed, reason).await;
                    tracing::warn!(isolated = report.isolated, detail = %report.detail, "quarantine");
                }
                None if iso.attempted() => iso.lift().await,
                _ => {}
            }
        }
        let update = match updates {
            Some(u) => {
                #[expect(
                    clippy::disallowed_methods,
                    reason = "the agent is an edge: it passes the time to the update cycle's expiry checks"
                )]
                let outcome = u.cycle(time::OffsetDateTime::now_utc()).await;
                match &outcome {
                    Ok(
                        CycleOutcome::NothingAssigned
                        | CycleOutcome::UpToDate(_)
                        | CycleOutcome::KeptBack(_),
                    ) => {}
                    Ok(other) => tracing::info!(outcome = ?other, "update cycle"),
                    Err(e) => tracing::warn!(error = %e, "update cycle failed"),
                }
                Some(outcome)
            }
            None => None,
        };
        Ok(Step { checkin: r, update })
    }

    /// Checks in every poll interval until `shutdown` resolves. Failures are
    /// logged and retried with backoff (capped at the poll interval); a
    /// refusal for a revoked or unknown device ends the loop with an error.
    pub async fn run(
        &self,
        mut updates: Option<UpdateClient>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<()> {
        tokio::pin!(shutdown);
        let mut poll = Duration::from_secs(60);
        let mut backoff = Duration::from_secs(1);
        loop {
            let wait = match self.step(updates.as_mut()).await {
                Ok(Step { checkin: r, .. }) => {
                    poll = Duration::from_secs(u64::from(r.poll_interval_secs.clamp(1, 86_400)));
                    backoff = Duration::from_secs(1);
                    tracing::info!(next_in_secs = poll.as_secs(), "checked in");
                    poll
                }
                Err(
                    e @ Error::Refused {
                        status: 401 | 403, ..
                    },
                ) => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_secs = backoff.as_secs(), "check-in failed");
                    let w = backoff.min(poll);
                    backoff = (backoff * 2).min(poll);
                    w
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return Ok(()),
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM: the graceful-shutdown trigger of the
/// `bulwark-agent` and `bulwark` binaries.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
