//! The error type of `bulwark-testpg`.

use std::fmt;
use std::io;

/// Why a throwaway PostgreSQL server could not be started or used.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `initdb`/`pg_ctl` (or a client such as `createdb`/`psql`) could not be found.
    BinariesNotFound {
        /// Where we looked.
        searched: String,
    },
    /// A database name given to [`crate::TempPostgres::create_database`] is not `[a-z0-9_]{1,63}`.
    InvalidDatabaseName {
        /// The rejected name.
        name: String,
    },
    /// An I/O operation (creating the temp dir, spawning a program, …) failed.
    Io {
        /// What we were doing.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A helper program (`initdb`, `createdb`, `chown`, …) exited unsuccessfully.
    CommandFailed {
        /// Which step failed.
        what: String,
        /// Exit status and captured output.
        detail: String,
    },
    /// The server did not come up, even after retrying with fresh ports.
    StartFailed {
        /// How many ports were tried.
        attempts: u32,
        /// `pg_ctl` output and the tail of the server log of the last attempt.
        detail: String,
    },
    /// The environment is unsuitable (e.g. running as root without a `postgres` user).
    Setup(String),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BinariesNotFound { searched } => write!(
                f,
                "PostgreSQL binaries not found; install Debian's postgresql package \
                 (apt-get install -y postgresql) [searched: {searched}]"
            ),
            Error::InvalidDatabaseName { name } => write!(
                f,
                "invalid database name {name:?}: must be 1-63 characters of [a-z0-9_]"
            ),
            Error::Io { context, source } => write!(f, "{context}: {source}"),
            Error::CommandFailed { what, detail } => write!(f, "{what} failed: {detail}"),
            Error::StartFailed { attempts, detail } => write!(
                f,
                "PostgreSQL server failed to start ({attempts} attempts); last attempt: {detail}"
            ),
            Error::Setup(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
