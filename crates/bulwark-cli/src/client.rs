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

/// The device id of `arg`: an id as it is, a name resolved through the
/// listing's exact `name` filter (the API's paths take ids only: a name
/// can change, an id never does).
pub(crate) async fn device_ref(api: &Client, arg: &str) -> Result<String> {
    let is_name = !arg.is_empty()
        && arg.len() <= 64
        && arg
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"-_.".contains(&c));
    if !is_name || bulwark_proto::DeviceId::parse(arg).is_ok() {
        return Ok(arg.to_owned());
    }
    let query = bulwark_api::DeviceQuery {
        name: Some(arg.to_owned()),
        limit: Some(1),
        ..Default::default()
    };
    match api.list_devices(&query).await?.value.devices.first() {
        Some(d) => Ok(d.id.to_string()),
        None => Err(crate::exit::NotFound(format!("no device has the id or name {arg:?}")).into()),
    }
}
