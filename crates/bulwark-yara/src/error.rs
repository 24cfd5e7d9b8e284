//! The crate's error type.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// One compile error or warning, located in a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleDiagnostic {
    /// The rule file's name (or the name given to
    /// [`Rules::compile_sources`](crate::Rules::compile_sources)).
    pub file: String,
    /// 1-based line of the problem, when yara-x points at one.
    pub line: Option<usize>,
    /// What is wrong, e.g. `syntax error: expecting pattern identifier`.
    pub message: String,
}

impl fmt::Display for RuleDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Everything that can go wrong compiling rules or scanning a file.
///
/// Scan errors concern one file: [`Scanner::scan`](crate::Scanner::scan)
/// returns them for that file and the caller carries on with the next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum YaraError {
    /// The rules directory could not be listed.
    #[error("cannot read rules directory {}", dir.display())]
    ReadRulesDir {
        /// The directory.
        dir: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A rule file could not be read.
    #[error("cannot read rule file {}", path.display())]
    ReadRuleFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A rule file's name is not UTF-8, so it cannot name a namespace.
    #[error("rule file name is not UTF-8: {}", path.display())]
    RuleFileName {
        /// The file.
        path: PathBuf,
    },
    /// Two rule files would share a namespace (`a.yar` and `a.yara`).
    #[error("rule files {first} and {second} both map to namespace {namespace}")]
    DuplicateNamespace {
        /// The shared namespace (the file stem).
        namespace: String,
        /// The first file.
        first: String,
        /// The second file.
        second: String,
    },
    /// A rule file is larger than [`MAX_RULE_FILE_BYTES`](crate::MAX_RULE_FILE_BYTES).
    #[error("rule file {file} is larger than {limit} bytes")]
    RuleFileTooLarge {
        /// The file.
        file: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// There are more rule files than [`MAX_RULE_FILES`](crate::MAX_RULE_FILES),
    /// or they add up to more than [`MAX_TOTAL_RULE_BYTES`](crate::MAX_TOTAL_RULE_BYTES).
    #[error("rule set too large: {what}")]
    TooManyRules {
        /// Which limit was hit.
        what: String,
    },
    /// The directory (or source list) holds no rule file.
    #[error("no *.yar or *.yara rule files in {source_name}")]
    NoRuleFiles {
        /// The directory or `sources`.
        source_name: String,
    },
    /// Rules failed to compile; one diagnostic per error (at most
    /// [`MAX_REPORTED_ERRORS`](crate::MAX_REPORTED_ERRORS)).
    #[error("rules failed to compile: {}", join(errors))]
    Compile {
        /// The errors, each with file and line.
        errors: Vec<RuleDiagnostic>,
    },
    /// A scanned file is larger than [`MAX_SCAN_BYTES`](crate::MAX_SCAN_BYTES).
    #[error("{path}: file is larger than {limit} bytes, not scanned")]
    FileTooLarge {
        /// The file.
        path: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// A file could not be read for scanning.
    #[error("cannot read {path}")]
    ReadFile {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Scanning one file took longer than the scanner's timeout.
    #[error("{path}: scan timed out after {timeout:?}")]
    Timeout {
        /// The file.
        path: String,
        /// The timeout that was exceeded.
        timeout: Duration,
    },
    /// yara-x failed to scan one file (a module error, for example).
    #[error("{path}: scan failed: {message}")]
    Scan {
        /// The file.
        path: String,
        /// yara-x's message.
        message: String,
    },
}

fn join(errors: &[RuleDiagnostic]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
