//! The `bulwark server` child process under test.
//!
//! [`ServerProcess`] owns the child: it is stopped on [`ServerProcess::stop`]
//! (SIGTERM, then SIGKILL after a grace period) and killed in `Drop` on
//! every other path (errors, panics, Ctrl-C), so no server outlives the
//! benchmark.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// How long the server gets to answer `/healthz` after spawning.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of the server log shown when it fails.
const LOG_TAIL_LINES: usize = 40;

/// A running `bulwark server`.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Option<Child>,
    /// Admin API, plain HTTP.
    pub(crate) api_addr: SocketAddr,
    /// Device listener, mTLS.
    pub(crate) device_addr: SocketAddr,
    /// `--data-dir`.
    pub(crate) data_dir: PathBuf,
    /// Where its stdout and stderr go.
    pub(crate) log_path: PathBuf,
}

/// The default `bulwark` binary: next to the running executable.
pub(crate) fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dir = exe
        .parent()
        .context("the running executable has no parent directory")?;
    Ok(dir.join(format!("bulwark{}", std::env::consts::EXE_SUFFIX)))
}

/// A port free on 127.0.0.1 right now (bind to port 0, read, release).
pub(crate) fn free_port() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?)
}

/// The last `n` lines of a file, for error messages.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

impl ServerProcess {
    /// Spawns `binary server` on two free loopback ports with its data
    /// directory and log under `work`, and waits until `/healthz` answers.
    pub(crate) async fn start(binary: &Path, work: &Path) -> anyhow::Result<Self> {
        Self::start_with(binary, work, &[]).await
    }

    /// [`Self::start`] with extra `server` arguments.
    pub(crate) async fn start_with(
        binary: &Path,
        work: &Path,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            binary.is_file(),
            "{} does not exist; build it with `cargo build --profile dist -p bulwark-cli` (as `cargo xtask bench` does) or pass --bulwark PATH",
            binary.display()
        );
        let api_addr = free_port()?;
        let mut device_addr = free_port()?;
        while device_addr == api_addr {
            device_addr = free_port()?;
        }
        let data_dir = work.join("data");
        let log_path = work.join("server.log");
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(binary)
            .arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg(api_addr.to_string())
            .arg("--device-listen")
            .arg(device_addr.to_string())
            .args(extra)
            .env(
                "BULWARK_LOG",
                std::env::var("BULWARK_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = ServerProcess {
            child: Some(child),
            api_addr,
            device_addr,
            data_dir,
            log_path,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("http://{}/healthz", self.api_addr);
        let started = Instant::now();
        loop {
            self.check_alive()?;
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "the server did not answer {url} within {START_TIMEOUT:?}; last log lines:\n{}",
                    tail(&self.log_path, LOG_TAIL_LINES)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails (with the log's tail) if the server process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            bail!(
                "the server exited ({status}); last log lines of {}:\n{}",
                self.log_path.display(),
                tail(&self.log_path, LOG_TAIL_LINES)
            );
        }
        Ok(())
    }

    /// Graceful stop: SIGTERM (via kill(1); this crate has no unsafe code),
    /// then SIGKILL if it has not exited within 15 s.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    eprintln!(
                        "bulwark-bench: server exited with {status}; last log lines:\n{}",
                        tail(&self.log_path, LOG_TAIL_LINES)
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the server did not stop within 15 s of SIGTERM; killed");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
