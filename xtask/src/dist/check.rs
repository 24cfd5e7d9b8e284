//! `cargo xtask dist --check`: installs both Debian packages on this
//! machine with `dpkg -i`, starts them as their systemd units say, enrolls
//! the agent, sees its check-in reach the server, then purges both and
//! puts the machine back as it was.
//!
//! There is no systemd running here (this is a container; PID 1 is not
//! init), so the check starts each unit's `ExecStart`, read from the
//! installed unit file, itself, applying what can be applied without
//! systemd: `User`/`Group`, `CapabilityBoundingSet` and `NoNewPrivileges`
//! (setpriv), `LimitNOFILE` (prlimit, up to the hard limit this process may
//! set), `UMask`, `Environment` and `EnvironmentFile`. The file-system
//! sandbox (`ProtectSystem`, `StateDirectory` …) and the system-call
//! filter are not applied: `systemd-analyze verify` checks the installed
//! units and `systemd-analyze security --offline` prints their exposure.
//! The two listeners are moved to free loopback ports (`--listen`,
//! `--device-listen` after the unit's arguments; flags override the
//! configuration file) so that the check cannot collide with a server
//! already running here.
//!
//! What it changes, and how it is undone even when a step fails: the two
//! packages (purged), the `bulwark` user and group (deleted unless they
//! existed before), `/var/lib/bulwark` and `/var/lib/bulwark-agent` (must
//! not exist before; removed). It refuses to run when either package is
//! installed or either directory exists, and takes a machine-wide lock so
//! that two checks do not interleave. It needs root.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{AGENT, SERVER, output};

const SERVER_STATE: &str = "/var/lib/bulwark";
const AGENT_STATE: &str = "/var/lib/bulwark-agent";
const UNIT_DIR: &str = "/lib/systemd/system";
/// The hostname the agent enrolls with, looked for in `devices list`.
const HOSTNAME: &str = "bulwark-package-check";
/// How long the server may take to start, and the agent's check-in to
/// show.
const WAIT: Duration = Duration::from_secs(90);

/// Installs `debs` (server, agent), runs them, and restores the machine;
/// logs go to `work`.
pub(crate) fn check(debs: &[PathBuf; 2], work: &Path) -> Result<(), String> {
    let uid = output(Command::new("id").arg("-u"))?;
    if uid != "0" {
        return Err(
            "dist --check installs packages with dpkg: run it as root (sudo -E cargo xtask dist --check)"
                .into(),
        );
    }
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let _lock = MachineLock::acquire()?;
    for pkg in [SERVER.name, AGENT.name] {
        if installed(pkg) {
            return Err(format!(
                "the {pkg} package is installed on this machine: the check would replace and purge it \
                 (`dpkg --purge bulwark-agent bulwark` first, if a check interrupted earlier left it)"
            ));
        }
    }
    for dir in [SERVER_STATE, AGENT_STATE] {
        if Path::new(dir).exists() {
            return Err(format!(
                "{dir} exists: the check would use and then delete it (remove it first, if a check \
                 interrupted earlier left it)"
            ));
        }
    }
    let mut machine = Machine {
        user_existed: getent("passwd", "bulwark").is_some(),
        group_existed: getent("group", "bulwark").is_some(),
        children: Vec::new(),
        restored: false,
    };
    let started = Instant::now();
    let result = exercise(debs, work, &mut machine);
    let restored = machine.restore();
    match (&result, &restored) {
        (Ok(()), Ok(())) => eprintln!(
            "dist --check: both packages installed, ran, enrolled and checked in, purged ({:.1} s); \
             logs in {}",
            started.elapsed().as_secs_f64(),
            work.display()
        ),
        (Err(_), _) => eprintln!("dist --check failed; logs in {}", work.display()),
        _ => {}
    }
    result.and(restored)
}

/// What the check changed, undone by [`Machine::restore`] (or on drop).
#[derive(Debug)]
struct Machine {
    user_existed: bool,
    group_existed: bool,
    children: Vec<Child>,
    restored: bool,
}

