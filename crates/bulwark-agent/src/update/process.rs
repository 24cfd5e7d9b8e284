//! Running smoke tests and hooks: own process group, timeout, stderr tail.

use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;

/// Most stderr kept for a report.
pub(super) const MAX_TAIL: usize = 1024;

/// How a command ended.
#[derive(Debug)]
pub(super) enum Exit {
    /// Exit status 0.
    Success,
    /// Non-zero exit or killed by a signal: `"exited with status 3"`.
    Failed { status: String, tail: String },
    /// Still running at the timeout; its process group was killed.
    TimedOut { tail: String },
}

/// Formats a stderr tail as `": <text>"`, or empty.
pub(super) fn suffix(tail: &str) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {tail}")
    }
}

/// Runs `cmd` in its own process group with stdin and stdout closed, keeps
/// the last [`MAX_TAIL`] bytes of stderr, and kills the whole group at the
/// timeout.
pub(super) async fn run(
    mut cmd: tokio::process::Command,
    timeout: Duration,
) -> std::io::Result<Exit> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd.spawn()?;
    let tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    let reader = child.stderr.take().map(|mut err| {
        let tail = Arc::clone(&tail);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut t = tail
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                t.extend_from_slice(&buf[..n]);
                if t.len() > MAX_TAIL {
                    let cut = t.len() - MAX_TAIL;
                    t.drain(..cut);
                }
            }
        })
    });
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    if waited.is_err()
        && let Some(pid) = child.id()
    {
        // The group id is the child's pid (process_group(0)); this reaches
        // grandchildren that `sh -c` started, too.
        let _ = tokio::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        let _ = child.kill().await;
    }
    // A grandchild may still hold stderr open; don't wait for it for long.
    if let Some(mut r) = reader
        && tokio::time::timeout(Duration::from_millis(500), &mut r)
            .await
            .is_err()
    {
        r.abort();
    }
    let tail = {
        let t = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tail_text(&t)
    };
    match waited {
        Err(_) => Ok(Exit::TimedOut { tail }),
        Ok(status) => {
            let status = status?;
            if status.success() {
                Ok(Exit::Success)
            } else {
                let status = match (status.code(), status.signal()) {
                    (Some(code), _) => format!("exited with status {code}"),
                    (None, Some(sig)) => format!("was killed by signal {sig}"),
                    (None, None) => format!("failed ({status})"),
                };
                Ok(Exit::Failed { status, tail })
            }
        }
    }
}

fn tail_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    // Keep at most MAX_TAIL bytes, cut at a character boundary.
    let mut start = text.len().saturating_sub(MAX_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    #[tokio::test]
    async fn failure_reports_status_and_stderr_tail() {
        let exit = run(
            sh("echo start >&2; echo boom >&2; exit 3"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        match exit {
            Exit::Failed { status, tail } => {
                assert_eq!(status, "exited with status 3");
                assert_eq!(tail, "start\nboom");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn stderr_tail_is_capped() {
        let exit = run(
            sh("i=0; while [ $i -lt 500 ]; do echo 0123456789 >&2; i=$((i+1)); done; exit 1"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        match exit {
            Exit::Failed { tail, .. } => assert!(tail.len() <= MAX_TAIL && tail.len() > 900),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn timeout_kills_the_group_including_background_children() {
        let started = std::time::Instant::now();
        let exit = run(
            sh("echo waiting >&2; sleep 30 & sleep 30"),
            Duration::from_millis(300),
        )
        .await
        .unwrap();
        assert!(
            matches!(&exit, Exit::TimedOut { tail } if tail == "waiting"),
            "{exit:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
