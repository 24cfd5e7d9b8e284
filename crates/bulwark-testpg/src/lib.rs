//! Throwaway PostgreSQL servers for tests, and the one rule for a test
//! whose external program is missing ([`require`]: skip with a clear line,
//! or fail when `CI` is set).
//!
//! Bulwark's storage layer is tested against a real PostgreSQL. [`TempPostgres::start`] creates
//! a fresh cluster with the locally installed server binaries (Debian's `postgresql` package),
//! starts it on a free `127.0.0.1` port, creates a database named `bulwark`, and hands back its
//! URL. Dropping the value stops the server and deletes every file it wrote.
//!
//! # Example
//!
//! ```no_run
//! use bulwark_testpg::TempPostgres;
//!
//! let pg = TempPostgres::start()?;
//! // postgres://postgres@127.0.0.1:<port>/bulwark
//! let main_url = pg.url();
//! // A second, empty database on the same server, for an isolated test.
//! let other_url = pg.create_database("isolated_case")?;
//! # let _ = (main_url, other_url);
//! drop(pg); // server stopped, temp dir removed
//! # Ok::<(), bulwark_testpg::Error>(())
//! ```
//!
//! # Design
//!
//! * **Binaries.** `initdb`/`pg_ctl` come from the newest `/usr/lib/postgresql/<ver>/bin`
//!   (or `$BULWARK_PG_BINDIR`). `createdb` is taken from the same directory, `psql` and
//!   `pg_isready` from there or `/usr/bin`. If the server binaries are missing, [`Error`] says
//!   so with the `apt-get install -y postgresql` hint. Tests start servers with
//!   [`TempPostgres::require`], which applies [`require`]'s rule: never a silent skip.
//! * **Root.** `initdb` and `pg_ctl` refuse to run as root. When the effective uid is 0 they
//!   are run as the `postgres` OS user via `runuser -u postgres --` (fallback:
//!   `su postgres -s /bin/sh -c`), and the temp dir is `chown -R`ed to that user. Clients
//!   (`createdb`, `psql`, `pg_isready`) run as the current user over TCP.
//! * **Layout.** One temp dir per server (under `$TMPDIR`, which must be traversable by
//!   `postgres` when running as root) holding `data/`, the unix-socket dir `sock/`,
//!   `initdb.log` and `server.log`. The cluster uses trust auth, superuser `postgres`, UTF8 with
//!   the C locale, `--no-sync`, `fsync=off`, and listens on `127.0.0.1` only.
//! * **Ports.** A port is picked by binding `127.0.0.1:0` and releasing it; if the server then
//!   fails to start (e.g. another test grabbed the port), up to 5 ports are tried. Readiness is
//!   `pg_ctl -w` plus a `pg_isready` check. Servers share nothing, so tests may run in parallel.
//! * **Cleanup.** [`Drop`] (which also runs while unwinding from a panic) runs
//!   `pg_ctl stop -m immediate`, falls back to `SIGQUIT` on the postmaster, then removes the temp
//!   dir. As a backstop for values that are never dropped (a `static`, `mem::forget`, the test
//!   process being killed), each server has a small watchdog shell in its own process group
//!   that waits for its stdin pipe from this process to close, then stops the server and
//!   removes the directory.

mod bins;
mod error;
mod exec;
pub mod require;

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::bins::Binaries;
pub use crate::error::Error;
use crate::exec::Runner;
pub use crate::require::{missing, require_python, require_tool, require_tools};

/// How to install the PostgreSQL server and clients [`TempPostgres`] runs.
pub const POSTGRES_INSTALL: &str = "apt-get install -y postgresql";

/// PostgreSQL's binary directory if the server and client programs
/// [`TempPostgres`] runs are installed, else [`missing`]: `None` (after a
/// skip line) outside CI, a panic under CI.
pub fn require_postgres() -> Option<PathBuf> {
    match bins::find(
        std::env::var_os(bins::BINDIR_ENV),
        Path::new(bins::DEBIAN_ROOT),
    ) {
        Ok(bins) => Some(bins.bin_dir),
        Err(Error::BinariesNotFound { searched }) => missing(
            "PostgreSQL (initdb, pg_ctl, and createdb or psql)",
            &format!("searched {searched}"),
            POSTGRES_INSTALL,
        ),
        Err(e) => panic!("{e}"),
    }
}

