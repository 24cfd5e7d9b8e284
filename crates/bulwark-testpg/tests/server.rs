//! End-to-end tests: start real PostgreSQL servers and talk to them with `psql`.
//!
//! Without PostgreSQL each test says so and returns, or fails when `CI` is set
//! (`bulwark_testpg::require_postgres`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use bulwark_testpg::{TempPostgres, require_postgres};

fn start() -> TempPostgres {
    TempPostgres::start().unwrap_or_else(|e| panic!("TempPostgres::start failed: {e}"))
}

fn psql_path(pg: &TempPostgres) -> PathBuf {
    [pg.bin_dir().join("psql"), PathBuf::from("/usr/bin/psql")]
        .into_iter()
        .find(|p| p.is_file())
        .expect("psql installed")
}

/// Runs one query via `psql` against `url` and returns the unaligned, tuples-only output.
fn query(psql: &Path, url: &str, sql: &str) -> String {
    let out = Command::new(psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql {url} -c {sql:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn accepts_connections(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// Whether `pid` is running (zombies count as gone).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X")
    })
}

fn postmaster_pid(pg: &TempPostgres) -> u32 {
    std::fs::read_to_string(pg.data_dir().join("postmaster.pid"))
        .expect("postmaster.pid")
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn select_one_second_database_and_cleanup() {
    let Some(pg) = TempPostgres::require() else {
        return;
    };
    let port = pg.port();
    assert_eq!(
        pg.url(),
        format!("postgres://postgres@127.0.0.1:{port}/bulwark")
    );
    let psql = psql_path(&pg);
    assert_eq!(query(&psql, pg.url(), "SELECT 1"), "1");
    assert_eq!(
        query(&psql, pg.url(), "SELECT current_database()"),
        "bulwark"
    );
    assert_eq!(query(&psql, pg.url(), "SHOW fsync"), "off");
    assert_eq!(query(&psql, pg.url(), "SHOW server_encoding"), "UTF8");

    let second = pg.create_database("second_db").expect("create second db");
    assert_eq!(
        second,
        format!("postgres://postgres@127.0.0.1:{port}/second_db")
    );
    assert_eq!(
        query(&psql, &second, "SELECT current_database()"),
        "second_db"
    );
    query(
        &psql,
        &second,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (42)",
    );
    assert_eq!(query(&psql, &second, "SELECT x FROM t"), "42");

    let err = pg.create_database("second_db").unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    for bad in ["Bad", "a;drop", "", "x-y"] {
        let err = pg.create_database(bad).unwrap_err();
        assert!(err.to_string().contains("invalid database name"), "{err}");
    }

    let data_dir = pg.data_dir().to_path_buf();
    let root = data_dir.parent().unwrap().to_path_buf();
    let pid = postmaster_pid(&pg);
    assert!(data_dir.join("PG_VERSION").is_file());
    assert!(root.join("server.log").is_file());
    drop(pg);
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(!process_alive(pid), "postmaster {pid} still running");
    assert!(!accepts_connections(port), "port {port} still open");
}

#[test]
fn two_servers_run_at_the_same_time() {
    if require_postgres().is_none() {
        return;
    }
    let handles: Vec<_> = (0..2).map(|_| thread::spawn(start)).collect();
    let servers: Vec<TempPostgres> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let (a, b) = (&servers[0], &servers[1]);
    assert_ne!(a.port(), b.port());
    assert_ne!(a.data_dir(), b.data_dir());
    let psql = psql_path(a);
    // Each server has its own catalog: a table made in one is invisible in the other.
    query(&psql, a.url(), "CREATE TABLE only_in_a (x int)");
    assert_eq!(
        query(
            &psql,
            a.url(),
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "1"
    );
    assert_eq!(
        query(
            &psql,
            b.url(),
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        ),
        "0"
    );
    // Same database name on both servers is fine.
    a.create_database("shared_name").unwrap();
    b.create_database("shared_name").unwrap();
}

#[test]
fn server_is_stopped_when_dropped_during_a_panic() {
    if require_postgres().is_none() {
        return;
    }
    let (tx, rx) = mpsc::channel();
    let result = thread::spawn(move || {
        let pg = start();
        tx.send((pg.port(), pg.data_dir().to_path_buf(), postmaster_pid(&pg)))
            .unwrap();
        panic!("deliberate panic while a TempPostgres is alive");
    })
    .join();
    assert!(result.is_err(), "the thread should have panicked");
    let (port, data_dir, pid) = rx.recv().expect("server had started");
    // Drop ran during unwinding, before join returned.
    assert!(!process_alive(pid), "postmaster {pid} still running");
    assert!(!data_dir.exists(), "{} still exists", data_dir.display());
    assert!(!accepts_connections(port), "port {port} still open");
}

#[test]
fn watchdog_stops_a_server_that_is_never_dropped() {
    if require_postgres().is_none() {
        return;
    }
    // A child test process starts a server, leaks it (no Drop, as with a `static`) and exits;
    // only the watchdog can clean up after it.
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "leak_a_server_child", "--nocapture"])
        .env("BULWARK_TESTPG_LEAK_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("LEAKED "))
        .unwrap_or_else(|| panic!("no LEAKED line in child output: {stdout}"));
    let mut parts = line.split(' ');
    let port: u16 = parts.next().unwrap().parse().unwrap();
    let pid: u32 = parts.next().unwrap().parse().unwrap();
    let data_dir = PathBuf::from(parts.next().unwrap());
    wait_until("the leaked postmaster is stopped", || !process_alive(pid));
    wait_until("the leaked temp dir is removed", || !data_dir.exists());
    assert!(!accepts_connections(port), "port {port} still open");
}

/// Helper run as a child process by `watchdog_stops_a_server_that_is_never_dropped`;
/// a no-op in the normal test run (the house rules forbid ignored tests).
#[test]
fn leak_a_server_child() {
    if std::env::var_os("BULWARK_TESTPG_LEAK_CHILD").is_none() {
        return;
    }
    let pg = start();
    println!(
        "LEAKED {} {} {}",
        pg.port(),
        postmaster_pid(&pg),
        pg.data_dir().display()
    );
    assert!(accepts_connections(pg.port()));
    std::mem::forget(pg);
}
