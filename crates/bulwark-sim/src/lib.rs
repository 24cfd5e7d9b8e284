//! `bulwark-sim`: a fleet of virtual devices in one process.
//!
//! Every virtual device runs the real agent library over the real
//! protocols: it enrolls with a key pair of its own ([`bulwark_agent::enroll`]),
//! checks in over mutual TLS, verifies and installs updates through the
//! TUF client and the crash-safe update engine into a slot directory of its
//! own, publishes telemetry over MQTT to the device gateway, and obeys a
//! quarantine. Only the device's *behaviour* is modelled: the
//! [`model::DeviceModel`] gives each one a persona, a daily cycle, reboots
//! and flaky links, and stages the named [`Attack`]s.
//!
//! The simulator is what `bulwark sim`, `bulwark demo`, the end-to-end test
//! and the benchmarks drive. A device whose `install/faulty` marker exists
//! fails a smoke test that looks for it (`test ! -e "$BULWARK_SLOT/../../faulty"`),
//! which is how a demo shows rollbacks on real hardware faults.

pub mod model;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bulwark_agent::monitor::{Isolation, IsolationMode, TelemetryOptions, TelemetrySource};
use bulwark_agent::update::{FinalState, InstallConfig};
use bulwark_agent::{Agent, CycleOutcome, EnrollOptions, StateDir};
use bulwark_proto::DeviceId;
use bulwark_proto::telemetry::{Encoding, Telemetry};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

pub use model::{Attack, AttackSwitch, DeviceModel};

/// The smoke test that fails on devices with the `faulty` marker: give it
/// to `bulwark release publish --smoke-test` (A/B installer).
pub const FAULTY_SMOKE_TEST: &str = "test ! -e \"$BULWARK_SLOT/../../faulty\"";

/// What to simulate.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The device listener, `https://host:port`.
    pub server: String,
    /// The CA (PEM) of the device listener's certificate.
    pub ca_pem: String,
    /// An enrollment token good for `devices` enrollments.
    pub enroll_token: String,
    /// How many devices.
    pub devices: usize,
    /// The MQTT gateway `host:port`; no telemetry without it.
    pub gateway: Option<String>,
    /// Per-device state (identity, update state, slots) lives under it.
    pub work_dir: PathBuf,
    /// Time between check-ins (each device starts at a random offset).
    pub checkin_interval: Duration,
    /// Time between telemetry samples.
    pub telemetry_interval: Duration,
    /// How the devices encode telemetry.
    pub telemetry_encoding: Encoding,
    /// Seed of every device's behaviour.
    pub seed: u64,
    /// The image repository's `root.json` to pin on enrollment.
    pub image_root: Option<Vec<u8>>,
    /// How many devices carry the `faulty` marker (their smoke tests fail).
    pub faulty: usize,
    /// An attack to stage.
    pub attack: Option<AttackPlan>,
    /// Enrollments in flight at once.
    pub enroll_concurrency: usize,
}

/// An attack by some devices, from some time on.
#[derive(Debug, Clone, Copy)]
pub struct AttackPlan {
    /// What they do.
    pub attack: Attack,
    /// How many devices do it (spread over the fleet).
    pub devices: usize,
    /// From this long after the fleet starts; `None`: only when
    /// [`RunningFleet::launch_attack`] is called.
    pub at: Option<Duration>,
}

/// Indices of `k` devices spread evenly over `n`.
pub fn spread(n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    (0..k).map(|i| i * n / k.max(1)).collect()
}

#[expect(
    clippy::disallowed_methods,
    reason = "the simulator is an edge: simulated telemetry carries the wall-clock time"
)]
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One enrolled virtual device.
#[derive(Debug)]
struct SimDevice {
    index: usize,
    id: DeviceId,
    dir: PathBuf,
}

fn device_dir(work: &Path, index: usize) -> PathBuf {
    work.join(format!("device-{index:05}"))
}

/// An enrolled fleet, not yet running.
#[derive(Debug)]
pub struct Fleet {
    cfg: FleetConfig,
    devices: Vec<SimDevice>,
}

