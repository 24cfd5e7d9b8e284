//! The store's and the services' vocabularies in the API's words
//! (`bulwark_api`'s enums), one exhaustive `match` each way, so a value
//! added on either side is a compile error here rather than a word the
//! document does not list; and [`stored`], for the words kept as text.

use std::str::FromStr;

use bulwark_api::UnknownValue;

use super::dto;
use crate::error::ApiError;

/// An account role as the API names it.
pub(crate) fn role(r: bulwark_store::Role) -> dto::Role {
    use bulwark_store::Role as S;
    match r {
        S::Admin => dto::Role::Admin,
        S::Operator => dto::Role::Operator,
        S::ReleaseManager => dto::Role::ReleaseManager,
        S::Security => dto::Role::Security,
        S::Viewer => dto::Role::Viewer,
    }
}

/// An API role as the store keeps it.
pub(crate) fn store_role(r: dto::Role) -> bulwark_store::Role {
    use bulwark_store::Role as S;
    match r {
        dto::Role::Admin => S::Admin,
        dto::Role::Operator => S::Operator,
        dto::Role::ReleaseManager => S::ReleaseManager,
        dto::Role::Security => S::Security,
        dto::Role::Viewer => S::Viewer,
    }
}

/// A device's status as the API names it.
pub(crate) fn device_status(s: bulwark_store::DeviceStatus) -> dto::DeviceStatus {
    match s {
        bulwark_store::DeviceStatus::Active => dto::DeviceStatus::Active,
        bulwark_store::DeviceStatus::Revoked => dto::DeviceStatus::Revoked,
    }
}

/// A release's installer as the API names it.
pub(crate) fn installer(i: bulwark_store::Installer) -> dto::Installer {
    match i {
        bulwark_store::Installer::File => dto::Installer::File,
        bulwark_store::Installer::Ab => dto::Installer::Ab,
        bulwark_store::Installer::Script => dto::Installer::Script,
    }
}

/// An API installer as the store keeps it.
pub(crate) fn store_installer(i: dto::Installer) -> bulwark_store::Installer {
    match i {
        dto::Installer::File => bulwark_store::Installer::File,
        dto::Installer::Ab => bulwark_store::Installer::Ab,
        dto::Installer::Script => bulwark_store::Installer::Script,
    }
}

/// A release's signing status as the API names it.
pub(crate) fn release_status(s: bulwark_store::ReleaseStatus) -> dto::ReleaseStatus {
    match s {
        bulwark_store::ReleaseStatus::Unsigned => dto::ReleaseStatus::Unsigned,
        bulwark_store::ReleaseStatus::Published => dto::ReleaseStatus::Published,
    }
}

/// A gate verdict's status as the API names a release's gate state.
pub(crate) fn gate_state(s: bulwark_gate::Status) -> dto::GateState {
    match s {
        bulwark_gate::Status::Pass => dto::GateState::Pass,
        bulwark_gate::Status::Block => dto::GateState::Block,
    }
}

/// A word the server stored as text (alert kinds, severities, delivery
/// states, update phases), read back strictly: the server writes only the
/// words the API lists, so another is a damaged or foreign row, reported
/// as an internal error (logged with the row's text), never passed on as
/// a word the document does not list.
pub(crate) fn stored<T: FromStr<Err = UnknownValue>>(text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|e: UnknownValue| ApiError::internal(anyhow::anyhow!("stored {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_words_are_the_api_words() {
        for r in bulwark_store::Role::ALL {
            assert_eq!(role(r).as_str(), r.as_str());
            assert_eq!(store_role(role(r)), r);
        }
        for i in bulwark_store::Installer::ALL {
            assert_eq!(installer(*i).as_str(), i.as_str());
            assert_eq!(store_installer(installer(*i)), *i);
        }
        for s in bulwark_store::ReleaseStatus::ALL {
            assert_eq!(release_status(*s).as_str(), s.as_str());
        }
        for s in [
            bulwark_store::DeviceStatus::Active,
            bulwark_store::DeviceStatus::Revoked,
        ] {
            assert_eq!(device_status(s).as_str(), s.as_str());
        }
        for s in [bulwark_gate::Status::Pass, bulwark_gate::Status::Block] {
            assert_eq!(
                gate_state(s).as_str(),
                bulwark_services::gate::status_str(s)
            );
        }
    }

    #[test]
    fn the_detection_engine_writes_api_words() {
        use bulwark_detect::{Semantic, Severity};
        for s in [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ] {
            stored::<dto::Severity>(&s.to_string()).unwrap();
        }
        for s in Semantic::ALL {
            stored::<dto::DetectionKind>(s.name()).unwrap();
        }
        let profile = bulwark_detect::Profile::from_toml(bulwark_detect::BUILTIN_PROFILE).unwrap();
        for b in &profile.behaviours {
            stored::<dto::DetectionKind>(b.kind.name()).unwrap();
        }
    }

    #[test]
    fn an_unknown_stored_word_is_an_internal_error() {
        assert_eq!(
            stored::<dto::Severity>("high").unwrap(),
            dto::Severity::High
        );
        let e = stored::<dto::Severity>("dire").unwrap_err();
        assert!(matches!(e, ApiError::Internal(_)), "{e}");
    }
}
