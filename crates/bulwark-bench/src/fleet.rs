//! Building the fleet: real enrollments for the client devices, bulk
//! inserts for the silent rest.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bulwark_agent::{EnrollOptions, StateDir, StateFile};
use bulwark_api::CreateEnrollToken;
use bulwark_client::Client;
use bulwark_proto::DeviceId;
use bulwark_store::{Audit, NewDevice};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::server::ServerProcess;

/// Group and environment of every benchmark device.
pub(crate) const GROUP: &str = "bench";
/// See [`GROUP`].
pub(crate) const ENVIRONMENT: &str = "dev";
/// Rows generated per `insert_devices` call.
const INSERT_BATCH: usize = 10_000;

/// Creates one one-time enrollment token through the admin API.
async fn create_enroll_token(api: &Client) -> anyhow::Result<String> {
    let body = CreateEnrollToken {
        group: GROUP.into(),
        environment: ENVIRONMENT.into(),
        ttl_secs: Some(3600),
        uses: None,
    };
    Ok(api
        .create_enroll_token(&body)
        .await
        .context("POST /api/v1/enroll-tokens")?
        .value
        .token)
}

/// Enrolls `count` devices for real (`parallel` at a time): a token from the
/// API, then [`bulwark_agent::enroll`] (key generated here, CSR signed by
/// the server). Returns each device's identity, in enrollment order.
pub(crate) async fn enroll_clients(
    server: &ServerProcess,
    agents_dir: &Path,
    count: u32,
    parallel: usize,
) -> anyhow::Result<Vec<StateFile>> {
    let admin_path = server.data_dir.join("admin.token");
    let admin_token = std::fs::read_to_string(&admin_path)
        .with_context(|| format!("reading {}", admin_path.display()))?
        .trim()
        .to_owned();
    let ca_path = server.data_dir.join("ca.pem");
    let ca_pem = std::fs::read_to_string(&ca_path)
        .with_context(|| format!("reading {}", ca_path.display()))?;
    let api = Client::builder(format!("http://{}", server.api_addr), admin_token)
        .timeout(Duration::from_secs(30))
        .build()?;
    let device_url = format!("https://{}", server.device_addr);
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..count {
        let permits = permits.clone();
        let api = api.clone();
        let (device_url, ca_pem) = (device_url.clone(), ca_pem.clone());
        let state_dir: PathBuf = agents_dir.join(format!("client-{i:05}"));
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let token = create_enroll_token(&api).await?;
            bulwark_agent::enroll(&EnrollOptions {
                server: device_url,
                ca_pem,
                token,
                state_dir: state_dir.clone(),
                hostname: Some(format!("bench-client-{i:05}")),
            })
            .await
            .with_context(|| format!("enrolling client {i}"))?;
            let state = StateDir::new(&state_dir)
                .load()
                .with_context(|| format!("loading client {i}'s identity"))?;
            anyhow::Ok((i, state))
        });
    }
    let mut out: Vec<Option<StateFile>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, state) = joined.context("enrollment task panicked")??;
        out[i as usize] = Some(state);
    }
    out.into_iter()
        .map(|s| s.context("an enrollment went missing"))
        .collect()
}

/// Inserts `count` never-connecting devices (random ids and serials)
/// straight into the server's SQLite file, then checks the total.
pub(crate) async fn bulk_insert(
    db_path: &Path,
    count: u64,
    expected_total: u64,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let url = format!("sqlite://{}", db_path.display());
    let store = bulwark_store::open(&url)
        .await
        .with_context(|| format!("opening {url}"))?;
    #[expect(
        clippy::disallowed_methods,
        reason = "benchmark harness: certificates valid from now"
    )]
    let now = time::OffsetDateTime::now_utc();
    let not_after = now + time::Duration::days(365);
    let mut done = 0u64;
    while done < count {
        let n = (count - done).min(INSERT_BATCH as u64);
        #[expect(
            clippy::disallowed_methods,
            reason = "benchmark harness: random device ids and serials"
        )]
        let batch: Vec<NewDevice> = (done..done + n)
            .map(|i| NewDevice {
                id: DeviceId::from_uuid(uuid::Uuid::new_v4()),
                hostname: Some(format!("bench-silent-{i:07}")),
                cert_serial: uuid::Uuid::new_v4().simple().to_string(),
                cert_not_after: not_after,
            })
            .collect();
        store
            .insert_devices(&batch, GROUP, ENVIRONMENT, &Audit::system(now))
            .await
            .context("bulk-inserting devices")?;
        done += n;
    }
    let total = store.count_devices().await?;
    anyhow::ensure!(
        total == expected_total,
        "the store holds {total} devices, expected {expected_total}"
    );
    Ok(started.elapsed())
}
