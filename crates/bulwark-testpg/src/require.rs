//! What a test needs from outside the workspace: found, or said clearly.
//!
//! Some tests run against an external program or package: PostgreSQL
//! ([`crate::TempPostgres::require`]), Mosquitto and its clients, tshark,
//! the C YARA CLI, dpkg, Node.js, and the Python reference implementations
//! (python-tuf, packaging, cbor2, paho-mqtt, cyclonedx-python-lib,
//! spdx-tools). `cargo xtask ci` installs all of them before it runs the
//! tests. Every such test looks for what it needs through this module, so
//! all of them behave the same way when it is missing:
//!
//! - found: the test gets its path and runs;
//! - missing, and the environment variable `CI` is set (not empty, `0` or
//!   `false`): the test panics, naming the program, the test that looked
//!   for it, where it looked, and how to install it. CI sets `CI`, and so
//!   does `cargo xtask ci` for its test step, after installing everything:
//!   there a missing reference is a broken setup, never a skip;
//! - missing, without `CI`: one line on stderr, `skipping <test>: <program>
//!   not found (<where>); install it with <command>, or run `cargo xtask
//!   ci`, which installs it`, and the test returns early (it passes). The
//!   line is written to the process's stderr directly, past libtest's
//!   output capture, so it shows in an ordinary `cargo test` run.
//!
//! ```no_run
//! let Some(mosquitto) =
//!     bulwark_testpg::require_tool("mosquitto", "apt-get install -y mosquitto")
//! else {
//!     return; // missing, outside CI: the skip line is printed
//! };
//! # let _ = mosquitto;
//! ```

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment variable that turns a missing program into a failure.
pub const CI_ENV: &str = "CI";

/// Searched after `PATH`: daemons such as `mosquitto` live in an `sbin`
/// directory, which a non-root `PATH` often lacks.
const SBIN_DIRS: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Whether `CI` is set: present and not empty, `0` or `false`.
pub fn ci() -> bool {
    is_set(std::env::var_os(CI_ENV).as_deref())
}

fn is_set(value: Option<&OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"))
}

/// `program` (a name looked up on `PATH` and then in the `sbin`
/// directories, or a path), or [`missing`] (`None` outside CI).
/// `install` is the command that installs it.
pub fn require_tool(program: &str, install: &str) -> Option<PathBuf> {
    match find_tool(program) {
        Ok(path) => Some(path),
        Err(searched) => missing(&format!("`{program}`"), &searched, install),
    }
}

/// Each of `programs`, in order, or [`missing`] naming every one absent.
pub fn require_tools(programs: &[&str], install: &str) -> Option<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut absent = Vec::new();
    let mut searched = String::new();
    for program in programs {
        match find_tool(program) {
            Ok(path) => found.push(path),
            Err(s) => {
                absent.push(format!("`{program}`"));
                searched = s;
            }
        }
    }
    if absent.is_empty() {
        return Some(found);
    }
    missing(&absent.join(", "), &searched, install)
}

/// The Python interpreter `python` (a name or a path, as for
/// [`require_tool`]), once it has imported every one of `modules`; else
/// [`missing`], naming the interpreter or the modules it could not import.
/// `install` installs the modules (from PyPI).
pub fn require_python(python: &str, modules: &[&str], install: &str) -> Option<PathBuf> {
    match find_python(python, modules) {
        Ok(interpreter) => Some(interpreter),
        Err(Absent::Interpreter { searched }) => missing(
            &format!("the Python interpreter `{python}`"),
            &searched,
            &format!("apt-get install -y python3 && {install}"),
        ),
        Err(Absent::Modules { what, searched }) => missing(&what, &searched, install),
    }
}

/// What [`find_python`] did not find.
#[derive(Debug, PartialEq, Eq)]
enum Absent {
    /// The interpreter, and where it was looked for.
    Interpreter { searched: String },
    /// `Python module(s) …`, and what importing them said.
    Modules { what: String, searched: String },
}

