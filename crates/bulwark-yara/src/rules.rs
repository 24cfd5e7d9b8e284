//! Compiling a rules directory (or in-memory sources) into [`Rules`].

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use crate::error::{RuleDiagnostic, YaraError};

/// A rule file larger than this is refused (the largest files of the big
/// public rule collections are a few MiB).
pub const MAX_RULE_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// At most this many rule files per directory.
pub const MAX_RULE_FILES: usize = 4096;

/// All rule files together may not exceed this.
pub const MAX_TOTAL_RULE_BYTES: u64 = 128 * 1024 * 1024;

/// At most this many compile errors are reported.
pub const MAX_REPORTED_ERRORS: usize = 50;

/// Compiled rules, immutable, `Send + Sync`: compile once, share with
/// `Arc<Rules>` (or `std::thread::scope`), and give each thread its own
/// [`Scanner`](crate::Scanner).
pub struct Rules {
    pub(crate) inner: yara_x::Rules,
    namespaces: Vec<String>,
    warnings: Vec<RuleDiagnostic>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("namespaces", &self.namespaces)
            .field("rules", &self.inner.iter().len())
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

impl Rules {
    /// Compiles every `*.yar` and `*.yara` file directly inside `dir`.
    ///
    /// The directory is **not** searched recursively: subdirectories (for
    /// example a `disabled/` folder or a git checkout's `.git/`) are
    /// ignored, as are hidden files. Symlinks to files are followed; the
    /// directory is operator-managed and trusted as much as the binary.
    /// Each file compiles into its own namespace named after its stem
    /// (`mirai.yar` → `mirai`), so rule names may repeat across files.
    /// `include` statements are disabled: a rule file cannot pull in
    /// files from elsewhere. Files are compiled in name order, so results
    /// do not depend on directory listing order.
    pub fn compile_dir(dir: &Path) -> Result<Rules, YaraError> {
        let read_dir = |source| YaraError::ReadRulesDir {
            dir: dir.to_path_buf(),
            source,
        };
        let mut paths = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            let Some(name) = path.file_name() else {
                continue;
            };
            let name = name.to_string_lossy();
            let is_rule_file = name.ends_with(".yar") || name.ends_with(".yara");
            if name.starts_with('.') || !is_rule_file || !path.is_file() {
                continue;
            }
            if paths.len() == MAX_RULE_FILES {
                return Err(YaraError::TooManyRules {
                    what: format!("more than {MAX_RULE_FILES} rule files in {}", dir.display()),
                });
            }
            paths.insert(name.into_owned(), path);
        }
        let mut sources = Vec::with_capacity(paths.len());
        let mut total = 0u64;
        for (name, path) in paths {
            let text = read_capped(&path, &name)?;
            total += text.len() as u64;
            if total > MAX_TOTAL_RULE_BYTES {
                return Err(YaraError::TooManyRules {
                    what: format!("rule files add up to more than {MAX_TOTAL_RULE_BYTES} bytes"),
                });
            }
            sources.push((name, text));
        }
        compile(&sources, &dir.display().to_string())
    }

    /// Compiles in-memory rule sources, each `(file name, text)` pair into
    /// the namespace named after the file's stem, with the same limits and
    /// restrictions as [`Rules::compile_dir`].
    pub fn compile_sources(sources: &[(&str, &str)]) -> Result<Rules, YaraError> {
        let mut owned = Vec::with_capacity(sources.len());
        for (name, text) in sources {
            if text.len() as u64 > MAX_RULE_FILE_BYTES {
                return Err(YaraError::RuleFileTooLarge {
                    file: (*name).to_owned(),
                    limit: MAX_RULE_FILE_BYTES,
                });
            }
            owned.push(((*name).to_owned(), text.as_bytes().to_vec()));
        }
        compile(&owned, "sources")
    }

    /// The namespaces, one per rule file, in compile order.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// How many rules were compiled (including private and global ones).
    pub fn rule_count(&self) -> usize {
        self.inner.iter().len()
    }

    /// Compiler warnings (slow patterns, always-true conditions, …).
    pub fn warnings(&self) -> &[RuleDiagnostic] {
        &self.warnings
    }
}