impl Machine {
    /// Stops what the check started, purges both packages, removes the
    /// state directories and the user it created, and checks that the
    /// packages' files are gone.
    fn restore(&mut self) -> Result<(), String> {
        self.restored = true;
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let mut problems = Vec::new();
        if (installed(AGENT.name) || installed(SERVER.name))
            && let Err(e) = dpkg(&["--purge", AGENT.name, SERVER.name])
        {
            problems.push(e);
        }
        for path in [
            "/usr/bin/bulwark",
            "/usr/bin/bulwark-agent",
            "/etc/bulwark/server.toml",
            "/etc/default/bulwark-agent",
            "/lib/systemd/system/bulwark.service",
            "/lib/systemd/system/bulwark-agent.service",
        ] {
            if Path::new(path).exists() {
                problems.push(format!("{path} is still there after the purge"));
            }
        }
        // A purge keeps the data directories (postrm says why); they were
        // made by this check (it refuses to start when they exist).
        for dir in [SERVER_STATE, AGENT_STATE] {
            if Path::new(dir).exists()
                && let Err(e) = std::fs::remove_dir_all(dir)
            {
                problems.push(format!("removing {dir}: {e}"));
            }
        }
        if !self.user_existed && getent("passwd", "bulwark").is_some() {
            let mut c = Command::new("deluser");
            c.args(["--quiet", "--system", "bulwark"]);
            if let Err(e) = output(&mut c) {
                problems.push(e);
            }
        }
        if !self.group_existed && getent("group", "bulwark").is_some() {
            let mut c = Command::new("delgroup");
            c.args(["--quiet", "--system", "bulwark"]);
            if let Err(e) = output(&mut c) {
                problems.push(e);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "restoring the machine after dist --check: {}",
                problems.join("; ")
            ))
        }
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if !self.restored
            && let Err(e) = self.restore()
        {
            eprintln!("{e}");
        }
    }
}

