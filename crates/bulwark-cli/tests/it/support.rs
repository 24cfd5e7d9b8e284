//! Shared by the CLI integration tests: run the `bulwark` binary, start a
//! real server on free ports.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

pub fn bulwark() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bulwark"));
    c.env_remove("BULWARK_SERVER")
        .env_remove("BULWARK_TOKEN")
        .env_remove("BULWARK_DATA_DIR")
        .env_remove("BULWARK_DATABASE_URL")
        .env_remove("BULWARK_LOG")
        .env_remove("BULWARK_LOG_FORMAT")
        .env_remove("NO_COLOR");
    c
}

pub fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `bulwark server` child on free ports.
pub struct Running {
    pub child: std::process::Child,
    pub api: String,
    pub dev: String,
    pub data: std::path::PathBuf,
    pub token: String,
}

pub fn start_server(data: &std::path::Path) -> Running {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let (api, dev) = (free(), free());
    let mut child = bulwark()
        .args([
            "server",
            "--listen",
            &api,
            "--device-listen",
            &dev,
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // "Device listener: …" is printed once the server is serving.
    while let Some(Ok(line)) = lines.next() {
        if line.starts_with("Device listener:") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let token = std::fs::read_to_string(data.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned();
    Running {
        child,
        api,
        dev,
        data: data.to_owned(),
        token,
    }
}

impl Running {
    pub fn cli(&self) -> Command {
        let mut c = bulwark();
        c.env("BULWARK_SERVER", format!("http://{}", self.api))
            .env("BULWARK_TOKEN", &self.token);
        c
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
