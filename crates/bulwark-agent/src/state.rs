//! The agent's state directory: identity and settings on disk.
//!
//! | file | mode | what |
//! |---|---|---|
//! | `agent.toml` | 0644 | server URL, device id |
//! | `device.key` | 0600 | private key (PKCS#8 PEM); never leaves the device |
//! | `device.crt` | 0644 | certificate from the server's device CA |
//! | `ca.pem` | 0644 | the CA the agent trusts |

use std::fs;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use bulwark_pki::Secret;
use bulwark_proto::{DeviceId, EnrollResponse};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentToml {
    server: String,
    device_id: DeviceId,
}

/// The agent's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

/// An identity loaded from a [`StateDir`].
#[derive(Debug)]
pub struct StateFile {
    /// Device listener URL.
    pub server: String,
    /// This device.
    pub device_id: DeviceId,
    /// Certificate PEM.
    pub cert_pem: String,
    /// Private key PEM.
    pub key_pem: Secret,
    /// Trusted CA PEM.
    pub ca_pem: String,
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::State {
        action,
        path,
        source,
    }
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    crate::update::write_atomic(path, bytes, mode).map_err(io("writing", path))
}

impl StateDir {
    /// The directory at `path` (not created until enrollment).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// True when an identity is stored here.
    pub fn is_enrolled(&self) -> bool {
        self.path.join("agent.toml").exists()
    }

    pub(crate) fn write_identity(
        &self,
        server: &str,
        resp: &EnrollResponse,
        key_pem: &Secret,
        ca_pem: &str,
    ) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(io("creating", &self.path))?;
        fs::set_permissions(&self.path, fs::Permissions::from_mode(0o700))
            .map_err(io("restricting", &self.path))?;
        write_file(
            &self.path.join("device.key"),
            key_pem.expose().as_bytes(),
            0o600,
        )?;
        write_file(
            &self.path.join("device.crt"),
            resp.certificate_pem.as_bytes(),
            0o644,
        )?;
        write_file(&self.path.join("ca.pem"), ca_pem.as_bytes(), 0o644)?;
        let toml = toml::to_string(&AgentToml {
            server: server.to_owned(),
            device_id: resp.device_id,
        })
        .map_err(|e| Error::BadState {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        // Written last: its presence means the identity is complete.
        write_file(&self.path.join("agent.toml"), toml.as_bytes(), 0o644)
    }

    /// Loads the stored identity.
    pub fn load(&self) -> Result<StateFile> {
        let read = |name: &str| {
            let p = self.path.join(name);
            fs::read_to_string(&p).map_err(io("reading", &p))
        };
        if !self.is_enrolled() {
            return Err(Error::BadState {
                path: self.path.clone(),
                reason: "not enrolled (run `bulwark-agent enroll` first)".into(),
            });
        }
        let key_path = self.path.join("device.key");
        let mode = fs::metadata(&key_path)
            .map_err(io("reading", &key_path))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::BadState {
                path: self.path.clone(),
                reason: format!("device.key has mode {mode:o}; it must be 0600"),
            });
        }
        let cfg: AgentToml = toml::from_str(&read("agent.toml")?).map_err(|e| Error::BadState {
            path: self.path.clone(),
            reason: format!("agent.toml: {e}"),
        })?;
        Ok(StateFile {
            server: cfg.server,
            device_id: cfg.device_id,
            cert_pem: read("device.crt")?,
            key_pem: Secret::new(read("device.key")?),
            ca_pem: read("ca.pem")?,
        })
    }
}
