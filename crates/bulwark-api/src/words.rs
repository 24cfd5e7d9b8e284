//! Closed vocabularies: [`api_enum!`] defines a field whose value is one of
//! a fixed set of words, and the field rules (patterns) shared by several
//! bodies.
//!
//! Each enum serializes to exactly the word the server has always sent
//! (`release-manager`, `smoke_testing`, `uploaded+extracted`: spellings are
//! given per value, not derived), its schema lists every word (`enum:`),
//! and an unknown word is refused when a body is read. `Display` writes the
//! word (honouring width, for tables) and `FromStr` reads it, for command
//! lines and stored text.

use std::fmt;

/// Field rule of names (groups, environments, accounts, tag keys, product
/// names): 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
pub const NAME_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}$";

/// Field rule of release versions: 1–64 of `A-Z a-z 0-9 . + - _ ~`,
/// starting with a letter or digit.
pub const VERSION_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$";

/// Field rule of release references: `name@version`.
pub const REFERENCE_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,63}@[A-Za-z0-9][A-Za-z0-9.+_~-]{0,63}$";

/// Field rule of SHA-256 digests: 64 lowercase hex characters.
pub const SHA256_PATTERN: &str = "^[0-9a-f]{64}$";

/// Field rule of device ids: a lowercase hyphenated UUID.
pub const DEVICE_ID_PATTERN: &str =
    "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/// Field rule of recorded reasons (revoke, quarantine, release): some
/// text that is not only white space, without control characters other
/// than a line feed; 1–1024 bytes once trimmed.
pub const REASON_PATTERN: &str = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$";

/// Field rule of labels and other one-line text: no control characters,
/// not only white space.
pub const LINE_PATTERN: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$";

/// Most tags one request may set or remove.
pub const MAX_TAGS_PER_REQUEST: usize = 64;

/// Largest integer a stored count, time or size may take: the databases
/// keep them as signed 64-bit numbers (`BIGINT`), so a request field above
/// this is refused rather than wrapped.
pub const MAX_STORED_INT: u64 = i64::MAX as u64;

/// A word that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was being read (`role`, `installer`, …).
    pub what: &'static str,
    /// The word given (at most 64 characters of it).
    pub value: String,
    /// Every word allowed.
    pub expected: &'static [&'static str],
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: must be one of {} (not {:?})",
            self.what,
            self.expected.join(", "),
            self.value
        )
    }
}

impl std::error::Error for UnknownValue {}

/// Defines a closed vocabulary: a unit enum with one spelled-out word per
/// value, serialized and documented as that word. The words are `tt`, not
/// `literal`: the schema derive does not see a `literal` fragment's value
/// (it would list the variants' Rust names).
macro_rules! api_enum {
    (
        $(#[$m:meta])*
        $name:ident, $what:tt {
            $($(#[$vm:meta])* $variant:ident = $text:tt,)+
        }
    ) => {
        $(#[$m])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// Every word, in declaration order.
            pub const WORDS: &'static [&'static str] = &[$($text,)+];

            /// The word on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::words::UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::words::UnknownValue {
                        what: $what,
                        value: s.chars().take(64).collect(),
                        expected: $name::WORDS,
                    }),
                }
            }
        }
    };
}

pub(crate) use api_enum;