impl Fleet {
    /// Enrolls `cfg.devices` devices (those already enrolled under
    /// `cfg.work_dir` are loaded instead), calling `progress(done)` as they
    /// finish.
    pub async fn enroll(
        cfg: FleetConfig,
        progress: &(dyn Fn(usize) + Sync),
    ) -> anyhow::Result<Fleet> {
        std::fs::create_dir_all(&cfg.work_dir)
            .with_context(|| format!("creating {}", cfg.work_dir.display()))?;
        let limit = Arc::new(Semaphore::new(cfg.enroll_concurrency.max(1)));
        let mut set = JoinSet::new();
        let faulty = spread(cfg.devices, cfg.faulty);
        for index in 0..cfg.devices {
            let dir = device_dir(&cfg.work_dir, index);
            let opts = EnrollOptions {
                server: cfg.server.clone(),
                ca_pem: cfg.ca_pem.clone(),
                token: cfg.enroll_token.clone(),
                state_dir: dir.join("state"),
                hostname: Some(format!("sim-{index:05}")),
            };
            let root = cfg.image_root.clone();
            let faulty = faulty.contains(&index);
            let limit = limit.clone();
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let state = StateDir::new(dir.join("state"));
                if !state.is_enrolled() {
                    let mut tries = 0;
                    loop {
                        match bulwark_agent::enroll(&opts).await {
                            Ok(_) => break,
                            // A refused token will not get better; a busy
                            // server might.
                            Err(e @ bulwark_agent::Error::Refused { .. }) => {
                                return Err(anyhow::Error::new(e)
                                    .context(format!("enrolling device {index}")));
                            }
                            Err(e) if tries >= 4 => {
                                return Err(anyhow::Error::new(e)
                                    .context(format!("enrolling device {index}")));
                            }
                            Err(_) => {
                                tries += 1;
                                tokio::time::sleep(Duration::from_millis(200 << tries)).await;
                            }
                        }
                    }
                    if let Some(root) = root {
                        Agent::pin_image_root(&dir.join("state"), &root)
                            .with_context(|| format!("pinning the image root on device {index}"))?;
                    }
                }
                let install = dir.join("install");
                std::fs::create_dir_all(install.join("hooks"))?;
                if faulty {
                    std::fs::write(install.join("faulty"), b"sensor self-test fails\n")?;
                } else {
                    let _ = std::fs::remove_file(install.join("faulty"));
                }
                let id = state.load()?.device_id;
                anyhow::Ok(SimDevice { index, id, dir })
            });
        }
        let mut devices = Vec::with_capacity(cfg.devices);
        while let Some(r) = set.join_next().await {
            devices.push(r.context("an enrollment task failed")??);
            progress(devices.len());
        }
        devices.sort_by_key(|d| d.index);
        Ok(Fleet { cfg, devices })
    }

    /// Device ids in index order.
    pub fn ids(&self) -> Vec<DeviceId> {
        self.devices.iter().map(|d| d.id).collect()
    }

    /// Ids of the devices with the `faulty` marker.
    pub fn faulty_ids(&self) -> Vec<DeviceId> {
        spread(self.devices.len(), self.cfg.faulty)
            .into_iter()
            .map(|i| self.devices[i].id)
            .collect()
    }

    /// Starts every device: check-ins with update cycles, and telemetry
    /// when a gateway is configured.
    pub fn start(self) -> anyhow::Result<RunningFleet> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let stats = Arc::new(Stats::default());
        let switch = Arc::new(AttackSwitch::default());
        let started = now_ms();
        let attackers: Vec<usize> = self
            .cfg
            .attack
            .map(|p| spread(self.devices.len(), p.devices))
            .unwrap_or_default();
        if let Some(AttackPlan {
            attack,
            at: Some(at),
            ..
        }) = self.cfg.attack
        {
            switch.arm(
                attack,
                started + u64::try_from(at.as_millis()).unwrap_or(u64::MAX),
            );
        }
        let mut tasks = JoinSet::new();
        let n = self.devices.len();
        for d in &self.devices {
            let mut agent = Agent::load(d.dir.join("state"), d.dir.join("root"))
                .with_context(|| format!("loading device {}", d.index))?;
            let isolation = Isolation::new(IsolationMode::Simulated);
            agent.set_isolation(isolation.clone(), self.cfg.gateway.clone());
            let install = d.dir.join("install");
            let updates = agent.update_client(InstallConfig::new(
                d.dir.join("state").join("update"),
                &install,
                install.join("hooks"),
            ))?;
            let model = DeviceModel::new(self.cfg.seed, d.index as u64);
            let ctx = DeviceTask {
                index: d.index,
                agent,
                updates,
                isolation,
                model: Arc::new(Mutex::new(model)),
                attack: attackers.contains(&d.index).then(|| switch.clone()),
                stats: stats.clone(),
                checkin_interval: self.cfg.checkin_interval,
                telemetry: self.cfg.gateway.clone().map(|gateway| TelemetryOptions {
                    gateway,
                    interval: self.cfg.telemetry_interval,
                    encoding: self.cfg.telemetry_encoding,
                }),
                // Spread the first check-ins over one interval.
                offset: self
                    .cfg
                    .checkin_interval
                    .mul_f64(d.index as f64 / n.max(1) as f64),
            };
            tasks.spawn(ctx.run(stop_rx.clone()));
        }
        Ok(RunningFleet {
            ids: self.ids(),
            attackers: attackers.iter().map(|&i| self.devices[i].id).collect(),
            attack: self.cfg.attack.map(|p| p.attack),
            switch,
            stats,
            stop: stop_tx,
            tasks,
        })
    }
}

