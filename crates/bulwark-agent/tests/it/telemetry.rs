//! Telemetry collection: the `/proc` parsers against fixture trees (a real
//! capture in `root1/`, hand-made garbage in `hostile/`), the collector's
//! deltas (CPU, connection attempts, auth-log tail with truncation and
//! rotation), a live run on this machine, and the wire schema round trip.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use bulwark_agent::telemetry::{
    AUTH_LOG, Collector, CpuTimes, count_failed_logins, cpu_percent, parse_hex_endpoint,
    parse_meminfo, parse_net_dev, parse_proc_stat, parse_snmp_active_opens, parse_snmp_tcp,
    parse_socket_table,
};
use bulwark_proto::telemetry::{
    Connection, ConnectionState, ListeningPort, MAX_CONNECTIONS, NetCounters, Telemetry,
    TelemetryError, TransportProto, decode,
};

const NOW: u64 = 1_795_000_000_000;

fn fixture(root: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/telemetry")
        .join(root)
}

fn read(root: &str, rel: &str) -> String {
    String::from_utf8_lossy(&std::fs::read(fixture(root).join(rel)).unwrap()).into_owned()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn listen(proto: TransportProto, port: u16, addr: &str) -> ListeningPort {
    ListeningPort {
        proto,
        port,
        addr: ip(addr),
    }
}

fn conn(
    proto: TransportProto,
    local_port: u16,
    remote: &str,
    remote_port: u16,
    state: ConnectionState,
) -> Connection {
    Connection {
        proto,
        local_port,
        remote_addr: ip(remote),
        remote_port,
        state,
    }
}

use ConnectionState::{Closing, Established, SynSent};
use TransportProto::{Tcp, Udp};

// ------------------------------------------------------------- parsers ---

#[test]
fn hex_endpoints() {
    let cases = [
        ("0100007F:20FB", Some(("127.0.0.1", 8443))),
        ("00000000:07E8", Some(("0.0.0.0", 2024))),
        ("00000000000000000000000001000000:22B3", Some(("::1", 8883))),
        (
            "B80D0120000000000000000001000000:0016",
            Some(("2001:db8::1", 22)),
        ),
        ("0100007F:ffff", Some(("127.0.0.1", 65535))),
        ("0100007F", None),
        ("0100007:0050", None),
        ("0100007F:50", None),
        ("+100007F:0050", None),
        ("0100007F:+050", None),
        ("0000000000000000000000000100000:0016", None),
        ("ZZZZZZZZ:0016", None),
        ("é100007F:0050", None),
        ("", None),
    ];
    for (input, want) in cases {
        let want = want.map(|(a, p)| (ip(a), p));
        assert_eq!(parse_hex_endpoint(input), want, "{input}");
    }
}

#[test]
fn socket_tables_of_a_real_capture() {
    let tcp = parse_socket_table(&read("root1", "proc/net/tcp"), Tcp);
    assert_eq!(tcp.bad_lines, 0);
    assert_eq!(
        tcp.listening,
        [listen(Tcp, 2024, "0.0.0.0"), listen(Tcp, 8443, "127.0.0.1")]
    );
    assert_eq!(
        tcp.connections,
        [
            conn(Tcp, 8443, "127.0.0.1", 51662, Established),
            conn(Tcp, 51662, "127.0.0.1", 8443, Established),
        ]
    );

    let tcp6 = parse_socket_table(&read("root1", "proc/net/tcp6"), Tcp);
    assert_eq!(tcp6.bad_lines, 0);
    assert_eq!(
        tcp6.listening,
        [listen(Tcp, 1883, "::"), listen(Tcp, 8883, "::1")]
    );
    assert_eq!(
        tcp6.connections,
        [
            conn(Tcp, 8883, "::1", 54926, Established),
            conn(Tcp, 54926, "::1", 8883, Established),
        ]
    );

    let udp = parse_socket_table(&read("root1", "proc/net/udp"), Udp);
    assert_eq!(udp.listening, [listen(Udp, 5353, "0.0.0.0")]);
    assert_eq!(
        udp.connections,
        [conn(Udp, 40000, "127.0.0.1", 5353, Established)]
    );

    let udp6 = parse_socket_table(&read("root1", "proc/net/udp6"), Udp);
    assert_eq!(udp6.listening, [listen(Udp, 5683, "::")]);
    assert!(udp6.connections.is_empty());
}

#[test]
fn socket_tables_of_garbage() {
    let tcp = parse_socket_table(&read("hostile", "proc/net/tcp"), Tcp);
    assert_eq!(tcp.bad_lines, 11);
    // The duplicate 127.0.0.1:80 is reported once; port 0 not at all.
    assert_eq!(
        tcp.listening,
        [listen(Tcp, 22, "0.0.0.0"), listen(Tcp, 80, "127.0.0.1")]
    );
    // The TIME-WAIT socket is a connection that was answered and ended.
    assert_eq!(
        tcp.connections,
        [
            conn(Tcp, 54321, "8.8.8.8", 53, SynSent),
            conn(Tcp, 54322, "8.8.8.8", 53, Closing),
        ]
    );

    let tcp6 = parse_socket_table(&read("hostile", "proc/net/tcp6"), Tcp);
    assert_eq!(tcp6.bad_lines, 2);
    assert_eq!(
        tcp6.listening,
        [
            listen(Tcp, 22, "fe80::216:2cff:188c:fe0e"),
            listen(Tcp, 65535, "::1"),
        ]
    );

    for text in ["", "\n\n", "header only", "\u{0}\u{1}garbage\n: : :\n"] {
        let t = parse_socket_table(text, Udp);
        assert!(
            t.listening.is_empty() && t.connections.is_empty(),
            "{text:?}"
        );
    }
}

#[test]
fn net_dev() {
    let (c, bad) = parse_net_dev(&read("root1", "proc/net/dev"));
    assert_eq!(bad, 0);
    assert_eq!(
        c,
        NetCounters {
            bytes_in: 469_809_983,
            bytes_out: 1_847_282,
            packets_in: 26_734,
            packets_out: 17_599,
        }
    );

    // Saturates instead of overflowing; skips lo and malformed lines.
    let (c, bad) = parse_net_dev(&read("hostile", "proc/net/dev"));
    assert_eq!(bad, 4);
    assert_eq!(
        c,
        NetCounters {
            bytes_in: u64::MAX,
            bytes_out: u64::MAX,
            packets_in: 11,
            packets_out: 21,
        }
    );
    assert_eq!(parse_net_dev(""), (NetCounters::default(), 0));
}

#[test]
fn snmp_active_opens() {
    assert_eq!(
        parse_snmp_active_opens(&read("root1", "proc/net/snmp")),
        Some(23_998)
    );
    assert_eq!(
        parse_snmp_active_opens(&read("hostile", "proc/net/snmp")),
        None
    );
    assert_eq!(parse_snmp_active_opens("Tcp: ActiveOpens\n"), None);
    assert_eq!(parse_snmp_active_opens("Tcp: ActiveOpens\nTcp: x\n"), None);
    assert_eq!(parse_snmp_active_opens(""), None);
    let root1 = read("root1", "proc/net/snmp");
    assert_eq!(parse_snmp_tcp(&root1, "AttemptFails"), Some(368));
    assert_eq!(parse_snmp_tcp(&root1, "NoSuchCounter"), None);
    assert_eq!(
        parse_snmp_tcp(&read("hostile", "proc/net/snmp"), "AttemptFails"),
        None
    );
}

#[test]
fn proc_stat_and_cpu_percent() {
    let t = parse_proc_stat(&read("root1", "proc/stat")).unwrap();
    assert_eq!(
        t,
        CpuTimes {
            total: 2_273_309 + 479_540 + 1_266_942 + 25_922 + 20_918 + 2_086,
            idle: 1_266_942 + 25_922,
        }
    );
    assert_eq!(parse_proc_stat(&read("hostile", "proc/stat")), None);
    assert_eq!(parse_proc_stat("cpu0 1 2 3 4\n"), None);
    assert_eq!(parse_proc_stat("cpu 1 2 3\n"), None);
    assert_eq!(
        parse_proc_stat("cpu 1 2 3 4\n"),
        Some(CpuTimes { total: 10, idle: 4 })
    );

    let a = CpuTimes {
        total: 1000,
        idle: 500,
    };
    let b = CpuTimes {
        total: 1200,
        idle: 550,
    };
    assert_eq!(cpu_percent(a, b), 75.0);
    assert_eq!(cpu_percent(a, a), 0.0);
    assert_eq!(cpu_percent(b, a), 0.0, "counters went backwards");
    let weird = CpuTimes {
        total: 1100,
        idle: 900,
    };
    assert_eq!(cpu_percent(a, weird), 0.0, "idle grew more than total");
}

#[test]
fn meminfo() {
    let pct = parse_meminfo(&read("root1", "proc/meminfo")).unwrap();
    let want = (24_684_092.0 - 23_835_020.0) / 24_684_092.0 * 100.0;
    assert!((pct - want).abs() < 0.001, "{pct} vs {want}");
    assert_eq!(parse_meminfo(&read("hostile", "proc/meminfo")), None);
    assert_eq!(
        parse_meminfo("MemTotal: 100 kB\nMemFree: 25 kB\n"),
        Some(75.0)
    );
    assert_eq!(
        parse_meminfo("MemTotal: 100 kB\nMemAvailable: 500 kB\n"),
        Some(0.0)
    );
    assert_eq!(parse_meminfo("MemTotal: 100 kB\n"), None);
}

#[test]
fn failed_login_lines() {
    assert_eq!(count_failed_logins(&read("root1", "var/log/auth.log")), 3);
    assert_eq!(count_failed_logins(""), 0);
}

// ----------------------------------------------------------- collector ---

#[test]
fn collector_on_a_real_capture() {
    let mut c = Collector::new(fixture("root1"));
    let t = c.collect(NOW);
    assert_eq!(c.warnings(), [], "{:?}", c.warnings());
    assert_eq!(t.schema, 1);
    assert_eq!((t.time, t.seq), (NOW, 0));
    assert_eq!(
        t.listening,
        [
            listen(Tcp, 1883, "::"),
            listen(Tcp, 2024, "0.0.0.0"),
            listen(Tcp, 8443, "127.0.0.1"),
            listen(Tcp, 8883, "::1"),
            listen(Udp, 5353, "0.0.0.0"),
            listen(Udp, 5683, "::"),
        ]
    );
    assert_eq!(t.connections.len(), 5);
    assert_eq!(t.net.bytes_in, 469_809_983);
    assert_eq!(t.connection_attempts, 0, "first sample is the baseline");
    assert_eq!(t.failed_logins, Some(0), "first sample is the baseline");
    assert_eq!(t.failed_attempts, Some(0), "first sample is the baseline");
    assert_eq!(t.process_count, 3);
    assert_eq!(t.cpu_percent, 0.0, "first sample is the baseline");
    assert!(t.memory_percent > 3.0 && t.memory_percent < 4.0);
    t.validate().unwrap();

    let t2 = c.collect(NOW + 10_000);
    assert_eq!(t2.seq, 1);
    assert_eq!(t2.connection_attempts, 0);
    assert_eq!(t2.cpu_percent, 0.0);
    assert_eq!(t2.failed_logins, Some(0));
    assert_eq!(t2.failed_attempts, Some(0));
}

#[test]
fn collector_on_garbage_warns_and_stays_valid() {
    let mut c = Collector::new(fixture("hostile"));
    let t = c.collect(NOW);
    t.validate().unwrap();
    let warned: Vec<&str> = c.warnings().iter().map(|w| w.file).collect();
    assert_eq!(
        warned,
        [
            "proc/net/tcp",
            "proc/net/tcp6",
            "proc/net/udp6",
            "proc/net/dev",
            "proc/net/snmp",
            "proc/stat",
            "proc/meminfo",
        ],
        "{:?}",
        c.warnings()
    );
    assert_eq!(t.listening.len(), 4);
    assert_eq!(t.connections.len(), 2);
    assert_eq!(t.net.bytes_in, u64::MAX);
    assert_eq!(t.process_count, 1, "`77` counts, `12a` does not");
    assert_eq!((t.cpu_percent, t.memory_percent), (0.0, 0.0));
    assert_eq!(t.connection_attempts, 0);
}

#[test]
fn collector_on_an_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Collector::new(dir.path().join("does-not-exist"));
    let t = c.collect(NOW);
    t.validate().unwrap();
    assert_eq!(t.failed_logins, None);
    assert_eq!(t.process_count, 0);
    assert!(t.listening.is_empty() && t.connections.is_empty());
    // Every /proc file and the /proc listing; a missing auth log is normal.
    assert_eq!(c.warnings().len(), 9, "{:?}", c.warnings());
    assert!(c.warnings().iter().all(|w| w.file != AUTH_LOG));
}