fn find_python(python: &str, modules: &[&str]) -> Result<PathBuf, Absent> {
    let interpreter = find_tool(python).map_err(|searched| Absent::Interpreter { searched })?;
    const PROBE: &str = "import importlib, sys\n\
        for m in sys.argv[1:]:\n\
        \x20   try:\n\
        \x20       importlib.import_module(m)\n\
        \x20   except Exception as e:\n\
        \x20       print(m + ': ' + str(e).replace('\\n', ' '))\n";
    let out = Command::new(&interpreter)
        .args(["-c", PROBE])
        .args(modules)
        .stdin(Stdio::null())
        .output();
    let failures = match &out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => format!(
            "{} exited with {}: {}",
            interpreter.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("{} did not start: {e}", interpreter.display()),
    };
    if failures.is_empty() {
        return Ok(interpreter);
    }
    // The probe's lines name the modules that failed; anything else (the
    // interpreter itself failed) leaves all of them in doubt.
    let mut absent: Vec<&str> = failures
        .lines()
        .filter_map(|line| line.split_once(": ").map(|(module, _)| module))
        .filter(|module| modules.contains(module))
        .collect();
    if absent.is_empty() {
        absent = modules.to_vec();
    }
    let noun = if absent.len() == 1 {
        "module"
    } else {
        "modules"
    };
    Err(Absent::Modules {
        what: format!("Python {noun} {}", absent.join(", ")),
        searched: format!(
            "imported with {}: {}",
            interpreter.display(),
            failures.replace('\n', "; ")
        ),
    })
}

/// The rule for something a test needs that is not there: under CI (see
/// [`ci`]) a panic; otherwise one line on stderr and `None`, for the test
/// to return early. `what` names the program or package, `searched` says
/// where it was looked for, `install` how to install it.
pub fn missing<T>(what: &str, searched: &str, install: &str) -> Option<T> {
    report(ci(), &mut std::io::stderr(), what, searched, install);
    None
}

/// [`missing`] with the CI decision and the output passed in.
fn report(ci: bool, out: &mut dyn Write, what: &str, searched: &str, install: &str) {
    let test = current_test();
    if ci {
        panic!(
            "{test}: {what} not found ({searched}); CI is set, so this fails instead of \
             skipping: install it with `{install}` (`cargo xtask ci` installs it)"
        );
    }
    // One write of the whole line, so that parallel tests do not interleave.
    let line = format!(
        "skipping {test}: {what} not found ({searched}); install it with `{install}`, \
         or run `cargo xtask ci`, which installs it\n"
    );
    let _ = out.write_all(line.as_bytes());
}

/// The running test's name: libtest names each test's thread after it.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "this test".to_owned(),
    }
}

