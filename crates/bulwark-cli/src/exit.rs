//! Exit codes by kind of failure, so a script can tell "not found" from
//! "refused by policy" from "the server is down" without parsing messages.
//! `bulwark --help` lists them ([`HELP`]).

use bulwark_client::ClientError;

/// Anything else: invalid input, a local file, a refused request. (2 is
/// clap's, for bad arguments.)
pub(crate) const OTHER: u8 = 1;
/// What was named does not exist.
pub(crate) const NOT_FOUND: u8 = 3;
/// Refused by policy: a release gate blocked it or has not judged it yet.
pub(crate) const REFUSED: u8 = 4;
/// The change conflicts with the current state (already revoked, a token
/// used up, a name taken).
pub(crate) const CONFLICT: u8 = 5;
/// Not authenticated, or the role may not do this.
pub(crate) const AUTH: u8 = 6;
/// The server failed (5xx).
pub(crate) const SERVER: u8 = 7;
/// The server could not be reached, or the answer broke off.
pub(crate) const NETWORK: u8 = 8;

/// The table, for `bulwark --help`.
pub(crate) const HELP: &str = "\
Exit codes:
  0  success
  1  other errors (invalid input, local files)
  2  usage (bad arguments)
  3  not found
  4  refused by policy (a release gate blocked it or has not judged it)
  5  conflict with the current state
  6  not authenticated, or not allowed
  7  server error
  8  server unreachable";

/// Something the CLI itself looked up does not exist (a device name).
#[derive(Debug)]
pub(crate) struct NotFound(pub(crate) String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// The exit code for a command that failed with `e`: the first API error
/// (or [`NotFound`]) in its chain decides.
pub(crate) fn code(e: &anyhow::Error) -> u8 {
    e.chain()
        .find_map(|cause| {
            if cause.is::<NotFound>() {
                Some(NOT_FOUND)
            } else {
                cause.downcast_ref::<ClientError>().map(of_client)
            }
        })
        .unwrap_or(OTHER)
}

fn of_client(e: &ClientError) -> u8 {
    match e {
        ClientError::Unreachable { .. } | ClientError::Read { .. } => NETWORK,
        ClientError::Http { status, code, .. } => match (*status, code.as_deref()) {
            (_, Some("gate_blocked" | "gate_pending")) => REFUSED,
            (401 | 403, _) => AUTH,
            (404 | 410, _) => NOT_FOUND,
            (409, _) => CONFLICT,
            (500..=599, _) => SERVER,
            _ => OTHER,
        },
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: &str) -> anyhow::Error {
        anyhow::Error::new(ClientError::Http {
            status,
            code: Some(code.into()),
            message: "m".into(),
            request_id: None,
        })
        .context("doing something")
    }

    #[test]
    fn each_kind_has_its_code() {
        let cases = [
            (http(404, "not_found"), NOT_FOUND),
            (http(409, "gate_blocked"), REFUSED),
            (http(409, "gate_pending"), REFUSED),
            (http(409, "conflict"), CONFLICT),
            (http(401, "unauthenticated"), AUTH),
            (http(403, "forbidden"), AUTH),
            (http(500, "internal"), SERVER),
            (http(503, "overloaded"), SERVER),
            (http(400, "invalid_fields"), OTHER),
            (anyhow::Error::new(NotFound("device x".into())), NOT_FOUND),
            (anyhow::anyhow!("no server: set BULWARK_SERVER"), OTHER),
        ];
        for (e, want) in cases {
            assert_eq!(code(&e), want, "{e:#}");
        }
        assert_eq!(crate::gate::EXIT_BLOCKED, REFUSED);
    }
}