/// A writable root holding `proc/stat`, `proc/net/snmp` and the auth log.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/net")).unwrap();
        std::fs::create_dir_all(dir.path().join("var/log")).unwrap();
        Self { dir }
    }
    fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir.path().join(rel), text).unwrap();
    }
    fn append(&self, rel: &str, text: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join(rel))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
    fn snmp(&self, active_opens: u64) {
        self.write(
            "proc/net/snmp",
            &format!("Tcp: RtoAlgorithm ActiveOpens\nTcp: 1 {active_opens}\n"),
        );
    }
}

const FAIL: &str = "sshd[1]: Failed password for root from 203.0.113.5 port 1 ssh2\n";
const OK: &str = "sshd[1]: Accepted publickey for admin\n";

#[test]
fn cpu_and_connection_attempts_are_deltas() {
    let s = Scratch::new();
    s.write("proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\n");
    s.snmp(1000);
    let mut c = Collector::new(s.dir.path());
    let t = c.collect(NOW);
    assert_eq!((t.cpu_percent, t.connection_attempts), (0.0, 0));

    s.write("proc/stat", "cpu  150 0 150 900 0 0 0 0 0 0\n");
    s.snmp(1042);
    let t = c.collect(NOW + 1);
    assert_eq!((t.cpu_percent, t.connection_attempts), (50.0, 42));

    // Reboot: counters restart lower; the delta is 0, not a wrap-around.
    s.write("proc/stat", "cpu  1 0 1 8 0 0 0 0 0 0\n");
    s.snmp(3);
    let t = c.collect(NOW + 2);
    assert_eq!((t.cpu_percent, t.connection_attempts), (0.0, 0));
    s.snmp(10);
    assert_eq!(c.collect(NOW + 3).connection_attempts, 7);
}

