//! The store's and the services' vocabularies in the API's words
//! (`bulwark_api`'s enums), one exhaustive `match` each way, so a value
//! added on either side is a compile error here rather than a word the
//! document does not list. (The store reads its states strictly: a word
//! it does not know is `bulwark_store::Error::Corrupt`, an internal error.)

use bulwark_store as store;

use super::dto;

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

/// A device's state as the API names it.
pub(crate) fn device_state(s: crate::presence::DeviceState) -> dto::DeviceState {
    use crate::presence::DeviceState as S;
    match s {
        S::Revoked => dto::DeviceState::Revoked,
        S::Quarantined => dto::DeviceState::Quarantined,
        S::Updating => dto::DeviceState::Updating,
        S::RolledBack => dto::DeviceState::RolledBack,
        S::Online => dto::DeviceState::Online,
        S::Offline => dto::DeviceState::Offline,
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

/// A device's reported update phase as the API names it.
pub(crate) fn update_phase(p: store::UpdatePhase) -> dto::UpdatePhase {
    use store::UpdatePhase as S;
    match p {
        S::Downloading => dto::UpdatePhase::Downloading,
        S::Verifying => dto::UpdatePhase::Verifying,
        S::Staging => dto::UpdatePhase::Staging,
        S::Switching => dto::UpdatePhase::Switching,
        S::SmokeTesting => dto::UpdatePhase::SmokeTesting,
        S::Committing => dto::UpdatePhase::Committing,
        S::RollingBack => dto::UpdatePhase::RollingBack,
        S::Installed => dto::UpdatePhase::Installed,
        S::RolledBack => dto::UpdatePhase::RolledBack,
        S::Failed => dto::UpdatePhase::Failed,
        S::Refused => dto::UpdatePhase::Refused,
    }
}

/// A scan's SBOM source as the API names it.
pub(crate) fn sbom_source(s: store::SbomSource) -> dto::SbomSource {
    match s {
        store::SbomSource::Extracted => dto::SbomSource::Extracted,
        store::SbomSource::Uploaded => dto::SbomSource::Uploaded,
        store::SbomSource::UploadedExtracted => dto::SbomSource::UploadedExtracted,
    }
}

/// A vulnerability alert's kind as the API names it.
pub(crate) fn alert_kind(k: store::AlertKind) -> dto::AlertKind {
    match k {
        store::AlertKind::Vulnerability => dto::AlertKind::Vulnerability,
    }
}

/// A detection alert's kind as the API names it.
pub(crate) fn detection_kind(k: store::DetectionKind) -> dto::DetectionKind {
    use store::DetectionKind as S;
    match k {
        S::Rule => dto::DetectionKind::Rule,
        S::Zscore => dto::DetectionKind::Zscore,
        S::Novelty => dto::DetectionKind::Novelty,
        S::Fanout => dto::DetectionKind::Fanout,
        S::PeerOutlier => dto::DetectionKind::PeerOutlier,
        S::Rarity => dto::DetectionKind::Rarity,
        S::Scan => dto::DetectionKind::Scan,
        S::Flood => dto::DetectionKind::Flood,
        S::C2 => dto::DetectionKind::C2,
        S::Bruteforce => dto::DetectionKind::Bruteforce,
    }
}

/// A detection alert's severity as the API names it.
pub(crate) fn severity(s: store::Severity) -> dto::Severity {
    match s {
        store::Severity::Low => dto::Severity::Low,
        store::Severity::Medium => dto::Severity::Medium,
        store::Severity::High => dto::Severity::High,
        store::Severity::Critical => dto::Severity::Critical,
    }
}

/// A detection alert's action as the API names it.
pub(crate) fn alert_action(a: store::AlertAction) -> dto::AlertAction {
    match a {
        store::AlertAction::Quarantine => dto::AlertAction::Quarantine,
    }
}

/// A webhook delivery's event as the API names it.
pub(crate) fn event_kind(e: store::DeliveryEvent) -> dto::EventKind {
    match e {
        store::DeliveryEvent::Detection => dto::EventKind::Detection,
        store::DeliveryEvent::Vulnerability => dto::EventKind::Vulnerability,
    }
}

/// A webhook delivery's state as the API names it.
pub(crate) fn delivery_state(s: store::DeliveryState) -> dto::DeliveryState {
    match s {
        store::DeliveryState::Pending => dto::DeliveryState::Pending,
        store::DeliveryState::Delivered => dto::DeliveryState::Delivered,
        store::DeliveryState::Failed => dto::DeliveryState::Failed,
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use bulwark_api::UnknownValue;

    use super::*;
    use crate::error::ApiError;

    /// A word read back as the API's, strictly (what the server did with
    /// the states it kept as text before the store typed them; the
    /// engine's words are still checked against the API's with it).
    fn stored<T: FromStr<Err = UnknownValue>>(text: &str) -> Result<T, ApiError> {
        text.parse()
            .map_err(|e: UnknownValue| ApiError::internal(anyhow::anyhow!("stored {e}")))
    }

    /// Every stored state has the same word in the API.
    macro_rules! same_words {
        ($($map:ident: $ty:ident),* $(,)?) => {$(
            for v in store::$ty::ALL {
                assert_eq!($map(*v).as_str(), v.as_str());
            }
        )*};
    }

    #[test]
    fn stored_states_are_the_api_words() {
        same_words!(
            update_phase: UpdatePhase,
            sbom_source: SbomSource,
            alert_kind: AlertKind,
            detection_kind: DetectionKind,
            severity: Severity,
            alert_action: AlertAction,
            event_kind: DeliveryEvent,
            delivery_state: DeliveryState,
        );
        assert_eq!(store::UpdatePhase::ALL.len(), dto::UpdatePhase::ALL.len());
        assert_eq!(
            store::DetectionKind::ALL.len(),
            dto::DetectionKind::ALL.len()
        );
    }

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
