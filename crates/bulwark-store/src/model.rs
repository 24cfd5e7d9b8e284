//! What every repository shares: [`Audit`] (who makes a change, written
//! into its journal entry), the millisecond timestamps, and
//! `stored_enum!`, which defines a state kept as text.

use bulwark_proto::{DeviceId, JournalAction, JournalActor, JournalEntry};
use time::OffsetDateTime;

/// Unix milliseconds: how every timestamp is stored and journaled.
pub(crate) fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Who is making a change, and in which request. Every mutating store
/// method takes one and writes the journal entry for its change in the same
/// transaction as the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    /// When (also the time recorded on the changed rows).
    pub time: OffsetDateTime,
    /// Who.
    pub actor: JournalActor,
    /// The API request id.
    pub request_id: Option<String>,
    /// The client's address.
    pub source: Option<String>,
}

impl Audit {
    /// A change made by the server itself (bootstrap).
    pub fn system(time: OffsetDateTime) -> Self {
        Self {
            time,
            actor: JournalActor {
                kind: "system".into(),
                id: "bulwark-server".into(),
                name: None,
                token_id: None,
            },
            request_id: None,
            source: None,
        }
    }

    /// A change made by a device.
    pub fn device(
        time: OffsetDateTime,
        id: DeviceId,
        source: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        Self {
            time,
            actor: JournalActor {
                kind: "device".into(),
                id: id.to_string(),
                name: None,
                token_id: None,
            },
            request_id,
            source,
        }
    }

    pub(crate) fn entry(
        &self,
        action: JournalAction,
        target: String,
        before: Option<String>,
        after: Option<String>,
        detail: &[(&str, String)],
    ) -> JournalEntry {
        JournalEntry {
            time_ms: ms(self.time),
            actor: self.actor.clone(),
            action: action.as_str().to_owned(),
            target,
            request_id: self.request_id.clone(),
            source: self.source.clone(),
            before,
            after,
            detail: detail
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }
}

/// Defines a stored state: an enum kept as text in the database, read
/// back strictly (an unknown text is [`crate::Error::Corrupt`]).
macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The stored (and shown) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value a text names, if any.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// Reads a stored text strictly: another text is
            /// [`crate::Error::Corrupt`].
            pub(crate) fn read(text: String) -> crate::Result<$name> {
                $name::parse(&text).ok_or(crate::Error::Corrupt { what: $what, detail: format!("{text:?}") })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

pub(crate) use stored_enum;

#[cfg(test)]
mod tests {
    use crate::*;

    /// Every stored state reads back what it wrote, and any other text is
    /// corrupt (`$what` names the column).
    macro_rules! round_trips {
        ($($ty:ident => $what:literal),* $(,)?) => {$(
            for v in $ty::ALL {
                assert_eq!($ty::read(v.as_str().to_owned()).unwrap(), *v);
                assert_eq!($ty::parse(&v.to_string()), Some(*v));
            }
            match $ty::read("Not-A-Word".into()) {
                Err(Error::Corrupt { what, detail }) => {
                    assert_eq!((what, detail.as_str()), ($what, "\"Not-A-Word\""));
                }
                other => panic!("{other:?}"),
            }
        )*};
    }

    #[test]
    fn every_stored_state_round_trips_and_reads_strictly() {
        round_trips!(
            DeviceStatus => "device status",
            ReleaseStatus => "release status",
            Installer => "release installer",
            UpdatePhase => "update phase",
            Repository => "TUF repository",
            TufRole => "TUF role",
            GateStatus => "gate status",
            SbomSource => "SBOM source",
            AlertKind => "alert kind",
            DetectionKind => "detection kind",
            Severity => "alert severity",
            AlertAction => "alert action",
            DeliveryEvent => "delivery event",
            DeliveryState => "delivery state",
        );
    }

    #[test]
    fn stored_words_are_the_ones_always_written() {
        let words = |all: &[&str]| all.join(" ");
        assert_eq!(
            words(&TufRole::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
            "root targets snapshot timestamp"
        );
        assert_eq!(
            words(
                &Repository::ALL
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
            ),
            "image director"
        );
        assert_eq!(
            UpdatePhase::ALL
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>(),
            bulwark_proto::UPDATE_PHASES
        );
        assert_eq!(
            words(
                &DeliveryState::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            ),
            "pending delivered failed"
        );
    }
}
