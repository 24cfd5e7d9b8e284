//! Telemetry history benchmarks (issue 17): what keeping per-minute
//! aggregates costs the store.
//!
//! - **Write throughput.** The server's history writer hands the store
//!   one batch every 10 s: every device that finished a minute since. At
//!   100,000 devices reporting every 10 s that is 100,000 minute rows (and
//!   as many latest samples) a minute, about 1,667 rows/s on average, in
//!   batches of about 16,700. The suite writes `--minutes` such batches of
//!   `--devices` rows through `MonitorRepo::put_telemetry`, exactly as
//!   the server does (latest samples included: the `typical` sample's
//!   JSON, 690 B), and reports rows/s and how far above the needed rate
//!   that is.
//! - **Storage per device-day.** The database's growth over those rows
//!   (SQLite: the file after a WAL checkpoint; PostgreSQL:
//!   `pg_total_relation_size` of the two tables), divided by rows and
//!   multiplied by the 1,440 minutes of a day.
//!
//! PostgreSQL is measured when `--postgres` is given (a throwaway server,
//! as the store tests start it).

use std::process::ExitCode;
use std::time::Instant;

use bulwark_proto::DeviceId;
use bulwark_store::{LatestTelemetry, Store, TelemetryMinute};
use time::OffsetDateTime;

/// Arguments of `bulwark-bench telemetry`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TelemetryArgs {
    /// Devices per minute batch [default: 100000; with --quick: 10000].
    #[arg(long)]
    pub(crate) devices: Option<u64>,
    /// Minute batches written [default: 5; with --quick: 3].
    #[arg(long)]
    pub(crate) minutes: Option<u64>,
    /// Also measure PostgreSQL (a throwaway server).
    #[arg(long)]
    pub(crate) postgres: bool,
    /// Small run.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print only the markdown table on stdout.
    #[arg(long)]
    pub(crate) markdown: bool,
}

const LATEST: &str = r#"{"schema":1,"time":1795000000000,"seq":42,"listening":[{"proto":"tcp","port":22,"addr":"0.0.0.0"},{"proto":"tcp","port":8080,"addr":"::"},{"proto":"udp","port":5353,"addr":"192.168.1.20"}],"connections":[{"proto":"tcp","local_port":41000,"remote_addr":"198.51.100.7","remote_port":443,"state":"established"},{"proto":"udp","local_port":40001,"remote_addr":"2001:db8::1","remote_port":53,"state":"established"},{"proto":"tcp","local_port":41002,"remote_addr":"203.0.113.9","remote_port":8883,"state":"syn_sent"}],"net":{"bytes_in":123456789,"bytes_out":98765432,"packets_in":100000,"packets_out":90000},"connection_attempts":3,"failed_logins":2,"process_count":117,"cpu_percent":12.5,"memory_percent":43.25}"#;

fn minute_row(device: u64, minute: OffsetDateTime) -> TelemetryMinute {
    let d = device as f64;
    TelemetryMinute {
        device_id: DeviceId::from_uuid(uuid::Uuid::from_u128(u128::from(device) + 1)),
        minute,
        samples: 6,
        cpu_sum: 6.0 * (d % 50.0),
        cpu_max: d % 70.0,
        memory_sum: 240.0,
        memory_max: 41.0,
        processes_max: 80 + device % 40,
        bytes_in: 120_000 + device % 5_000,
        bytes_out: 60_000 + device % 3_000,
        packets_in: 900,
        packets_out: 700,
        connection_attempts: 12,
        failed_logins: device % 2,
        failed_attempts: device % 3,
        listening_max: 3,
        connections_max: 5,
        destinations_max: 4,
        unanswered_max: 0,
    }
}