/// How many ports are tried before giving up.
const START_ATTEMPTS: u32 = 5;
/// Seconds `pg_ctl` waits for start-up / shutdown.
const PG_CTL_TIMEOUT_SECS: &str = "60";
/// How long to poll `pg_isready` after `pg_ctl -w` returned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a log file quoted in error messages.
const LOG_TAIL_LINES: usize = 40;
/// Maximum unix-socket path length (`sun_path` is 108 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Name of the database created by [`TempPostgres::start`].
const DEFAULT_DB: &str = "bulwark";

/// A running throwaway PostgreSQL server; stopped (`pg_ctl stop -m immediate`) and its
/// directory removed on [`Drop`].
#[derive(Debug)]
pub struct TempPostgres {
    /// `None` only once dropped.
    dir: Option<TempDir>,
    data_dir: PathBuf,
    bins: Binaries,
    runner: Runner,
    /// Stops the server if this process goes away without dropping us.
    watchdog: Option<Child>,
    port: u16,
    url: String,
}

impl TempPostgres {
    /// `initdb` into a fresh temp dir, start the server on a free `127.0.0.1` port (retrying
    /// with new ports), wait until it accepts connections, and create database `bulwark`.
    ///
    /// # Errors
    ///
    /// [`Error::BinariesNotFound`] if PostgreSQL is not installed; otherwise whichever step
    /// failed, including the tail of the server log when the server would not start.
    pub fn start() -> Result<TempPostgres, Error> {
        let bins = bins::find(
            std::env::var_os(bins::BINDIR_ENV),
            Path::new(bins::DEBIAN_ROOT),
        )?;
        let runner = Runner::detect()?;

        let dir = tempfile::Builder::new()
            .prefix("bulwark-pg-")
            .tempdir()
            .map_err(|e| Error::io("creating temp dir for PostgreSQL", e))?;
        let root = dir.path().to_path_buf();
        let data_dir = root.join("data");
        let sock_dir = root.join("sock");
        if sock_dir.join(".s.PGSQL.65535").as_os_str().len() > MAX_SOCKET_PATH {
            return Err(Error::Setup(format!(
                "temp dir path {} is too long for a unix socket; set TMPDIR to a shorter path",
                root.display()
            )));
        }
        fs::create_dir(&sock_dir)
            .map_err(|e| Error::io(format!("creating {}", sock_dir.display()), e))?;
        if runner.needs_chown() {
            exec::run(
                Command::new("chown")
                    .arg("-R")
                    .arg(exec::PG_USER)
                    .arg(&root)
                    .stdin(Stdio::null()),
                "chown of the temp dir to the postgres user",
            )?;
        }

        // From here on, Drop cleans up whatever exists.
        let mut pg = TempPostgres {
            dir: Some(dir),
            data_dir,
            bins,
            runner,
            watchdog: None,
            port: 0,
            url: String::new(),
        };
        pg.initdb()?;
        pg.watchdog = Some(pg.spawn_watchdog()?);
        pg.start_server()?;
        pg.url = pg.create_database(DEFAULT_DB)?;
        Ok(pg)
    }

