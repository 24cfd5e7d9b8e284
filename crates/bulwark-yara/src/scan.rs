//! Scanning bytes and files with compiled [`Rules`].

use std::io::Read as _;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::error::YaraError;
use crate::rules::Rules;

/// Files larger than this are not scanned (an error for that file).
pub const MAX_SCAN_BYTES: u64 = 512 * 1024 * 1024;

/// Default per-file timeout of a [`Scanner`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One rule matching one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Rule identifier.
    pub rule: String,
    /// Namespace, i.e. the rule file's stem.
    pub namespace: String,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// The scanned path, as passed to [`Scanner::scan`].
    pub path: String,
    /// The rule's `meta:` section, values rendered as strings (integers
    /// and booleans as YARA writes them, non-UTF-8 bytes escaped).
    pub metadata: Vec<(String, String)>,
    /// Identifiers of the patterns that matched (`$mirai`), in rule order.
    /// Patterns are identified, never copied: matched bytes are not kept.
    pub matched_patterns: Vec<String>,
}

/// Scans files with shared [`Rules`]. Not `Sync`: create one per thread.
///
/// Creating a scanner instantiates the rules' WebAssembly module, so reuse
/// one per thread across files instead of creating one per file.
pub struct Scanner<'r> {
    inner: yara_x::Scanner<'r>,
    timeout: Duration,
}

impl std::fmt::Debug for Scanner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<'r> Scanner<'r> {
    /// A scanner with [`DEFAULT_TIMEOUT`].
    pub fn new(rules: &'r Rules) -> Scanner<'r> {
        let mut inner = yara_x::Scanner::new(&rules.inner);
        inner.set_timeout(DEFAULT_TIMEOUT);
        Scanner {
            inner,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the per-file timeout (yara-x checks it about once a second, so
    /// it is not exact below that).
    pub fn set_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.inner.set_timeout(timeout);
        self.timeout = timeout;
        self
    }

    /// Stops at the first match of each pattern instead of collecting
    /// matches: same rule results for rules that only test whether patterns
    /// occur, faster on files with many matches. Mirrors `yara -f`.
    pub fn set_fast_scan(&mut self, yes: bool) -> &mut Self {
        self.inner.fast_scan(yes);
        self
    }

    /// Scans one file's bytes. `path` only labels the hits and errors.
    ///
    /// An error concerns this file only; the scanner stays usable.
    pub fn scan(&mut self, path: &str, data: &[u8]) -> Result<Vec<Hit>, YaraError> {
        if data.len() as u64 > MAX_SCAN_BYTES {
            return Err(YaraError::FileTooLarge {
                path: path.to_owned(),
                limit: MAX_SCAN_BYTES,
            });
        }
        let results = match self.inner.scan(data) {
            Ok(results) => results,
            Err(yara_x::ScanError::Timeout) => {
                return Err(YaraError::Timeout {
                    path: path.to_owned(),
                    timeout: self.timeout,
                });
            }
            Err(err) => {
                return Err(YaraError::Scan {
                    path: path.to_owned(),
                    message: err.to_string(),
                });
            }
        };
        Ok(results
            .matching_rules()
            .map(|rule| Hit {
                rule: rule.identifier().to_owned(),
                namespace: rule.namespace().to_owned(),
                tags: rule.tags().map(|tag| tag.identifier().to_owned()).collect(),
                path: path.to_owned(),
                metadata: rule
                    .metadata()
                    .map(|(key, value)| (key.to_owned(), meta_string(&value)))
                    .collect(),
                matched_patterns: rule
                    .patterns()
                    .filter(|p| p.matches().len() > 0)
                    .map(|p| p.identifier().to_owned())
                    .collect(),
            })
            .collect())
    }

    /// Reads and scans one file from disk, refusing files over
    /// [`MAX_SCAN_BYTES`]. `path` is also the label of the hits.
    pub fn scan_file(&mut self, path: &Path) -> Result<Vec<Hit>, YaraError> {
        let label = path.display().to_string();
        let read_err = |source| YaraError::ReadFile {
            path: label.clone(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut data = Vec::new();
        file.take(MAX_SCAN_BYTES + 1)
            .read_to_end(&mut data)
            .map_err(read_err)?;
        self.scan(&label, &data)
    }
}

fn meta_string(value: &yara_x::MetaValue<'_>) -> String {
    match value {
        yara_x::MetaValue::Integer(i) => i.to_string(),
        yara_x::MetaValue::Float(f) => f.to_string(),
        yara_x::MetaValue::Bool(b) => b.to_string(),
        yara_x::MetaValue::String(s) => (*s).to_owned(),
        yara_x::MetaValue::Bytes(b) => b.escape_ascii().to_string(),
    }
}

/// The outcome of scanning one file in [`scan_paths`].
#[derive(Debug)]
pub struct FileScan {
    /// The file.
    pub path: PathBuf,
    /// Its hits, or why it could not be scanned.
    pub result: Result<Vec<Hit>, YaraError>,
}

/// Scans `paths` on `threads` threads (one [`Scanner`] each, files handed
/// out one at a time), returning one [`FileScan`] per path in input order.
///
/// This is what a throughput benchmark against `yara -p <threads>` wants:
/// compile once, then read and scan many files. A file that cannot be read
/// or scanned gets its error; the others are unaffected.
pub fn scan_paths(
    rules: &Rules,
    paths: &[PathBuf],
    threads: NonZeroUsize,
    timeout: Duration,
) -> Vec<FileScan> {
    let next = AtomicUsize::new(0);
    let done: Vec<(usize, FileScan)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.get().min(paths.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut scanner = Scanner::new(rules);
                    scanner.set_timeout(timeout);
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(i) else { break };
                        let result = scanner.scan_file(path);
                        done.push((
                            i,
                            FileScan {
                                path: path.clone(),
                                result,
                            },
                        ));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut slots: Vec<Option<FileScan>> = paths.iter().map(|_| None).collect();
    for (i, scan) in done {
        slots[i] = Some(scan);
    }
    // A worker that panicked (a yara-x bug) loses its files; report them
    // rather than dropping them silently.
    slots
        .into_iter()
        .zip(paths)
        .map(|(slot, path)| {
            slot.unwrap_or_else(|| FileScan {
                path: path.clone(),
                result: Err(YaraError::Scan {
                    path: path.display().to_string(),
                    message: "scanner thread panicked".to_owned(),
                }),
            })
        })
        .collect()
}