/// Writes the batches; returns (rows written, seconds).
async fn measure(store: &dyn Store, devices: u64, minutes: u64) -> anyhow::Result<(u64, f64)> {
    let start = OffsetDateTime::from_unix_timestamp(1_795_000_020)?;
    let mut secs = 0.0;
    for m in 0..minutes {
        let minute = start + time::Duration::minutes(m as i64);
        let rows: Vec<TelemetryMinute> = (0..devices).map(|d| minute_row(d, minute)).collect();
        let latest: Vec<LatestTelemetry> = rows
            .iter()
            .map(|r| LatestTelemetry {
                device_id: r.device_id,
                received_at: minute + time::Duration::seconds(59),
                body: LATEST.to_owned(),
            })
            .collect();
        let t = Instant::now();
        store.put_telemetry(&rows, &latest).await?;
        secs += t.elapsed().as_secs_f64();
        eprintln!("telemetry: minute {}/{minutes} written", m + 1);
    }
    Ok((devices * minutes, secs))
}

/// Total size of the minutes table on PostgreSQL, indexes included.
async fn pg_size(pool: &sqlx::PgPool) -> anyhow::Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT pg_total_relation_size('telemetry_minutes')")
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) async fn run(args: TelemetryArgs) -> anyhow::Result<ExitCode> {
    let devices = args
        .devices
        .unwrap_or(if args.quick { 10_000 } else { 100_000 });
    let minutes = args.minutes.unwrap_or(if args.quick { 3 } else { 5 });
    anyhow::ensure!(devices >= 1 && minutes >= 2, "nothing to measure");
    // Rows a minute at `devices` reporting every 10 s, spread over it.
    let needed = devices as f64 / 60.0;
    let mut table = String::from(
        "| benchmark | rows | rows/s | needed at this fleet size | storage per device-day | target |\n|---|---|---|---|---|---|\n",
    );
    let mut row = |name: &str, (rows, secs, grown): (u64, f64, u64)| {
        let rate = rows as f64 / secs;
        // Minutes grow with time; the latest samples are one row per
        // device, written before the measured batches (they are replaced
        // in place, not added).
        let per_minute = grown as f64 / rows as f64;
        table.push_str(&format!(
            "| telemetry history: {name}, {devices} devices × {minutes} minute batches through `put_telemetry` (the server's writer), latest sample per device included | {rows} | {rate:.0} | {needed:.0} ({:.1}× headroom) | {:.0} KB ({per_minute:.0} B per device-minute) | measured (state it) |\n",
            rate / needed,
            per_minute * 1440.0 / 1000.0,
        ));
    };

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("telemetry.db");
    let store = bulwark_store::open(&format!("sqlite://{}", db.display())).await?;
    let db_size = || -> anyhow::Result<u64> {
        let main = std::fs::metadata(&db)?.len();
        let wal = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len());
        Ok(main + wal)
    };
    // The latest-sample table does not grow with time: fill it first.
    let latest: Vec<LatestTelemetry> = (0..devices)
        .map(|d| LatestTelemetry {
            device_id: minute_row(d, OffsetDateTime::UNIX_EPOCH).device_id,
            received_at: OffsetDateTime::UNIX_EPOCH,
            body: LATEST.to_owned(),
        })
        .collect();
    store.put_telemetry(&[], &latest).await?;
    let before = db_size()?;
    let (rows, secs) = measure(&*store, devices, minutes).await?;
    row(
        "SQLite (WAL)",
        (rows, secs, db_size()?.saturating_sub(before)),
    );

    if args.postgres {
        let pg = bulwark_testpg::TempPostgres::start().map_err(|e| anyhow::anyhow!("{e}"))?;
        let store = bulwark_store::open(pg.url()).await?;
        store.put_telemetry(&[], &latest).await?;
        let pool = sqlx::PgPool::connect(pg.url()).await?;
        let before = pg_size(&pool).await?;
        let (rows, secs) = measure(&*store, devices, minutes).await?;
        let grown = pg_size(&pool).await?.saturating_sub(before);
        row("PostgreSQL 15", (rows, secs, grown));
    }
    if !args.markdown {
        eprintln!();
    }
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}