    /// For a test: [`TempPostgres::start`] if PostgreSQL is installed, else
    /// `None` (with a skip line) outside CI and a panic under CI, as
    /// [`require_postgres`] says. Any other failure to start panics.
    pub fn require() -> Option<TempPostgres> {
        require_postgres()?;
        Some(Self::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// `postgres://postgres@127.0.0.1:PORT/bulwark`
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TCP port the server listens on (on `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data directory (inside the temp dir that is removed on drop).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory the server binaries were taken from (it also holds `psql` on Debian).
    pub fn bin_dir(&self) -> &Path {
        &self.bins.bin_dir
    }

    /// `postgres://postgres@127.0.0.1:PORT/<name>` (without creating anything).
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Create another fresh database on the same server and return its URL.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDatabaseName`] unless `name` is 1–63 characters of `[a-z0-9_]`;
    /// [`Error::CommandFailed`] if creation fails (e.g. the database already exists).
    pub fn create_database(&self, name: &str) -> Result<String, Error> {
        validate_db_name(name)?;
        let port = self.port.to_string();
        let what = format!("creating database {name:?}");
        if let Some(createdb) = &self.bins.createdb {
            exec::run(
                exec::client(createdb).args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-w",
                    "--",
                    name,
                ]),
                &what,
            )?;
        } else if let Some(psql) = &self.bins.psql {
            exec::run(
                exec::client(psql)
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-w"])
                    .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                    .args(["-d", "postgres", "-c"])
                    .arg(format!("CREATE DATABASE \"{name}\"")),
                &what,
            )?;
        } else {
            unreachable!("bins::find guarantees createdb or psql");
        }
        Ok(self.url_for(name))
    }

    fn root(&self) -> &Path {
        self.dir
            .as_ref()
            .map(TempDir::path)
            .expect("temp dir present until drop")
    }

    fn initdb(&self) -> Result<(), Error> {
        let args: [&OsStr; 10] = [
            "-D".as_ref(),
            self.data_dir.as_os_str(),
            "-U".as_ref(),
            "postgres".as_ref(),
            "-A".as_ref(),
            "trust".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--no-locale".as_ref(),
            "--no-sync".as_ref(),
        ];
        let output = self
            .runner
            .command(&self.bins.initdb, &args)
            .current_dir(self.root())
            .output()
            .map_err(|e| Error::io(format!("running {}", self.bins.initdb.display()), e))?;
        let log = self.root().join("initdb.log");
        let _ = fs::write(&log, [&output.stdout[..], &output.stderr[..]].concat());
        if !output.status.success() {
            return Err(Error::CommandFailed {
                what: "initdb".into(),
                detail: exec::describe(&output),
            });
        }

        let sock_dir = self.root().join("sock");
        let conf = format!(
            "\n# added by bulwark-testpg\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             shared_buffers = 32MB\n",
            conf_escape(&sock_dir.to_string_lossy())
        );
        let conf_path = self.data_dir.join("postgresql.conf");
        fs::OpenOptions::new()
            .append(true)
            .open(&conf_path)
            .and_then(|mut f| f.write_all(conf.as_bytes()))
            .map_err(|e| Error::io(format!("appending to {}", conf_path.display()), e))
    }

    /// A shell that ignores terminal signals, waits for EOF on its stdin (our end of the pipe
    /// closes when this process exits), then stops the server and removes the directory.
    /// Drop kills it first, so it only acts when we were never dropped.
    fn spawn_watchdog(&self) -> Result<Child, Error> {
        let stop = self.runner.shell_line(&self.bins.pg_ctl, &self.stop_args());
        let mut script = std::ffi::OsString::from(
            "trap '' INT TERM HUP QUIT PIPE\nwhile read -r _; do :; done\n",
        );
        script.push(&stop);
        script.push(" >/dev/null 2>&1\nrm -rf -- ");
        script.push(exec::shell_words(self.root().as_os_str(), &[]));
        script.push("\n");
        let mut cmd = Command::new("/bin/sh");
        exec::sanitize(&mut cmd);
        cmd.arg("-c")
            .arg(script)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io("spawning the cleanup watchdog (/bin/sh)", e))
    }

    fn start_server(&mut self) -> Result<(), Error> {
        let log = self.root().join("server.log");
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let log_offset = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
            match self.try_start(port, &log) {
                Ok(()) => {
                    self.port = port;
                    return Ok(());
                }
                Err(detail) => {
                    // A timed-out start may have left a server behind; make sure it is gone.
                    self.stop_server();
                    last_error = format!(
                        "port {port}: {detail}\n--- tail of server.log ---\n{}",
                        log_tail(&log, log_offset)
                    );
                }
            }
        }
        Err(Error::StartFailed {
            attempts: START_ATTEMPTS,
            detail: last_error,
        })
    }

    fn try_start(&self, port: u16, log: &Path) -> Result<(), String> {
        let port_opt = format!("-p {port}");
        let args: [&OsStr; 10] = [
            "start".as_ref(),
            "-D".as_ref(),
            self.data_dir.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-w".as_ref(),
            "-t".as_ref(),
            PG_CTL_TIMEOUT_SECS.as_ref(),
            "-o".as_ref(),
            port_opt.as_ref(),
        ];
        let output = self
            .runner
            .command(&self.bins.pg_ctl, &args)
            .current_dir(self.root())
            .output()
            .map_err(|e| format!("running {}: {e}", self.bins.pg_ctl.display()))?;
        if !output.status.success() {
            return Err(format!("pg_ctl start: {}", exec::describe(&output)));
        }
        let Some(pg_isready) = &self.bins.pg_isready else {
            return Ok(());
        };
        let port = port.to_string();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let output = exec::client(pg_isready)
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
                .args(["-d", "postgres", "-t", "2"])
                .output()
                .map_err(|e| format!("running {}: {e}", pg_isready.display()))?;
            if output.status.success() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "server not ready after {READY_TIMEOUT:?}: pg_isready {}",
                    exec::describe(&output)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop_args(&self) -> Vec<&OsStr> {
        vec![
            "stop".as_ref(),
            "-D".as_ref(),
            self.data_dir.as_os_str(),
            "-m".as_ref(),
            "immediate".as_ref(),
            "-w".as_ref(),
            "-t".as_ref(),
            PG_CTL_TIMEOUT_SECS.as_ref(),
        ]
    }

    /// Stops the server if its `postmaster.pid` exists: `pg_ctl stop -m immediate`, then
    /// `SIGQUIT` (immediate shutdown) to the postmaster as a fallback. Never fails.
    fn stop_server(&self) {
        let pid_file = self.data_dir.join("postmaster.pid");
        if !pid_file.exists() {
            return;
        }
        let _ = self
            .runner
            .command(&self.bins.pg_ctl, &self.stop_args())
            .current_dir(self.root())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !pid_file.exists() {
            return;
        }
        let Some(pid) = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
        else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-QUIT", &pid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while pid_file.exists() && process_alive(pid) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        if self.dir.is_none() {
            return;
        }
        self.stop_server();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_path_buf();
            if dir.close().is_err() {
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
}

/// Accepts `[a-z0-9_]{1,63}` (63 bytes is PostgreSQL's identifier limit).
fn validate_db_name(name: &str) -> Result<(), Error> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidDatabaseName {
            name: name.to_owned(),
        })
    }
}

/// A currently free port on 127.0.0.1 (bound, then released).
fn free_port() -> Result<u16, Error> {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("picking a free port on 127.0.0.1", e))
}

/// Escapes a value for a single-quoted `postgresql.conf` string.
fn conf_escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "''")
}

/// The last [`LOG_TAIL_LINES`] lines written to `path` after byte `offset`.
fn log_tail(path: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    let read = fs::File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(offset))?;
        f.read_to_end(&mut bytes)
    });
    if let Err(e) = read {
        return format!("(could not read log: {e})");
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
    if tail.is_empty() {
        "(empty)".into()
    } else {
        tail
    }
}

/// Whether `pid` exists and is not a zombie (an unreaped zombie holds no resources).
fn process_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Format: `pid (comm) state …`; comm may contain spaces/parens, so split after the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names() {
        for ok in ["bulwark", "a", "test_01", &"x".repeat(63)] {
            validate_db_name(ok).unwrap();
        }
        for bad in [
            "",
            "Upper",
            "has-dash",
            "sp ace",
            "quo\"te",
            "é",
            &"x".repeat(64),
        ] {
            let err = validate_db_name(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidDatabaseName { .. }), "{bad}");
        }
    }

    #[test]
    fn conf_values_are_escaped() {
        assert_eq!(conf_escape(r"/tmp/it's\x"), r"/tmp/it''s\\x");
    }

    #[test]
    fn tail_of_log_after_offset() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let old = "old\n".repeat(5);
        let new: String = (0..100).map(|i| format!("line {i}\n")).collect();
        fs::write(&log, format!("{old}{new}")).unwrap();
        let tail = log_tail(&log, old.len() as u64);
        assert!(
            tail.starts_with("line 60\n") && tail.ends_with("line 99"),
            "{tail}"
        );
        assert_eq!(log_tail(&log, (old.len() + new.len()) as u64), "(empty)");
    }

    #[test]
    fn own_process_is_alive() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}
