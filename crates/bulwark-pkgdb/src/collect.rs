//! [`Collector`]: accumulates packages and diagnostics for one parse,
//! enforcing [`MAX_PACKAGES`] and [`MAX_DIAGNOSTICS`], then sorts and
//! deduplicates the result.

use crate::model::{Diagnostic, MAX_DIAGNOSTICS, MAX_PACKAGES, Package, PackageSource};
use crate::text::{check_token, excerpt};

/// Whether the caller should keep parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Output accumulator for one parser run.
#[derive(Debug)]
pub(crate) struct Collector {
    source: PackageSource,
    packages: Vec<Package>,
    diagnostics: Vec<Diagnostic>,
    suppressed: usize,
    first_suppressed_line: usize,
}

impl Collector {
    pub(crate) fn new(source: PackageSource) -> Self {
        Self {
            source,
            packages: Vec::new(),
            diagnostics: Vec::new(),
            suppressed: 0,
            first_suppressed_line: 0,
        }
    }

    /// What this format calls one package entry.
    fn unit(&self) -> &'static str {
        match self.source {
            PackageSource::Apk => "record",
            PackageSource::Dpkg | PackageSource::Opkg => "stanza",
        }
    }

    /// Records a diagnostic unless [`MAX_DIAGNOSTICS`] were already recorded.
    /// The message is built lazily so suppressed diagnostics cost nothing.
    pub(crate) fn diag(&mut self, line: usize, message: impl FnOnce() -> String) {
        if self.diagnostics.len() < MAX_DIAGNOSTICS {
            self.diagnostics.push(Diagnostic {
                line,
                message: message(),
            });
        } else {
            if self.suppressed == 0 {
                self.first_suppressed_line = line;
            }
            self.suppressed += 1;
        }
    }

    /// Validates and records one installed package found in the stanza that
    /// starts at `line`. Invalid values produce a diagnostic instead.
    pub(crate) fn package(
        &mut self,
        line: usize,
        name: &str,
        version: &str,
        arch: Option<&str>,
    ) -> Flow {
        let checks = [
            ("name", Some(name)),
            ("version", Some(version)),
            ("architecture", arch),
        ];
        for (what, value) in checks {
            let Some(value) = value else { continue };
            if let Err(reason) = check_token(value) {
                let unit = self.unit();
                self.diag(line, || {
                    format!(
                        "package {what} \"{}\" {reason}; {} skipped",
                        excerpt(value),
                        unit
                    )
                });
                return Flow::Continue;
            }
        }
        if self.packages.len() >= MAX_PACKAGES {
            // Always reported, even past MAX_DIAGNOSTICS: truncation must be visible.
            self.diagnostics.push(Diagnostic {
                line,
                message: format!("package limit of {MAX_PACKAGES} reached; rest of input ignored"),
            });
            return Flow::Stop;
        }
        self.packages.push(Package {
            name: name.to_owned(),
            version: version.to_owned(),
            arch: arch.map(str::to_owned),
            source: self.source,
        });
        Flow::Continue
    }

    /// Sorts packages by (name, arch, version), removes exact duplicates and
    /// appends the "suppressed" diagnostic if needed.
    pub(crate) fn finish(mut self) -> (Vec<Package>, Vec<Diagnostic>) {
        self.packages.sort_unstable_by(|a, b| {
            (&a.name, &a.arch, &a.version, a.source).cmp(&(&b.name, &b.arch, &b.version, b.source))
        });
        self.packages.dedup();
        if self.suppressed > 0 {
            self.diagnostics.push(Diagnostic {
                line: self.first_suppressed_line,
                message: format!(
                    "{} further diagnostics suppressed (limit {MAX_DIAGNOSTICS}), the first at this line",
                    self.suppressed
                ),
            });
        }
        (self.packages, self.diagnostics)
    }
}