/// Counters over the whole fleet.
#[derive(Debug, Default)]
pub struct Stats {
    checkins: AtomicU64,
    checkin_failures: AtomicU64,
    samples: AtomicU64,
    installs: AtomicU64,
    rollbacks: AtomicU64,
    update_failures: AtomicU64,
    isolated: AtomicU64,
    installed: Mutex<BTreeMap<usize, String>>,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Check-ins answered.
    pub checkins: u64,
    /// Check-ins that failed (network, server errors, refusals).
    pub checkin_failures: u64,
    /// Telemetry samples produced.
    pub samples: u64,
    /// Updates installed and committed.
    pub installs: u64,
    /// Updates rolled back (failed smoke tests).
    pub rollbacks: u64,
    /// Updates that failed before changing anything, or were refused by
    /// verification.
    pub update_failures: u64,
    /// Devices that isolated themselves on a quarantine.
    pub isolated: u64,
    /// How many devices run each release.
    pub releases: BTreeMap<String, usize>,
}

/// A running fleet.
#[derive(Debug)]
pub struct RunningFleet {
    ids: Vec<DeviceId>,
    attackers: Vec<DeviceId>,
    attack: Option<Attack>,
    switch: Arc<AttackSwitch>,
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl RunningFleet {
    /// Device ids in index order.
    pub fn ids(&self) -> &[DeviceId] {
        &self.ids
    }

    /// The devices that run the planned attack.
    pub fn attackers(&self) -> &[DeviceId] {
        &self.attackers
    }

    /// Starts the planned attack now (a no-op without a plan).
    pub fn launch_attack(&self) {
        if let Some(a) = self.attack {
            self.switch.arm(a, now_ms());
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let s = &self.stats;
        let mut releases = BTreeMap::new();
        for r in s
            .installed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            *releases.entry(r.clone()).or_insert(0) += 1;
        }
        Snapshot {
            checkins: s.checkins.load(Ordering::Relaxed),
            checkin_failures: s.checkin_failures.load(Ordering::Relaxed),
            samples: s.samples.load(Ordering::Relaxed),
            installs: s.installs.load(Ordering::Relaxed),
            rollbacks: s.rollbacks.load(Ordering::Relaxed),
            update_failures: s.update_failures.load(Ordering::Relaxed),
            isolated: s.isolated.load(Ordering::Relaxed),
            releases,
        }
    }

    /// Stops every device and waits for them.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

struct DeviceTask {
    index: usize,
    agent: Agent,
    updates: bulwark_agent::UpdateClient,
    isolation: Arc<Isolation>,
    model: Arc<Mutex<DeviceModel>>,
    attack: Option<Arc<AttackSwitch>>,
    stats: Arc<Stats>,
    checkin_interval: Duration,
    telemetry: Option<TelemetryOptions>,
    offset: Duration,
}

/// The model as the agent's telemetry source.
struct Source {
    model: Arc<Mutex<DeviceModel>>,
    attack: Option<Arc<AttackSwitch>>,
    isolation: Arc<Isolation>,
    stats: Arc<Stats>,
}

impl TelemetrySource for Source {
    fn sample(&mut self, now_ms: u64) -> Option<Telemetry> {
        let attack = self.attack.as_ref().and_then(|s| s.active(now_ms));
        let cut_off = self.isolation.attempted();
        let t = self
            .model
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sample(now_ms, attack, cut_off);
        if t.is_some() {
            self.stats.samples.fetch_add(1, Ordering::Relaxed);
        }
        t
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

impl DeviceTask {
    async fn run(mut self, stop: watch::Receiver<bool>) {
        let telemetry = self.telemetry.take();
        let mut source = Source {
            model: self.model.clone(),
            attack: self.attack.clone(),
            isolation: self.isolation.clone(),
            stats: self.stats.clone(),
        };
        let publish = async {
            if let Some(opts) = telemetry {
                let _ = self
                    .agent
                    .publish_telemetry_from(
                        opts,
                        &mut source,
                        self.isolation.clone(),
                        stopped(stop.clone()),
                    )
                    .await;
            }
        };
        let checkins = Self::checkins(
            &self.agent,
            &mut self.updates,
            &self.model,
            &self.stats,
            &self.isolation,
            self.index,
            self.checkin_interval,
            self.offset,
            stop.clone(),
        );
        tokio::join!(publish, checkins);
    }

    #[allow(clippy::too_many_arguments)]
    async fn checkins(
        agent: &Agent,
        updates: &mut bulwark_agent::UpdateClient,
        model: &Mutex<DeviceModel>,
        stats: &Stats,
        isolation: &Isolation,
        index: usize,
        interval: Duration,
        offset: Duration,
        stop: watch::Receiver<bool>,
    ) {
        let stop_fut = stopped(stop);
        tokio::pin!(stop_fut);
        let mut wait = offset;
        let mut was_isolated = false;
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut stop_fut => return,
            }
            wait = interval;
            let down = model
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_down(now_ms());
            if down {
                continue;
            }
            match agent.step(Some(updates)).await {
                Ok(step) => {
                    stats.checkins.fetch_add(1, Ordering::Relaxed);
                    match step.update {
                        Some(Ok(CycleOutcome::Finished(FinalState::Installed(_)))) => {
                            stats.installs.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(CycleOutcome::Finished(FinalState::RolledBack { .. }))) => {
                            stats.rollbacks.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(Ok(
                            CycleOutcome::Finished(FinalState::Failed { .. })
                            | CycleOutcome::Refused { .. },
                        ))
                        | Some(Err(_)) => {
                            stats.update_failures.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                    if let Some(info) = updates.engine().installed() {
                        stats
                            .installed
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(index, info.release.clone());
                    }
                }
                Err(e) => {
                    stats.checkin_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(device = index, error = %e, "check-in failed");
                }
            }
            let now = isolation.attempted();
            if now != was_isolated {
                if now {
                    stats.isolated.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.isolated.fetch_sub(1, Ordering::Relaxed);
                }
                was_isolated = now;
            }
        }
    }
}

/// A detection profile for `group` that catches every simulated attack and
/// stays quiet on the fleet's normal behaviour: telnet listeners and
/// scanning quarantine the device; brute force, exfiltration, beacons and
/// new services raise alerts.
pub fn profile(group: &str, version: &str) -> String {
    format!(
        r#"# Written by bulwark-sim: catches every simulated attack.
group = "{group}"
version = "{version}"

[[behaviour]]
name = "telnet-listener"
severity = "critical"
action = "quarantine"
metric = "listening_ports"
operator = "in-set"
threshold = ["tcp/23", "tcp/2323"]

[[behaviour]]
name = "scan"
kind = "fanout"
severity = "critical"
action = "quarantine"
metric = "remote_destinations"
threshold = 50
window = "30s"

[[behaviour]]
name = "bruteforce"
severity = "high"
metric = "failed_logins"
operator = ">"
threshold = 20

[[behaviour]]
name = "bytes-out-spike"
kind = "zscore"
severity = "medium"
metric = "bytes_out"
alpha = 0.05
threshold = 8
min_samples = 20

[[behaviour]]
name = "exfil"
kind = "peer-outlier"
severity = "high"
metric = "bytes_out"
threshold = 100
min_peers = 10

[[behaviour]]
name = "new-destination"
kind = "novelty"
severity = "high"
metric = "remote_destinations"
warmup = "1m"

[[behaviour]]
name = "new-listener"
kind = "novelty"
severity = "high"
metric = "listening_ports"
warmup = "1m"
"#
    )
}
