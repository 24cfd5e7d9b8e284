//! The Bulwark control plane: admin API, device listener, and the engines
//! behind them.
//!
//! # Brief overview
//!
//! - [`RawConfig`] → [`RawConfig::validate`] → [`ServerConfig`]: pure
//!   configuration checking that reports every problem at once.
//! - [`Server::start`] — opens the data directory (device CA, sealed keys,
//!   store), binds both listeners, and runs until [`Server::shutdown`].
//!   [`run`] is the same with a shutdown signal, for `main`.
//! - [`api::router`] — the admin API (`/api/v1`, bearer tokens, OpenAPI at
//!   `/api/v1/openapi.json`, `/healthz`, `/metrics`).
//! - [`device::router`] and [`device::serve`] — the device listener: mutual
//!   TLS, enrollment and check-in.
//! - [`AppState`] — what handlers share: the store, the [`Clock`], the
//!   random source, the CA, the revocation set and the presence table.
//! - [`ApiError`] — every HTTP failure, mapped to a status in one match.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use bulwark_server::{RawConfig, Server, SystemClock};
//! let config = RawConfig { data_dir: Some("/tmp/bulwark".into()), ..Default::default() }
//!     .validate()
//!     .map_err(|errs| anyhow::anyhow!("{errs:?}"))?;
//! let server = Server::start(config, std::sync::Arc::new(SystemClock)).await?;
//! println!("API on http://{}", server.api_addr());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! Handlers never read the system clock: it comes from [`AppState`], so
//! tests run on a [`ManualClock`]. Secrets (tokens, device ids,
//! certificate serials, sealing nonces) come from the state's
//! `RandomSource`; row ids (`Uuid::new_v4()`) and key pairs still read the
//! OS RNG directly (ARCHITECTURE.md, Invariants). Check-ins are
//! buffered in memory and written in batches (see `presence`), everything
//! else is written through. Device identity comes only from the verified
//! client certificate, never from a request field.
//!
//! # Current limitations
//!
//! The admin API listener speaks plain HTTP; keep it on loopback or put a
//! TLS-terminating proxy in front. Revocations made by another replica reach
//! this one's TLS layer within 10 s (periodic reload).

pub mod api;
mod auth;
mod blobs;
mod bootstrap;
pub mod broker;
mod config;
pub mod device;
mod error;
pub mod follow;
pub mod gateway;
mod http;
pub mod listen;
mod metrics;
mod state;
mod wire;

// The application services (their own crate); re-exported under the
// paths the edges and tests use.
pub use bulwark_services::{clock, events, gate, journal, monitor, presence, updates, webhooks};