#[test]
fn failed_logins_follow_the_log_through_truncation_and_rotation() {
    let s = Scratch::new();
    let log = "var/log/auth.log";
    s.write(log, &format!("{FAIL}{FAIL}{OK}"));
    let mut c = Collector::new(s.dir.path());
    assert_eq!(c.collect(NOW).failed_logins, Some(0), "baseline");

    s.append(log, &format!("{OK}{FAIL}"));
    assert_eq!(c.collect(NOW).failed_logins, Some(1));
    assert_eq!(c.collect(NOW).failed_logins, Some(0));

    // A partial line is counted once it is complete.
    s.append(log, "sshd[1]: Failed pass");
    assert_eq!(c.collect(NOW).failed_logins, Some(0));
    s.append(log, "word for root\n");
    assert_eq!(c.collect(NOW).failed_logins, Some(1));

    // Truncated in place (copytruncate): read from the start again.
    s.write(log, FAIL);
    assert_eq!(c.collect(NOW).failed_logins, Some(1));

    // Rotated: a new file (new inode), already longer than our offset.
    std::fs::rename(
        s.dir.path().join(log),
        s.dir.path().join("var/log/auth.log.1"),
    )
    .unwrap();
    s.write(
        log,
        &format!("{OK}{OK}{OK}{FAIL}pam_unix(sshd:auth): authentication failure\n"),
    );
    assert_eq!(c.collect(NOW).failed_logins, Some(2));

    // Gone: None, then a fresh baseline when it comes back.
    std::fs::remove_file(s.dir.path().join(log)).unwrap();
    assert_eq!(c.collect(NOW).failed_logins, None);
    s.write(log, FAIL);
    assert_eq!(c.collect(NOW).failed_logins, Some(0));
}

