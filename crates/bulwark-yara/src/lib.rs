//! Malware scanning with YARA rules through yara-x, kept in its own crate so
//! its wasmtime/cranelift build cost is paid once and nothing else is
//! rebuilt with its feature set.
//!
//! # Brief overview
//!
//! - [`Rules`] are compiled once from an operator-managed rules directory
//!   ([`Rules::compile_dir`]) or from in-memory sources
//!   ([`Rules::compile_sources`]). They are immutable and `Send + Sync`.
//! - A [`Scanner`] borrows the rules and scans one file at a time; make one
//!   per thread. [`Scanner::scan`] returns the file's [`Hit`]s or a
//!   [`YaraError`] for that file alone (timeout, too large), so one bad
//!   file never aborts the scan of an artifact.
//! - [`scan_paths`] scans many files on several threads, for callers and
//!   benchmarks that work on directories.
//!
//! # Example
//!
//! ```
//! use bulwark_yara::{Rules, Scanner};
//!
//! let rules = Rules::compile_sources(&[(
//!     "mirai.yar",
//!     r#"rule mirai_busybox : botnet { strings: $a = "/bin/busybox MIRAI" condition: $a }"#,
//! )])?;
//! let mut scanner = Scanner::new(&rules);
//! let hits = scanner.scan("usr/bin/dvrHelper", b"...\x00/bin/busybox MIRAI\x00...")?;
//! assert_eq!(hits[0].rule, "mirai_busybox");
//! assert_eq!(hits[0].namespace, "mirai");
//! assert_eq!(hits[0].tags, ["botnet"]);
//! # Ok::<(), bulwark_yara::YaraError>(())
//! ```
//!
//! # Rules directory
//!
//! Every `*.yar`/`*.yara` file directly in the directory (not recursive;
//! hidden files skipped) compiles into the namespace named after its stem.
//! `include` is disabled. Limits: [`MAX_RULE_FILE_BYTES`] per file,
//! [`MAX_RULE_FILES`] files, [`MAX_TOTAL_RULE_BYTES`] in all. Compile errors
//! come back together as [`YaraError::Compile`], each naming file and line.
//!
//! # Modules
//!
//! yara-x is built without its default features. Enabled modules: `console`,
//! `elf`, `hash`, `math`, `pe`, `string`, `time` — what public malware rules
//! for Linux/IoT and Windows droppers commonly import. Left out: `crx`,
//! `cuckoo`, `dex`, `dotnet`, `lnk`, `macho`, `vt`, `zip` (not firmware
//! formats, or not usable offline). A rule importing a missing module fails
//! to compile with a clear error; enable the module's feature to fix it.
//!
//! # Differences from the C `yara` CLI
//!
//! yara-x is documented to differ from YARA 4.x in corner cases (see
//! yara-x's "differences with YARA" page): e.g. stricter regexp and
//! hex-pattern syntax, some module fields. The test suite runs Debian's
//! `yara` over the same fixtures and requires identical (rule, file) pairs.
//!
//! # Limits while scanning
//!
//! Files over [`MAX_SCAN_BYTES`] are refused; each scan stops after the
//! scanner's timeout ([`DEFAULT_TIMEOUT`] unless changed).

mod error;
mod rules;
mod scan;

pub use error::{RuleDiagnostic, YaraError};
pub use rules::{
    MAX_REPORTED_ERRORS, MAX_RULE_FILE_BYTES, MAX_RULE_FILES, MAX_TOTAL_RULE_BYTES, Rules,
};
pub use scan::{DEFAULT_TIMEOUT, FileScan, Hit, MAX_SCAN_BYTES, Scanner, scan_paths};