pub use auth::{Caller, Permission, allows};
pub use bootstrap::{ensure_data_dir, write_secret_file};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    BrokerTls, ConfigError, DEFAULT_DEVICE_LISTEN, DEFAULT_LISTEN, RawConfig, RawSecret,
    ServerConfig,
};
pub use error::{ApiError, Json, Path, Query};
pub use presence::is_online;
pub use state::{AppState, RevokedSerials, Services, Settings};

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bulwark_pki::{RandomSource, SystemRandom};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How often the revocation set is reloaded from the store in any case (a
/// revocation made through another process arrives sooner, through the
/// journal: see [`follow`]).
pub const REVOCATION_RELOAD: Duration = Duration::from_secs(10);

/// The wire shape of domain events, for [`Services::wire`]: the alert
/// as the API shows it, in JSON.
pub fn wire_encoder() -> bulwark_services::events::WireEncoder {
    Arc::new(wire::encode)
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    api_addr: SocketAddr,
    device_addr: SocketAddr,
    mqtt_addr: Option<SocketAddr>,
    data_dir: PathBuf,
    admin_token_file: Option<PathBuf>,
    state: AppState,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Server {
    /// Prepares the data directory and store, binds both listeners and starts
    /// serving. Port 0 in the config binds a free port (see
    /// [`Server::api_addr`]).
    pub async fn start(config: ServerConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Server> {
        let rng: Arc<dyn RandomSource> = Arc::new(SystemRandom);
        let now = clock.now();
        // TLS material for the external broker, read before anything
        // starts: a missing or unsafe file stops the start.
        let broker_tls = match (&config.mqtt_broker, &config.mqtt_broker_tls) {
            (Some(addr), Some(tls)) => Some(broker::Tls::load(addr, tls)?),
            _ => None,
        };
        bootstrap::ensure_data_dir(&config.data_dir)?;
        let master = bootstrap::master_key(&config.data_dir, &*rng)?;
        let ca = Arc::new(bootstrap::device_ca(&config.data_dir, &master, &*rng, now)?);
        let store = bulwark_store::open(config.database_url.expose())
            .await
            .context("opening the store (check --database-url)")?;
        let admin_token_file =
            bootstrap::first_admin(&config.data_dir, &*store, &*rng, now).await?;
        let revoked = Arc::new(RevokedSerials::default());
        let settings = Settings {
            poll_interval: config.poll_interval,
            device_cert_validity: config.device_cert_validity,
        };
        let signer = bootstrap::journal_signer(
            &config.data_dir,
            &master,
            &*rng,
            config.journal_origin.as_deref(),
        )?;
        let rules_dir = config.yara_rules_dir.clone().or_else(|| {
            let d = config.data_dir.join("rules");
            d.is_dir().then_some(d)
        });
        let last_checkpoint = store.latest_checkpoint().await?.map_or(0, |(size, _)| size);
        bootstrap::builtin_profile(&*store, now)
            .await
            .context("installing the built-in detection profile")?;
        let profiles = latest_profiles(&*store).await?;
        let (monitor, engine_out) = monitor::Monitor::new(profiles, config.detect_shards);
        let services = Services {
            journal_signer: signer,
            updates: updates::Updates::new(
                updates::BlobStore::open(&config.data_dir.join("blobs"), config.max_blob_bytes)
                    .context("opening the blob store")?,
                bootstrap::tuf_key(&config.data_dir, &master, "image-online")?,
                bootstrap::tuf_key(&config.data_dir, &master, "director-root")?,
                bootstrap::tuf_key(&config.data_dir, &master, "director-online")?,
                config.environments.clone(),
                gate::Gate::open(&config.data_dir, rules_dir.as_deref())?,
            ),
            monitor: monitor.clone(),
            webhooks: Arc::new(webhooks::Webhooks::new(
                store.clone(),
                Arc::clone(&clock),
                bulwark_pki::MasterKey::from_bytes(master.as_bytes())?,
                config.webhook_policy.clone(),
            )?),
            wire: wire_encoder(),
        };
        let state = AppState::new(
            store,
            clock,
            rng.clone(),
            ca.clone(),
            revoked.clone(),
            settings,
            services,
        );
        bulwark_services::alerts::spawn_alert_pipeline(
            state.monitor(),
            state.alert_pipeline(),
            engine_out,
        );
        let u = state.updates();
        u.ensure_director_root(&**state.store(), now)
            .await
            .map_err(|e| anyhow::anyhow!("creating the director root: {e:?}"))?;
        // Releases whose scan a crash interrupted are scanned again.
        for rel in state.store().list_releases().await? {
            if state.store().release_scan(&rel.id).await?.is_none() {
                u.gate.spawn_scan(
                    state.store().clone(),
                    u.blobs.path(&rel.sha256),
                    None,
                    rel,
                    state.0.clock.clone(),
                );
            }
        }
        state.0.journal.resume(last_checkpoint);
        // Bootstrap may have journaled (first admin): checkpoint it now.
        state
            .checkpoint_journal()
            .await
            .context("signing the first journal checkpoint")?;
        state
            .reload_revocations()
            .await
            .context("loading revoked devices")?;

        // The listeners' own certificate, renewed before it expires.
        let server_cert = Arc::new(device::tls::RenewingCert::new(
            Arc::clone(&ca),
            config.device_hostnames.clone(),
            rng.clone(),
            Arc::clone(&state.0.clock),
        )?);
        let tls = device::tls_config(ca.cert_der(), Arc::clone(&server_cert), revoked)?;

        let api_listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding the API listener on {}", config.listen))?;
        let device_listener = TcpListener::bind(config.device_listen)
            .await
            .with_context(|| format!("binding the device listener on {}", config.device_listen))?;
        let api_addr = api_listener.local_addr()?;
        let device_addr = device_listener.local_addr()?;
        let mqtt_listener = match config.mqtt_listen {
            Some(a) => Some(
                TcpListener::bind(a)
                    .await
                    .with_context(|| format!("binding the device gateway (MQTT) on {a}"))?,
            ),
            None => None,
        };
        let mqtt_addr = mqtt_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;

        let (stop, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let mut tasks = JoinSet::new();
        let api = api::router(state.clone(), config.max_body_bytes, config.request_timeout);
        // One open-file limit for every listener: each gets its own share.
        let nofile = listen::open_file_limit();
        let caps = listen::caps(
            nofile,
            config.max_api_connections,
            config.max_device_connections,
        );
        if caps.api < config.max_api_connections || caps.device < config.max_device_connections {
            tracing::warn!(
                open_file_limit = ?nofile,
                api_connections = caps.api,
                device_connections = caps.device,
                "connection caps lowered to fit the open-file limit (raise `ulimit -n` for more)"
            );
        }
        let device_fds = Arc::new(tokio::sync::Semaphore::new(caps.device));
        tasks.spawn(listen::serve_api(
            api_listener,
            api,
            caps.api,
            listen::HEADER_TIMEOUT,
            device::tls::SHUTDOWN_GRACE,
            stopped(stop_rx.clone()),
        ));
        let dev_router =
            device::router(state.clone(), config.max_body_bytes, config.request_timeout);
        let idle = config.poll_interval * 2 + Duration::from_secs(10);
        if let Some(listener) = mqtt_listener {
            // Same certificates and verifier; no ALPN (MQTT clients offer
            // none, or "mqtt").
            let mut mqtt_tls = (*tls).clone();
            mqtt_tls.alpn_protocols = Vec::new();
            tasks.spawn(gateway::serve(
                listener,
                Arc::new(mqtt_tls),
                state.clone(),
                monitor.clone(),
                gateway::GatewayConfig {
                    session: bulwark_mqtt::SessionConfig {
                        max_packet_bytes: config.mqtt_max_packet_bytes,
                        rate: bulwark_mqtt::RateLimit {
                            per_second: f64::from(config.mqtt_rate_per_second),
                            burst: config.mqtt_rate_burst,
                        },
                        ..bulwark_mqtt::SessionConfig::default()
                    },
                    max_connections: caps.device,
                    fds: Arc::clone(&device_fds),
                },
                stopped(stop_rx.clone()),
            ));
        }
        if let Some(addr) = config.mqtt_broker.clone() {
            tasks.spawn(broker::consume(
                addr,
                broker_tls.clone(),
                state.clone(),
                monitor.clone(),
                stopped(stop_rx.clone()),
            ));
        }
        tasks.spawn(device::serve(
            device_listener,
            tls,
            dev_router,
            state.clone(),
            device::tls::Limits {
                max_connections: caps.device,
                fds: device_fds,
                idle_timeout: idle,
            },
            stopped(stop_rx.clone()),
        ));
        tasks.spawn(Arc::clone(state.webhooks()).worker(stopped(stop_rx.clone())));
        // Other processes sharing the store: their changes reach this one.
        tasks.spawn(follow::run(state.clone(), stopped(stop_rx.clone())));
        tasks.spawn(background(
            state.clone(),
            config.checkin_flush,
            config.checkpoint_interval,
            config.telemetry_retention,
            stopped(stop_rx),
        ));
        tracing::info!(%api_addr, %device_addr, ?mqtt_addr, backend = state.store().backend(), "bulwark server started");
        Ok(Server {
            api_addr,
            device_addr,
            mqtt_addr,
            data_dir: config.data_dir,
            admin_token_file,
            state,
            stop,
            tasks,
        })
    }

    /// Where the admin API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where the device listener listens.
    pub fn device_addr(&self) -> SocketAddr {
        self.device_addr
    }

    /// Where the device gateway (MQTT) listens, when enabled.
    pub fn mqtt_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Set on first start: where the admin token was written.
    pub fn admin_token_file(&self) -> Option<&std::path::Path> {
        self.admin_token_file.as_deref()
    }

    /// Shared state (for in-process tools and tests).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Writes the telemetry history buffered so far (the background task
    /// does it every few seconds, and shutdown does it last).
    pub async fn flush_telemetry(&self) -> anyhow::Result<()> {
        flush_history(&self.state).await
    }

    /// Stops accepting, lets requests in flight finish, flushes buffered
    /// check-ins.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.state.events().close_streams();
        let _ = self.stop.send(true);
        while let Some(r) = self.tasks.join_next().await {
            if let Err(e) = r {
                tracing::error!(error = %e, "server task panicked");
            }
        }
        self.state
            .flush_checkins()
            .await
            .context("final check-in flush")?;
        // The gateway's sessions have ended: their open minutes are in.
        flush_history(&self.state)
            .await
            .context("final telemetry history flush")?;
        tracing::info!("bulwark server stopped");
        Ok(())
    }
}

/// The latest stored profile of each group, parsed. A stored profile that
/// no longer parses (it was validated when applied) is logged and skipped.
async fn latest_profiles(
    store: &dyn bulwark_store::Store,
) -> anyhow::Result<Vec<bulwark_detect::Profile>> {
    let mut latest = std::collections::BTreeMap::new();
    for row in store.profiles().await? {
        latest.insert(row.group.clone(), row);
    }
    let mut out = Vec::new();
    for (group, row) in latest {
        match bulwark_detect::Profile::from_toml(&row.body) {
            Ok(p) => out.push(p),
            Err(e) => {
                tracing::error!(%group, version = %row.version, error = %e, "stored profile does not parse; skipped")
            }
        }
    }
    Ok(out)
}

/// Writes the telemetry history the monitor buffered; on failure the
/// batch is dropped (observations, not state) and logged.
async fn flush_history(state: &AppState) -> anyhow::Result<()> {
    let (minutes, latest) = state.monitor().history.take();
    if minutes.is_empty() && latest.is_empty() {
        return Ok(());
    }
    state.store().put_telemetry(&minutes, &latest).await?;
    Ok(())
}

/// How often telemetry history past its retention is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

async fn background(
    state: AppState,
    flush_every: Duration,
    checkpoint_every: Duration,
    retention: time::Duration,
    stop: impl Future<Output = ()>,
) {
    let mut history = tokio::time::interval(monitor::history::FLUSH_EVERY);
    history.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prune = tokio::time::interval(PRUNE_EVERY);
    prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpoint = tokio::time::interval(checkpoint_every);
    checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flush = tokio::time::interval(flush_every);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reload = tokio::time::interval(REVOCATION_RELOAD);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if let Err(e) = state.flush_checkins().await {
                    tracing::warn!(error = %e, "check-in flush failed; will retry");
                }
            }
            _ = reload.tick() => {
                if let Err(e) = state.reload_revocations().await {
                    tracing::warn!(error = %e, "revocation reload failed; will retry");
                }
            }
            _ = checkpoint.tick() => {
                if let Err(e) = state.checkpoint_journal().await {
                    tracing::error!(error = %e, "signing a journal checkpoint failed; will retry");
                }
            }
            _ = history.tick() => {
                if let Err(e) = flush_history(&state).await {
                    tracing::warn!(error = %e, "writing telemetry history failed; that batch is lost");
                }
            }
            _ = prune.tick() => {
                let before = state.0.clock.now() - retention;
                match state.store().prune_telemetry(before).await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "telemetry history past its retention deleted"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning telemetry history failed; will retry"),
                }
            }
            () = &mut stop => break,
        }
    }
}

/// Starts the server and runs it until `signal` resolves.
pub async fn run(config: ServerConfig, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
    let server = Server::start(config, Arc::new(SystemClock)).await?;
    println!("Bulwark API:     http://{}", server.api_addr());
    println!(
        "Device listener: https://{} (CA: {})",
        server.device_addr(),
        server.data_dir().join("ca.pem").display()
    );
    if let Some(a) = server.mqtt_addr() {
        println!("Device gateway:  mqtts://{a} (MQTT 3.1.1/5, device certificates)");
    }
    if let Some(p) = server.admin_token_file() {
        println!("Admin token written to {} (mode 0600)", p.display());
    }
    signal.await;
    server.shutdown().await
}