#[test]
fn special_files_are_not_opened() {
    let s = Scratch::new();
    // A FIFO would block a plain open() forever; a directory fails to read.
    let fifo = std::process::Command::new("mkfifo")
        .arg(s.dir.path().join("proc/stat"))
        .status();
    std::fs::create_dir(s.dir.path().join("var/log/auth.log")).unwrap();
    let mut c = Collector::new(s.dir.path());
    let t = c.collect(NOW);
    t.validate().unwrap();
    assert_eq!(t.failed_logins, None);
    let problems: Vec<String> = c.warnings().iter().map(ToString::to_string).collect();
    assert!(
        problems.contains(&"var/log/auth.log: cannot read: not a regular file".to_owned()),
        "{problems:?}"
    );
    if fifo.is_ok_and(|st| st.success()) {
        assert!(
            problems.contains(&"proc/stat: cannot read: not a regular file".to_owned()),
            "{problems:?}"
        );
    }
}

#[test]
fn live_collection_on_this_machine() {
    let mut c = Collector::new("/");
    let first = c.collect(NOW);
    let t = c.collect(NOW + 1);
    assert!(
        !t.listening.is_empty() || t.process_count > 0,
        "nothing collected: {t:?}, warnings {:?}",
        c.warnings()
    );
    first.validate().unwrap();
    t.validate().unwrap();
    let bytes = t.encode().unwrap();
    assert_eq!(decode(&bytes).unwrap(), t);
}