/// The install, the checks of what it put where, and the run.
fn exercise(debs: &[PathBuf; 2], work: &Path, machine: &mut Machine) -> Result<(), String> {
    let debs: Vec<&str> = debs
        .iter()
        .map(|d| d.to_str().unwrap_or_default())
        .collect();
    let mut args = vec!["-i"];
    args.extend(&debs);
    dpkg(&args)?;
    check_installed()?;
    let server_unit = Unit::read(&Path::new(UNIT_DIR).join(SERVER.unit))?;
    let agent_unit = Unit::read(&Path::new(UNIT_DIR).join(AGENT.unit))?;

    // The server, as its unit runs it.
    let (server, lines) = server_unit.launch(
        &["--listen", "127.0.0.1:0", "--device-listen", "127.0.0.1:0"],
        &work.join("server.log"),
    )?;
    let server_pid = server.id();
    machine.children.push(server);
    let (mut api, mut device) = (None, None);
    let deadline = Instant::now() + WAIT;
    while device.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines.recv_timeout(left).map_err(|_| {
            "the server printed no `Device listener:` line (see server.log)".to_owned()
        })?;
        if let Some(url) = line.strip_prefix("Bulwark API:") {
            api = Some(url.trim().to_owned());
        }
        if let Some(rest) = line.strip_prefix("Device listener:") {
            device = rest.split_whitespace().next().map(str::to_owned);
        }
    }
    let api = api.ok_or("the server printed no `Bulwark API:` line")?;
    let device = device.ok_or("no device listener address")?;
    let bulwark_uid = getent("passwd", "bulwark")
        .and_then(|e| e.split(':').nth(2).map(str::to_owned))
        .ok_or("no bulwark user")?;
    check_process(server_pid, &server_unit, &bulwark_uid, 0)?;
    for name in ["master.key", "admin.token"] {
        let p = Path::new(SERVER_STATE).join(name);
        let m = std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        if m.mode() & 0o777 != 0o600 || m.uid().to_string() != bulwark_uid {
            return Err(format!(
                "{}: mode {:o}, owner {}; expected 0600, the bulwark user",
                p.display(),
                m.mode() & 0o777,
                m.uid()
            ));
        }
    }
    let token = std::fs::read_to_string(Path::new(SERVER_STATE).join("admin.token"))
        .map_err(|e| format!("admin.token: {e}"))?;
    let cli = |args: &[&str]| {
        let mut c = Command::new("/usr/bin/bulwark");
        c.args(args)
            .env("BULWARK_SERVER", &api)
            .env("BULWARK_TOKEN", token.trim())
            .env_remove("BULWARK_LOG");
        c
    };

    // Enrollment, as an administrator would do it on the device.
    let enroll_token = output(&mut cli(&[
        "enroll-token",
        "create",
        "--group",
        "packaged",
        "--env",
        "staging",
        "--ttl",
        "10m",
    ]))?;
    let ca = format!("{SERVER_STATE}/ca.pem");
    let enrolled = output(
        Command::new("/usr/bin/bulwark-agent")
            .args(["enroll", "--server", &device, "--ca", &ca])
            .args(["--hostname", HOSTNAME])
            .env("BULWARK_ENROLL_TOKEN", enroll_token.trim()),
    )?;
    let device_id = enrolled
        .lines()
        .find_map(|l| l.strip_prefix("enrolled as device "))
        .map(|s| s.trim().to_owned())
        .ok_or_else(|| format!("bulwark-agent enroll printed no device id: {enrolled}"))?;
    let condition = agent_unit
        .get("Unit", "ConditionPathExists")
        .ok_or("bulwark-agent.service has no ConditionPathExists")?;
    if !Path::new(condition).exists() {
        return Err(format!(
            "after enrollment the unit's ConditionPathExists={condition} is still false"
        ));
    }

    // The agent, as its unit runs it; its first check-in is at start.
    let (agent, _) = agent_unit.launch(&[], &work.join("agent.log"))?;
    let agent_pid = agent.id();
    machine.children.push(agent);
    let deadline = Instant::now() + WAIT;
    let listing = loop {
        let list = output(&mut cli(&["devices", "list"]))?;
        let online = list.lines().any(|l| {
            (l.contains(&device_id) || l.contains(HOSTNAME))
                && l.split_whitespace().any(|w| w == "online")
        });
        if online {
            break list;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "device {device_id} did not show online within {WAIT:?} (see agent.log):\n{list}"
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("bulwark devices list (installed packages):\n{listing}");
    check_process(agent_pid, &agent_unit, "0", 1 << CAP_NET_ADMIN)?;
    // The agent idle between check-ins (the next is a poll interval, 60 s,
    // away), as BENCHMARKS.md reports it for the `dist` build.
    std::thread::sleep(Duration::from_secs(3));
    let status = std::fs::read_to_string(format!("/proc/{agent_pid}/status")).unwrap_or_default();
    let kib = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let size = std::fs::metadata("/usr/bin/bulwark-agent").map_or(0, |m| m.len());
    eprintln!(
        "bulwark-agent: {:.1} MiB installed; idle 3 s after its first check-in: VmRSS {:.1} MiB \
         (RssAnon {:.1} MiB; the rest is the binary's clean pages), VmHWM {:.1} MiB",
        size as f64 / f64::from(1 << 20),
        kib("VmRSS:") as f64 / 1024.0,
        kib("RssAnon:") as f64 / 1024.0,
        kib("VmHWM:") as f64 / 1024.0
    );

    // Stopped as systemd stops a unit: SIGTERM, then a clean exit.
    for pid in [agent_pid, server_pid] {
        output(Command::new("kill").args(["-TERM", &pid.to_string()]))?;
        let child = machine
            .children
            .iter_mut()
            .find(|c| c.id() == pid)
            .ok_or("lost a child process")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if Instant::now() > deadline {
                return Err(format!("process {pid} did not stop within 30 s of SIGTERM"));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if !status.success() {
            return Err(format!("process {pid} exited with {status} on SIGTERM"));
        }
    }
    machine.children.clear();
    Ok(())
}

/// What `dpkg -i` must have put in place: files as packaged (`dpkg -V`),
/// the user, modes and owners, manual pages, completions, valid units.
fn check_installed() -> Result<(), String> {
    let verify = output(Command::new("dpkg").args(["-V", SERVER.name, AGENT.name]))?;
    if !verify.is_empty() {
        return Err(format!("dpkg -V: {verify}"));
    }
    for pkg in [&SERVER, &AGENT] {
        let conffiles =
            output(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", pkg.name]))?;
        for (_, dest) in pkg.conffiles {
            if !conffiles.contains(&format!("/{dest} ")) {
                return Err(format!("{} does not list /{dest} as a conffile", pkg.name));
            }
        }
    }
    let user = getent("passwd", "bulwark").ok_or("postinst made no bulwark user")?;
    let fields: Vec<&str> = user.split(':').collect();
    let uid: u32 = fields
        .get(2)
        .and_then(|u| u.parse().ok())
        .unwrap_or(u32::MAX);
    if uid >= 1000
        || fields.get(5) != Some(&SERVER_STATE)
        || fields.get(6) != Some(&"/usr/sbin/nologin")
    {
        return Err(format!(
            "the bulwark user should be a system user with home {SERVER_STATE} and no login shell: {user}"
        ));
    }
    let gid = getent("group", "bulwark")
        .and_then(|g| g.split(':').nth(2).and_then(|g| g.parse::<u32>().ok()))
        .ok_or("postinst made no bulwark group")?;
    expect_mode(Path::new(SERVER_STATE), 0o700, Some(uid), None)?;
    expect_mode(Path::new(AGENT_STATE), 0o700, Some(0), None)?;
    expect_mode(
        Path::new("/etc/bulwark/server.toml"),
        0o640,
        Some(0),
        Some(gid),
    )?;
    for page in [
        "bulwark",
        "bulwark-server",
        "bulwark-devices-list",
        "bulwark-agent",
        "bulwark-agent-run",
    ] {
        let path = format!("/usr/share/man/man1/{page}.1.gz");
        let text = output(Command::new("gzip").args(["-dc", &path]))?;
        if !text.contains(".TH") {
            return Err(format!("{path} is not a manual page"));
        }
    }
    for binary in [SERVER.binary, AGENT.binary] {
        for path in [
            format!("/usr/share/bash-completion/completions/{binary}"),
            format!("/usr/share/zsh/vendor-completions/_{binary}"),
            format!("/usr/share/fish/vendor_completions.d/{binary}.fish"),
        ] {
            if !Path::new(&path).is_file() {
                return Err(format!("{path} is missing"));
            }
        }
        output(Command::new("bash").args([
            "-n",
            &format!("/usr/share/bash-completion/completions/{binary}"),
        ]))?;
    }
    let units = [
        format!("{UNIT_DIR}/{}", SERVER.unit),
        format!("{UNIT_DIR}/{}", AGENT.unit),
    ];
    if crate::have("systemd-analyze") {
        output(Command::new("systemd-analyze").arg("verify").args(&units))?;
        for unit in &units {
            let report = Command::new("systemd-analyze")
                .args(["security", "--offline=true", "--no-pager", unit])
                .output()
                .map_err(|e| format!("systemd-analyze security: {e}"))?;
            let text = String::from_utf8_lossy(&report.stdout);
            if let Some(line) = text.lines().find(|l| l.contains("Overall exposure level")) {
                eprintln!("{}", line.trim_start_matches(['→', ' ']));
            }
        }
    } else {
        eprintln!(
            "systemd-analyze not found (apt-get install systemd): the units' syntax was not verified"
        );
    }
    Ok(())
}

fn expect_mode(path: &Path, mode: u32, uid: Option<u32>, gid: Option<u32>) -> Result<(), String> {
    let m = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if m.mode() & 0o7777 != mode
        || uid.is_some_and(|u| m.uid() != u)
        || gid.is_some_and(|g| m.gid() != g)
    {
        return Err(format!(
            "{}: mode {:o}, owner {}:{}; expected {mode:o}, {uid:?}:{gid:?}",
            path.display(),
            m.mode() & 0o7777,
            m.uid(),
            m.gid()
        ));
    }
    Ok(())
}

/// The capability bit of CAP_NET_ADMIN.
const CAP_NET_ADMIN: u32 = 12;

/// The running process is the unit's: its user, no more capabilities
/// than `cap_eff`, no new privileges, and the unit's open-file limit (as
/// far as this machine allows).
fn check_process(pid: u32, unit: &Unit, uid: &str, cap_eff: u64) -> Result<(), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("process {pid} is not running: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let uids = field("Uid:");
    if !uids.split_whitespace().all(|u| u == uid) {
        return Err(format!("process {pid} runs as uids {uids}, not {uid}"));
    }
    let caps = u64::from_str_radix(&field("CapEff:"), 16).unwrap_or(u64::MAX);
    if caps != cap_eff {
        return Err(format!(
            "process {pid} has capabilities {caps:#x}, expected {cap_eff:#x}"
        ));
    }
    if field("NoNewPrivs:") != "1" {
        return Err(format!(
            "process {pid} may gain privileges (NoNewPrivs is not set)"
        ));
    }
    if let Some(want) = unit.limit_nofile() {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        let soft: u64 = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        if soft < want.min(hard_nofile()) {
            return Err(format!(
                "process {pid} may open {soft} files; the unit says {want}"
            ));
        }
        if soft < want {
            eprintln!(
                "LimitNOFILE={want} applied as {soft}: the hard limit of this machine's processes \
                 (raising it needs CAP_SYS_RESOURCE, which this container lacks)"
            );
        }
    }
    Ok(())
}

/// This process's hard limit on open files.
fn hard_nofile() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find_map(|l| l.strip_prefix("Max open files"))
                .and_then(|r| r.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(1024)
}

/// The settings of an installed unit file: `(section, key) → values`.
#[derive(Debug)]
struct Unit {
    path: PathBuf,
    settings: BTreeMap<(String, String), Vec<String>>,
}

impl Unit {
    fn read(path: &Path) -> Result<Unit, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Unit {
            path: path.to_owned(),
            settings: parse_unit(&text),
        })
    }

    fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.settings
            .get(&(section.to_owned(), key.to_owned()))
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    fn service(&self, key: &str) -> Option<&str> {
        self.get("Service", key)
    }

    fn limit_nofile(&self) -> Option<u64> {
        self.service("LimitNOFILE")
            .and_then(|v| v.split(':').next_back()?.parse().ok())
    }

    /// The environment the service gets: systemd's `PATH`, the user's
    /// `HOME`, `USER` and `LOGNAME`, then `Environment=` and
    /// `EnvironmentFile=`.
    fn environment(&self, user: &str) -> Result<BTreeMap<String, String>, String> {
        let mut env = BTreeMap::new();
        env.insert(
            "PATH".to_owned(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        );
        let home = getent("passwd", user)
            .and_then(|e| e.split(':').nth(5).map(str::to_owned))
            .unwrap_or_else(|| "/".into());
        env.insert("HOME".to_owned(), home);
        env.insert("USER".to_owned(), user.to_owned());
        env.insert("LOGNAME".to_owned(), user.to_owned());
        let key = |k: &str| ("Service".to_owned(), k.to_owned());
        for assignments in self.settings.get(&key("Environment")).into_iter().flatten() {
            for word in split_words(assignments) {
                if let Some((k, v)) = word.split_once('=') {
                    env.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        for file in self
            .settings
            .get(&key("EnvironmentFile"))
            .into_iter()
            .flatten()
        {
            let (optional, file) = match file.strip_prefix('-') {
                Some(f) => (true, f),
                None => (false, file.as_str()),
            };
            match std::fs::read_to_string(file) {
                Ok(text) => env.extend(parse_env_file(&text)),
                Err(_) if optional => {}
                Err(e) => return Err(format!("EnvironmentFile {file}: {e}")),
            }
        }
        Ok(env)
    }

    /// Starts `ExecStart` (with `extra` arguments) as the unit says, its
    /// stderr into `log`; its stdout lines come through the receiver (and
    /// go to `log` too).
    fn launch(
        &self,
        extra: &[&str],
        log: &Path,
    ) -> Result<(Child, mpsc::Receiver<String>), String> {
        let name = self.path.display();
        let user = self.service("User").unwrap_or("root");
        let group = self.service("Group").unwrap_or(user);
        let env = self.environment(user)?;
        let exec = self
            .service("ExecStart")
            .ok_or_else(|| format!("{name} has no ExecStart"))?;
        if exec.starts_with(['+', '!']) {
            return Err(format!(
                "{name}: a privileged ExecStart ({exec}) cannot be run here"
            ));
        }
        let mut argv = expand(exec.trim_start_matches(['-', '@', ':']), &env);
        argv.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut wrapper: Vec<String> = Vec::new();
        if let Some(n) = self.limit_nofile() {
            let n = n.min(hard_nofile());
            wrapper.extend(["prlimit".into(), format!("--nofile={n}:{n}"), "--".into()]);
        }
        wrapper.extend(
            [
                "setpriv",
                "--reuid",
                user,
                "--regid",
                group,
                "--init-groups",
                "--inh-caps=-all",
            ]
            .map(str::to_owned),
        );
        if self.service("NoNewPrivileges") == Some("yes") {
            wrapper.push("--no-new-privs".into());
        }
        let caps: Vec<String> = self
            .service("CapabilityBoundingSet")
            .unwrap_or("")
            .split_whitespace()
            .map(|c| format!("+{}", c.to_ascii_lowercase().trim_start_matches("cap_")))
            .collect();
        let mut bounding = vec!["-all".to_owned()];
        bounding.extend(caps);
        wrapper.push(format!("--bounding-set={}", bounding.join(",")));
        let umask = self.service("UMask").unwrap_or("0022");
        wrapper.extend([
            "--".into(),
            "sh".into(),
            "-c".into(),
            format!("umask {umask} && exec \"$0\" \"$@\""),
        ]);
        wrapper.extend(argv);
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut c = Command::new(&wrapper[0]);
        c.args(&wrapper[1..])
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file.try_clone().map_err(|e| e.to_string())?);
        eprintln!("$ {}", wrapper.join(" "));
        let mut child = c.spawn().map_err(|e| format!("starting {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut log_file = log_file;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log_file, "{line}");
                // The receiver may be gone: keep draining, or the child's
                // next write would fail.
                let _ = tx.send(line);
            }
        });
        Ok((child, rx))
    }
}

/// `[Section]` and `Key=Value` lines; comments, blank lines and
/// backslash continuations as systemd reads them.
fn parse_unit(text: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
            continue;
        }
        if let Some(cont) = line.strip_suffix('\\') {
            pending.push_str(cont);
            pending.push(' ');
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((k, v)) = line.split_once('=') {
            let values = out
                .entry((section.clone(), k.trim().to_owned()))
                .or_default();
            let v = v.trim();
            // An empty assignment resets a list setting, except where the
            // empty value is itself the setting (no capabilities at all).
            if v.is_empty() && k.trim() != "CapabilityBoundingSet" {
                values.clear();
            } else {
                values.push(v.to_owned());
            }
        }
    }
    out
}

/// `KEY=VALUE` lines of an `EnvironmentFile`, quotes removed.
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

/// Words of a command line, double and single quotes grouping.
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote = None;
    let mut in_word = false;
    for ch in s.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// `ExecStart` as systemd expands it: a word that is exactly `$NAME` becomes
/// the variable's whitespace-separated words (none when empty or unset);
/// `${NAME}` inside a word is replaced as is.
fn expand(exec: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let is_name = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut out = Vec::new();
    for word in split_words(exec) {
        if let Some(name) = word.strip_prefix('$').filter(|n| is_name(n)) {
            if let Some(v) = env.get(name) {
                out.extend(v.split_whitespace().map(str::to_owned));
            }
            continue;
        }
        let mut w = word;
        while let Some(start) = w.find("${") {
            let Some(len) = w[start..].find('}') else {
                break;
            };
            let name = w[start + 2..start + len].to_owned();
            let value = env.get(&name).cloned().unwrap_or_default();
            w.replace_range(start..=start + len, &value);
        }
        out.push(w);
    }
    out
}

/// `getent DATABASE KEY`'s line, if any.
fn getent(database: &str, key: &str) -> Option<String> {
    output(Command::new("getent").args([database, key])).ok()
}

/// Whether dpkg knows `package` in any state but "not installed".
fn installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", package]))
        .is_ok_and(|s| !s.is_empty() && s != "not-installed")
}

/// `dpkg ARGS`, retried while another dpkg or apt holds the lock.
fn dpkg(args: &[&str]) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut c = Command::new("dpkg");
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        eprintln!("$ {c:?}");
        let out = c.output().map_err(|e| format!("dpkg: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{stderr}");
        if out.status.success() {
            return Ok(());
        }
        if stderr.contains("lock") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(5));
            continue;
        }
        return Err(format!(
            "dpkg {} failed with {}",
            args.join(" "),
            out.status
        ));
    }
}

