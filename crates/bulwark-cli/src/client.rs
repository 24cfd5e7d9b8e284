//! Where the admin API is: `--server`/`--token` or `BULWARK_SERVER`/
//! `BULWARK_TOKEN`, resolved into a [`bulwark_client::Client`] (which does
//! every call).

use anyhow::{Context as _, Result};
use bulwark_client::Client;

/// A client of the server named by `server` or `$BULWARK_SERVER`, with
/// `token` or `$BULWARK_TOKEN`.
pub(crate) fn from_env(server: Option<String>, token: Option<String>) -> Result<Client> {
    let base = server
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("BULWARK_SERVER").ok())
        .context("no server: set BULWARK_SERVER (e.g. http://127.0.0.1:8080) or pass --server")?;
    let token = token
        .or_else(|| std::env::var("BULWARK_TOKEN").ok())
        .context(
            "no API token: set BULWARK_TOKEN (e.g. $(cat DATA_DIR/admin.token)) or pass --token",
        )?;
    Ok(Client::builder(base, token)
        .user_agent(concat!("bulwark-cli/", env!("CARGO_PKG_VERSION")))
        .build()?)
}