// ---------------------------------------------------------- wire schema ---

fn sample() -> Telemetry {
    let mut c = Collector::new(fixture("root1"));
    c.collect(NOW)
}

fn with(field: &str, value: serde_json::Value) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(&sample().encode().unwrap()).unwrap();
    v[field] = value;
    serde_json::to_vec(&v).unwrap()
}

#[test]
fn decode_round_trip() {
    let t = sample();
    assert_eq!(decode(&t.encode().unwrap()).unwrap(), t);
}

#[test]
fn decode_refuses_hostile_json() {
    use serde_json::json;
    let cases = [
        ("unknown field", with("debug", json!(true))),
        ("wrong schema", with("schema", json!(2))),
        ("schema as string", with("schema", json!("1"))),
        ("NaN as string", with("cpu_percent", json!("NaN"))),
        ("null percent", with("memory_percent", json!(null))),
        ("percent > 100", with("cpu_percent", json!(101.0))),
        ("negative counter", with("seq", json!(-1))),
        (
            "bad proto",
            with(
                "listening",
                json!([{"proto": "icmp", "port": 1, "addr": "::"}]),
            ),
        ),
        (
            "bad addr",
            with(
                "connections",
                json!([{
            "proto": "tcp", "local_port": 1, "remote_addr": "999.1.1.1",
            "remote_port": 2, "state": "established"}]),
            ),
        ),
        (
            "bad state",
            with(
                "connections",
                json!([{
            "proto": "tcp", "local_port": 1, "remote_addr": "::1",
            "remote_port": 2, "state": "time_wait"}]),
            ),
        ),
        ("oversized", {
            let mut b = sample().encode().unwrap();
            b.resize(bulwark_proto::telemetry::MAX_TELEMETRY_BYTES + 1, b' ');
            b
        }),
        ("not json", b"\xff{".to_vec()),
    ];
    for (name, bytes) in cases {
        assert!(decode(&bytes).is_err(), "{name} accepted");
    }
    assert!(matches!(
        decode(&with("schema", json!(2))),
        Err(TelemetryError::UnsupportedSchema { found: 2, .. })
    ));
}

#[test]
fn decode_refuses_too_many_connections() {
    let one = serde_json::json!({
        "proto": "tcp", "local_port": 1, "remote_addr": "::1",
        "remote_port": 2, "state": "established"});
    // Compact enough to stay under the byte limit, so the count is what fails.
    let bytes = with(
        "connections",
        serde_json::Value::Array(vec![one; MAX_CONNECTIONS + 1]),
    );
    assert!(bytes.len() < bulwark_proto::telemetry::MAX_TELEMETRY_BYTES);
    match decode(&bytes) {
        Err(TelemetryError::Invalid(errors)) => assert_eq!(errors[0].field, "connections"),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn closing_sockets_are_reported_as_answered_connections_that_ended() {
    // A beacon's connection in TIME-WAIT, one in FIN-WAIT-2, a CLOSE-WAIT
    // and a socket in CLOSE (state 07, nothing to report).
    let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
        \x20  0: 1401A8C0:A001 076433C6:1A0B 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000\n\
        \x20  1: 1401A8C0:A002 076433C6:1A0B 05 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000\n\
        \x20  2: 1401A8C0:A003 096433C6:01BB 08 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000\n\
        \x20  3: 1401A8C0:A004 096433C6:01BB 07 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000\n";
    let t = parse_socket_table(table, Tcp);
    assert_eq!(t.bad_lines, 0);
    assert_eq!(t.connections.len(), 3, "{t:?}");
    assert!(t.connections.iter().all(|c| c.state == Closing));
    assert_eq!(t.connections[0].remote_port, 6667);
    assert_eq!(t.connections[0].remote_addr.to_string(), "198.51.100.7");
}