/// Reads a rule file, refusing more than [`MAX_RULE_FILE_BYTES`] even if the
/// file grows while being read.
fn read_capped(path: &Path, name: &str) -> Result<Vec<u8>, YaraError> {
    let read_err = |source| YaraError::ReadRuleFile {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = Vec::new();
    file.take(MAX_RULE_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(YaraError::RuleFileTooLarge {
            file: name.to_owned(),
            limit: MAX_RULE_FILE_BYTES,
        });
    }
    Ok(text)
}

/// The namespace for a rule file: its name without `.yar`/`.yara`.
fn namespace_of(name: &str) -> &str {
    name.strip_suffix(".yara")
        .or_else(|| name.strip_suffix(".yar"))
        .unwrap_or(name)
}

fn compile(sources: &[(String, Vec<u8>)], source_name: &str) -> Result<Rules, YaraError> {
    if sources.is_empty() {
        return Err(YaraError::NoRuleFiles {
            source_name: source_name.to_owned(),
        });
    }
    let mut compiler = yara_x::Compiler::new();
    compiler.enable_includes(false);
    let mut namespaces: Vec<String> = Vec::new();
    let mut owners: BTreeMap<&str, &str> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (name, text) in sources {
        let namespace = namespace_of(name);
        if let Some(first) = owners.insert(namespace, name) {
            return Err(YaraError::DuplicateNamespace {
                namespace: namespace.to_owned(),
                first: first.to_owned(),
                second: name.clone(),
            });
        }
        compiler.new_namespace(namespace);
        let warnings_before = compiler.warnings().len();
        let source = yara_x::SourceCode::from(text.as_slice()).with_origin(name.as_str());
        if let Err(err) = compiler.add_source(source)
            && errors.len() < MAX_REPORTED_ERRORS
        {
            let label = err.labels().next();
            errors.push(RuleDiagnostic {
                file: name.clone(),
                line: label
                    .as_ref()
                    .map(|l| line_of(text, l.span().range().start)),
                message: message_of(err.title(), label.map(|l| l.text().to_owned())),
            });
        }
        for warning in &compiler.warnings()[warnings_before..] {
            let label = warning.labels().next();
            warnings.push(RuleDiagnostic {
                file: name.clone(),
                line: label
                    .as_ref()
                    .map(|l| line_of(text, l.span().range().start)),
                message: message_of(warning.title(), label.map(|l| l.text().to_owned())),
            });
        }
        namespaces.push(namespace.to_owned());
    }
    if !errors.is_empty() {
        return Err(YaraError::Compile { errors });
    }
    Ok(Rules {
        inner: compiler.build(),
        namespaces,
        warnings,
    })
}

/// `title: label` without repeating the title, on one line.
fn message_of(title: &str, label: Option<String>) -> String {
    match label {
        Some(label) if !label.is_empty() && label != title => format!("{title}: {label}"),
        _ => title.to_owned(),
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &[u8], offset: usize) -> usize {
    text[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Rules>();
    }

    #[test]
    fn namespace_is_the_stem() {
        assert_eq!(namespace_of("mirai.yar"), "mirai");
        assert_eq!(namespace_of("mirai.yara"), "mirai");
        assert_eq!(namespace_of("x.y.yar"), "x.y");
    }

    #[test]
    fn same_stem_twice_is_refused() {
        let err = Rules::compile_sources(&[
            ("a.yar", "rule a { condition: true }"),
            ("a.yara", "rule b { condition: true }"),
        ])
        .unwrap_err();
        assert!(matches!(err, YaraError::DuplicateNamespace { .. }), "{err}");
    }

    #[test]
    fn includes_are_refused() {
        let err = Rules::compile_sources(&[("inc.yar", "include \"/etc/passwd\"\n")]).unwrap_err();
        assert!(matches!(err, YaraError::Compile { .. }), "{err}");
    }

    #[test]
    fn empty_source_list_is_an_error() {
        assert!(matches!(
            Rules::compile_sources(&[]),
            Err(YaraError::NoRuleFiles { .. })
        ));
    }
}