/// A lock file naming its holder's pid, so that two checks on one machine
/// take turns; a holder that died leaves a stale file, which is taken over.
#[derive(Debug)]
struct MachineLock {
    path: PathBuf,
}

impl MachineLock {
    fn acquire() -> Result<MachineLock, String> {
        let path = std::env::temp_dir().join("bulwark-dist-check.lock");
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(MachineLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let alive = !holder.trim().is_empty()
                        && Path::new(&format!("/proc/{}", holder.trim())).exists();
                    if !alive {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    if Instant::now() > deadline {
                        return Err(format!(
                            "{} is held by process {}",
                            path.display(),
                            holder.trim()
                        ));
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
    }
}

impl Drop for MachineLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_start_expands_as_systemd_does() {
        let env: BTreeMap<String, String> = [
            (
                "OPTS".to_owned(),
                "--no-updates  --telemetry-encoding cbor".to_owned(),
            ),
            ("EMPTY".to_owned(), String::new()),
            ("DIR".to_owned(), "/var/lib/x".to_owned()),
        ]
        .into();
        assert_eq!(
            expand(
                "/usr/bin/a run $OPTS $EMPTY $UNSET --d=${DIR}/s \"a b\"",
                &env
            ),
            [
                "/usr/bin/a",
                "run",
                "--no-updates",
                "--telemetry-encoding",
                "cbor",
                "--d=/var/lib/x/s",
                "a b"
            ]
        );
    }

    #[test]
    fn packaged_units_parse() {
        let agent = std::fs::read_to_string(
            crate::root().join("packaging/bulwark-agent/bulwark-agent.service"),
        )
        .unwrap();
        let unit = Unit {
            path: "bulwark-agent.service".into(),
            settings: parse_unit(&agent),
        };
        assert_eq!(unit.service("CapabilityBoundingSet"), Some("CAP_NET_ADMIN"));
        assert!(
            unit.service("ExecStart")
                .unwrap()
                .ends_with("$BULWARK_AGENT_OPTS")
        );
        let default = std::fs::read_to_string(
            crate::root().join("packaging/bulwark-agent/bulwark-agent.default"),
        )
        .unwrap();
        assert_eq!(
            parse_env_file(&default),
            [("BULWARK_AGENT_OPTS".to_owned(), String::new())]
        );
        let server =
            std::fs::read_to_string(crate::root().join("packaging/bulwark/bulwark.service"))
                .unwrap();
        let unit = Unit {
            path: "bulwark.service".into(),
            settings: parse_unit(&server),
        };
        assert_eq!(unit.limit_nofile(), Some(262_144));
        assert_eq!(unit.service("User"), Some("bulwark"));
        assert_eq!(unit.service("CapabilityBoundingSet"), Some(""));
    }
}
