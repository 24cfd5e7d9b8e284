//! The built-in fleet profile: what every group gets from the server's
//! first start, and what `bulwark detect replay` uses without `--profile`.

use crate::profile::Profile;

/// The built-in profile's document. Group `*`: it covers every group that
/// has no profile of its own. Only behaviour semantics and fixed rules, so
/// it works from a device's first flow (nothing to learn, nothing that an
/// infected-from-the-start device could teach it), and only alerts that
/// say what the traffic means. Scanning, floods and brute force
/// quarantine; C&C signs, an upload a hundred robust deviations above the
/// group's (exfiltration, from the device's peers: no warm-up), a
/// listening port or destination that almost no peer has (fleet rarity),
/// many failed connection attempts and failed logins alert for a person
/// to judge.
pub const BUILTIN_PROFILE: &str = r#"# Bulwark's built-in fleet profile: behaviour semantics from the first
# minute, for every group without a profile of its own.
group = "*"
version = "builtin-2"

[[behaviour]]
name = "scanning"
kind = "scan"
metric = "flows"
severity = "high"
action = "quarantine"
threshold = 0.5
window = "5m"

[[behaviour]]
name = "flood"
kind = "flood"
metric = "flows"
severity = "high"
action = "quarantine"
threshold = 0.5
window = "10s"

[[behaviour]]
name = "command-and-control"
kind = "c2"
metric = "flows"
severity = "high"
threshold = 0.5
window = "10m"

[[behaviour]]
name = "brute-force"
kind = "bruteforce"
metric = "flows"
severity = "high"
action = "quarantine"
threshold = 0.5
window = "5m"

[[behaviour]]
name = "exfiltration"
kind = "peer-outlier"
metric = "bytes_out"
severity = "high"
threshold = 100
min_peers = 10

# What (almost) no peer in the device's group does: at most 1 % of the
# group at 95 % confidence (one holder needs 474 peers, four need 915),
# in a group of at least 100. A destination counts by its port's meaning
# (DNS and NTP never, web ports as the port alone, other ports as the
# endpoint).
[[behaviour]]
name = "rare-listener"
kind = "rarity"
metric = "listening_ports"
severity = "high"
threshold = 0.01
min_peers = 100
window = "1h"

[[behaviour]]
name = "rare-destination"
kind = "rarity"
metric = "remote_destinations"
severity = "high"
threshold = 0.01
min_peers = 100
window = "1h"

# Connection attempts refused, reset or timed out leave no socket for
# the next sample to list: a scan of closed ports shows only here.
[[behaviour]]
name = "failed-connections"
metric = "failed_attempts"
operator = ">"
threshold = 30
severity = "medium"

[[behaviour]]
name = "failed-logins"
metric = "failed_logins"
operator = ">"
threshold = 10
severity = "medium"
"#;

/// The built-in profile's version, as stored and shown.
pub const BUILTIN_VERSION: &str = "builtin-2";

/// The built-in profile, parsed.
pub fn builtin_profile() -> Profile {
    // The document is a constant that a test parses: it cannot fail at
    // run time, and if it ever did, an empty profile of the same group
    // and version is the safe answer (no behaviours, no false alerts).
    Profile::from_toml(BUILTIN_PROFILE).unwrap_or_else(|_| Profile {
        group: crate::DEFAULT_GROUP.to_owned(),
        version: BUILTIN_VERSION.to_owned(),
        behaviours: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_profile_parses_and_covers_every_group() {
        let p = Profile::from_toml(BUILTIN_PROFILE).unwrap();
        assert_eq!(p.group, crate::DEFAULT_GROUP);
        assert_eq!(p.version, BUILTIN_VERSION);
        assert_eq!(builtin_profile(), p);
        assert!(p.behaviours.len() >= 5);
    }
}