/// Where `program` is, or where it was looked for.
fn find_tool(program: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!("no executable file {program}"))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("looked on PATH and in {}", SBIN_DIRS.join(", ")))
}

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOWHERE: &str = "bulwark-no-such-program";
    const INSTALL: &str = "apt-get install -y bulwark-no-such-program";
    /// Makes [`child_requires_a_missing_program`] do its work.
    const CHILD_ENV: &str = "BULWARK_REQUIRE_CHILD";
    const CHILD: &str = "require::tests::child_requires_a_missing_program";

    #[test]
    fn a_present_program_gives_its_path() {
        let sh = require_tool("sh", "apt-get install -y dash").expect("sh is on PATH");
        assert!(sh.ends_with("sh") && sh.is_absolute(), "{}", sh.display());
        assert_eq!(require_tool("/bin/sh", "-"), Some(PathBuf::from("/bin/sh")));
        assert_eq!(
            require_tools(&["sh", "/bin/sh"], "-"),
            Some(vec![sh, PathBuf::from("/bin/sh")])
        );
    }

    #[test]
    fn a_present_python_module_gives_the_interpreter() {
        // Only where Python is installed: what this module is for, not a
        // reference whose absence must fail.
        if find_tool("python3").is_err() {
            return;
        }
        let python = require_python("python3", &["json", "hmac"], "-").expect("stdlib imports");
        assert!(python.is_absolute(), "{}", python.display());
    }

    #[test]
    fn a_missing_python_module_is_named_alone() {
        if find_tool("python3").is_err() {
            return;
        }
        let Err(Absent::Modules { what, searched }) =
            find_python("python3", &["json", "bulwark_no_such_module"])
        else {
            panic!("bulwark_no_such_module imported");
        };
        assert_eq!(what, "Python module bulwark_no_such_module");
        assert!(
            searched.starts_with("imported with /")
                && searched.ends_with(
                    ": bulwark_no_such_module: No module named 'bulwark_no_such_module'"
                ),
            "{searched}"
        );
        assert_eq!(
            find_python("bulwark-no-such-python", &["json"]),
            Err(Absent::Interpreter {
                searched: "looked on PATH and in /usr/local/sbin, /usr/sbin, /sbin".to_owned()
            })
        );
    }

    #[test]
    fn missing_under_ci_panics_naming_the_program_the_test_and_the_install() {
        let mut out = Vec::new();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            report(
                true,
                &mut out,
                "`bulwark-no-such-program`",
                "looked here",
                INSTALL,
            )
        }));
        let payload = caught.expect_err("a missing program under CI panics");
        let message = payload
            .downcast_ref::<String>()
            .expect("a formatted panic message");
        assert_eq!(
            message,
            "require::tests::missing_under_ci_panics_naming_the_program_the_test_and_the_install: \
             `bulwark-no-such-program` not found (looked here); CI is set, so this fails instead \
             of skipping: install it with `apt-get install -y bulwark-no-such-program` \
             (`cargo xtask ci` installs it)"
        );
        assert!(out.is_empty(), "nothing printed when failing");
    }

    #[test]
    fn missing_outside_ci_prints_one_skip_line() {
        let mut out = Vec::new();
        report(
            false,
            &mut out,
            "`bulwark-no-such-program`",
            "looked here",
            INSTALL,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "skipping require::tests::missing_outside_ci_prints_one_skip_line: \
             `bulwark-no-such-program` not found (looked here); install it with \
             `apt-get install -y bulwark-no-such-program`, or run `cargo xtask ci`, which \
             installs it\n"
        );
    }

    #[test]
    fn what_was_searched_is_named() {
        assert_eq!(
            find_tool(NOWHERE),
            Err("looked on PATH and in /usr/local/sbin, /usr/sbin, /sbin".to_owned())
        );
        assert_eq!(
            find_tool("/nonexistent/mosquitto"),
            Err("no executable file /nonexistent/mosquitto".to_owned())
        );
        // A file that is not executable is not the program.
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("tool");
        std::fs::write(&plain, "").unwrap();
        assert!(find_tool(plain.to_str().unwrap()).is_err());
    }

    #[test]
    fn only_a_real_value_sets_ci() {
        for (value, set) in [
            (None, false),
            (Some(""), false),
            (Some("0"), false),
            (Some("false"), false),
            (Some("FALSE"), false),
            (Some("1"), true),
            (Some("true"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(is_set(value.map(OsStr::new)), set, "CI={value:?}");
        }
    }

    /// The whole path in a real test run: this binary again, on
    /// [`child_requires_a_missing_program`], with and without `CI`.
    #[test]
    fn the_ci_variable_decides_in_a_real_test_run() {
        let run = |ci: Option<&str>| {
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.args(["--exact", CHILD]).env(CHILD_ENV, "1");
            match ci {
                Some(value) => cmd.env(CI_ENV, value),
                None => cmd.env_remove(CI_ENV),
            };
            let out = cmd.output().unwrap();
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.success(), text(&out.stdout), text(&out.stderr))
        };
        let skip_line = format!(
            "skipping {CHILD}: `{NOWHERE}` not found (looked on PATH and in /usr/local/sbin, \
             /usr/sbin, /sbin); install it with `{INSTALL}`, or run `cargo xtask ci`, which \
             installs it\n"
        );
        for ci in [None, Some(""), Some("false")] {
            let (ok, stdout, stderr) = run(ci);
            assert!(
                ok,
                "CI={ci:?}: the test skips and passes\n{stdout}\n{stderr}"
            );
            // Shown although libtest captures the output of passing tests.
            assert!(stderr.contains(&skip_line), "CI={ci:?}: {stderr}");
            assert!(stdout.contains("1 passed"), "{stdout}");
        }
        let (ok, stdout, stderr) = run(Some("true"));
        assert!(!ok, "CI=true: the test fails\n{stdout}\n{stderr}");
        let failure = format!(
            "{CHILD}: `{NOWHERE}` not found (looked on PATH and in /usr/local/sbin, /usr/sbin, \
             /sbin); CI is set, so this fails instead of skipping: install it with `{INSTALL}` \
             (`cargo xtask ci` installs it)"
        );
        assert!(
            stdout.contains(&failure) || stderr.contains(&failure),
            "{stdout}\n{stderr}"
        );
        assert!(!stderr.contains("skipping"), "{stderr}");
    }

    /// Run by [`the_ci_variable_decides_in_a_real_test_run`] as a child
    /// process; a no-op in the normal test run (the house rules forbid
    /// ignored tests).
    #[test]
    fn child_requires_a_missing_program() {
        if std::env::var_os(CHILD_ENV).is_none() {
            return;
        }
        let Some(found) = require_tool(NOWHERE, INSTALL) else {
            return;
        };
        panic!("{NOWHERE} found at {}", found.display());
    }
}
