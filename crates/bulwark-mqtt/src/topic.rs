//! The Bulwark topic scheme and the access rules derived from it.

/// Every Bulwark topic starts with this prefix, followed by the device id.
pub const TOPIC_PREFIX: &str = "bulwark/v1/devices/";

/// Suffix of the topic a device publishes telemetry to.
pub const TELEMETRY_SUFFIX: &str = "telemetry";

/// Suffix of the topic a device receives commands on.
pub const COMMANDS_SUFFIX: &str = "commands";

/// `bulwark/v1/devices/{device}/telemetry`.
pub fn telemetry_topic(device: &str) -> String {
    format!("{TOPIC_PREFIX}{device}/{TELEMETRY_SUFFIX}")
}

/// `bulwark/v1/devices/{device}/commands`.
pub fn command_topic(device: &str) -> String {
    format!("{TOPIC_PREFIX}{device}/{COMMANDS_SUFFIX}")
}

/// Whether `device` can be embedded in a topic as exactly one level:
/// non-empty, no `/`, no wildcard, no NUL.
pub fn is_valid_device_id(device: &str) -> bool {
    is_plain_level(device)
}

/// One topic level without separators or wildcards (and not empty).
fn is_plain_level(level: &str) -> bool {
    // Bytes, not chars: every byte of a multi-byte UTF-8 sequence is
    // >= 0x80, so none can be mistaken for these ASCII ones (and this runs
    // for every publish).
    !level.is_empty() && !level.bytes().any(|b| matches!(b, b'/' | b'+' | b'#' | 0))
}

/// The publish ACL: `Some(suffix)` when `topic` is
/// `bulwark/v1/devices/{device}/{suffix}` with `suffix` a single non-empty
/// level without wildcards; `None` (denied) otherwise.
pub fn publish_suffix<'t>(device: &str, topic: &'t str) -> Option<&'t str> {
    if !is_valid_device_id(device) {
        return None;
    }
    let rest = topic.strip_prefix(TOPIC_PREFIX)?;
    let rest = rest.strip_prefix(device)?;
    let suffix = rest.strip_prefix('/')?;
    is_plain_level(suffix).then_some(suffix)
}

/// The subscribe ACL: only the device's own command topic, exactly.
pub fn subscribe_allowed(device: &str, filter: &str) -> bool {
    is_valid_device_id(device) && filter == command_topic(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_built_from_the_prefix() {
        assert_eq!(telemetry_topic("d1"), "bulwark/v1/devices/d1/telemetry");
        assert_eq!(command_topic("d1"), "bulwark/v1/devices/d1/commands");
    }

    #[test]
    fn publish_acl_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("d1", "bulwark/v1/devices/d1/telemetry", Some("telemetry")),
            ("d1", "bulwark/v1/devices/d1/inventory", Some("inventory")),
            ("d1", "bulwark/v1/devices/d1/commands", Some("commands")),
            ("d1", "bulwark/v1/devices/d2/telemetry", None),
            ("d1", "bulwark/v1/devices/d10/telemetry", None),
            ("d10", "bulwark/v1/devices/d1/telemetry", None),
            ("d1", "bulwark/v1/devices/d1/", None),
            ("d1", "bulwark/v1/devices/d1", None),
            ("d1", "bulwark/v1/devices/d1/a/b", None),
            ("d1", "bulwark/v1/devices/d1/+", None),
            ("d1", "bulwark/v1/devices/d1/#", None),
            ("d1", "bulwark/v1/devices/d1/tele+metry", None),
            ("d1", "bulwark/v1/devices/+/telemetry", None),
            ("d1", "/bulwark/v1/devices/d1/telemetry", None),
            ("d1", "bulwark/v2/devices/d1/telemetry", None),
            ("d1", "", None),
            ("", "bulwark/v1/devices//telemetry", None),
            ("a/b", "bulwark/v1/devices/a/b/telemetry", None),
            ("+", "bulwark/v1/devices/+/telemetry", None),
        ];
        for (device, topic, want) in cases {
            assert_eq!(publish_suffix(device, topic), *want, "{device} {topic}");
        }
    }

    #[test]
    fn subscribe_acl_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("d1", "bulwark/v1/devices/d1/commands", true),
            ("d1", "bulwark/v1/devices/d1/telemetry", false),
            ("d1", "bulwark/v1/devices/d2/commands", false),
            ("d1", "bulwark/v1/devices/+/commands", false),
            ("d1", "bulwark/v1/devices/d1/#", false),
            ("d1", "#", false),
            ("d1", "+/+/+/+/+", false),
            ("d1", "$share/g/bulwark/v1/devices/d1/commands", false),
            ("#", "bulwark/v1/devices/#/commands", false),
        ];
        for (device, filter, want) in cases {
            assert_eq!(
                subscribe_allowed(device, filter),
                *want,
                "{device} {filter}"
            );
        }
    }

    #[test]
    fn device_ids() {
        assert!(is_valid_device_id("0b5e-11aa"));
        for bad in ["", "a/b", "+", "#", "a\0"] {
            assert!(!is_valid_device_id(bad), "{bad:?}");
        }
    }
}
