//! Running helper programs, as the `postgres` OS user when we are root.
//!
//! `initdb` and `pg_ctl` refuse to run as root, so as root they are wrapped in
//! `runuser -u postgres -- …` (or `su postgres -s /bin/sh -c …` when `runuser` is missing).
//! Clients (`psql`, `createdb`, `pg_isready`) always run directly as the current user.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::Error;

/// The OS user that owns the cluster when we run as root.
pub(crate) const PG_USER: &str = "postgres";

/// How server-side programs (`initdb`, `pg_ctl`) are executed.
#[derive(Debug, Clone)]
pub(crate) enum Runner {
    /// Run directly (we are not root).
    Direct,
    /// `runuser -u postgres -- program args…`
    Runuser(PathBuf),
    /// `su postgres -s /bin/sh -c 'program args…'`
    Su(PathBuf),
}

impl Runner {
    /// Picks the runner for the current process: direct unless the effective uid is 0.
    pub(crate) fn detect() -> Result<Runner, Error> {
        if !is_root()? {
            return Ok(Runner::Direct);
        }
        let user_exists = Command::new("id")
            .args(["-u", PG_USER])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !user_exists {
            return Err(Error::Setup(format!(
                "running as root, but there is no {PG_USER:?} OS user to run initdb/pg_ctl as \
                 (Debian's postgresql package creates it: apt-get install -y postgresql)"
            )));
        }
        if let Some(runuser) = find_program("runuser", &["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        {
            return Ok(Runner::Runuser(runuser));
        }
        if let Some(su) = find_program("su", &["/usr/bin", "/bin"]) {
            return Ok(Runner::Su(su));
        }
        Err(Error::Setup(format!(
            "running as root, but neither runuser nor su is available to run initdb/pg_ctl as {PG_USER:?}"
        )))
    }

    /// Whether files we create must be handed over to [`PG_USER`].
    pub(crate) fn needs_chown(&self) -> bool {
        !matches!(self, Runner::Direct)
    }

    /// A command running `program args…` as the server user, with a sanitized environment.
    pub(crate) fn command(&self, program: &Path, args: &[&OsStr]) -> Command {
        let mut cmd = match self {
            Runner::Direct => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            Runner::Runuser(runuser) => {
                let mut c = Command::new(runuser);
                c.args(["-u", PG_USER, "--"]).arg(program).args(args);
                c
            }
            Runner::Su(su) => {
                let mut c = Command::new(su);
                c.args([PG_USER, "-s", "/bin/sh", "-c"])
                    .arg(shell_words(program.as_os_str(), args));
                c
            }
        };
        sanitize(&mut cmd);
        cmd
    }

    /// The same invocation as [`Runner::command`], as one `/bin/sh` command line.
    pub(crate) fn shell_line(&self, program: &Path, args: &[&OsStr]) -> OsString {
        match self {
            Runner::Direct => shell_words(program.as_os_str(), args),
            Runner::Runuser(runuser) => {
                let mut all: Vec<&OsStr> = vec!["-u".as_ref(), PG_USER.as_ref(), "--".as_ref()];
                all.push(program.as_os_str());
                all.extend_from_slice(args);
                shell_words(runuser.as_os_str(), &all)
            }
            Runner::Su(su) => {
                let inner = shell_words(program.as_os_str(), args);
                shell_words(
                    su.as_os_str(),
                    &[
                        PG_USER.as_ref(),
                        "-s".as_ref(),
                        "/bin/sh".as_ref(),
                        "-c".as_ref(),
                        &inner,
                    ],
                )
            }
        }
    }
}

/// Removes `PG*` variables (PGHOST, PGPORT, PGOPTIONS, …) that would redirect or alter our
/// clients and server, forces C-locale messages, and bounds client connect time.
pub(crate) fn sanitize(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LC_ALL", "C")
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null());
}

/// A client-side command (run as the current user) with a sanitized environment.
pub(crate) fn client(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    sanitize(&mut cmd);
    cmd
}

/// Runs `cmd` to completion, capturing output; a non-zero exit becomes [`Error::CommandFailed`].
pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<Output, Error> {
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| Error::io(format!("running {what} ({:?})", cmd.get_program()), e))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::CommandFailed {
            what: what.to_owned(),
            detail: describe(&output),
        })
    }
}

/// Exit status plus trimmed stdout/stderr, for error messages.
pub(crate) fn describe(output: &Output) -> String {
    let mut s = format!("{}", output.status);
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim();
        if !text.is_empty() {
            s.push_str(&format!("\n--- {name} ---\n{text}"));
        }
    }
    s
}

/// Whether the effective uid is 0 (from `/proc/self/status`, falling back to `id -u`).
fn is_root() -> Result<bool, Error> {
    if let Ok(status) = std::fs::read_to_string("/proc/self/status")
        && let Some(euid) = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
    {
        return Ok(euid == "0");
    }
    let out = run(Command::new("id").arg("-u"), "id -u")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `name` in one of `dirs`, else in `$PATH`.
fn find_program(name: &str, dirs: &[&str]) -> Option<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    dirs.iter()
        .map(PathBuf::from)
        .chain(path_dirs)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Quotes each word for `/bin/sh` and joins them with spaces.
pub(crate) fn shell_words(program: &OsStr, args: &[&OsStr]) -> OsString {
    let mut out = Vec::new();
    for (i, word) in std::iter::once(program)
        .chain(args.iter().copied())
        .enumerate()
    {
        if i > 0 {
            out.push(b' ');
        }
        out.push(b'\'');
        for &b in word.as_bytes() {
            if b == b'\'' {
                out.extend_from_slice(b"'\\''");
            } else {
                out.push(b);
            }
        }
        out.push(b'\'');
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        let line = shell_words("/bin/echo".as_ref(), &["it's".as_ref(), "a b".as_ref()]);
        assert_eq!(line, OsString::from(r"'/bin/echo' 'it'\''s' 'a b'"));
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&line)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's a b\n");
    }

    #[test]
    fn su_line_nests_quoting() {
        // A fake `su` shell function that drops `postgres -s /bin/sh` and runs `/bin/sh -c <line>`.
        let line =
            Runner::Su("fakesu".into()).shell_line(Path::new("/bin/echo"), &["a'b \"c\"".as_ref()]);
        let mut script = OsString::from("fakesu() { shift 3; /bin/sh \"$@\"; }; ");
        script.push(&line);
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "a'b \"c\"\n");
    }
}
