//! House rules, checked by `cargo test -p xtask` (so CI needs nothing else).
//!
//! - every `.rs` file opens with a `//!` doc comment;
//! - no should-panic or ignored tests (assert the current behaviour
//!   and leave a FIXME instead);
//! - every crate has a layer ([`LAYERS`]) and depends only on its own
//!   layer or below ([`ALLOWED_EDGES`] names the exceptions);
//! - pure crates (layers 1 and 2) have no I/O dependencies, and their
//!   non-test source reads no files, starts no threads, reads no clock and
//!   draws no OS randomness ([`PURITY_EXCEPTIONS`] names the exceptions);
//! - every crate inherits the workspace lints;
//! - no second TLS crypto backend (`ring`, OpenSSL) in the build graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of ARCHITECTURE.md ("Layers"), lowest first: a crate may
/// depend on crates of its own layer or below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    /// Validated newtypes, enums and wire messages.
    Vocabulary,
    /// Pure logic: no network, async runtime or database.
    Domain,
    /// Stores, protocols and scanners over real I/O.
    Adapter,
    /// Application services between the adapters and the edges.
    Service,
    /// Processes and their entry points: each edge is deployed on its own,
    /// so one edge depending on another is an [`ALLOWED_EDGES`] decision.
    Edge,
    /// Outside the product: benchmarks, test fixtures, automation, fuzzing;
    /// may depend on anything, nothing in the product may depend on it.
    Tooling,
}

impl Layer {
    fn name(self) -> &'static str {
        match self {
            Layer::Vocabulary => "vocabulary",
            Layer::Domain => "pure domain",
            Layer::Adapter => "adapter",
            Layer::Service => "service",
            Layer::Edge => "edge",
            Layer::Tooling => "tooling",
        }
    }

    fn is_pure(self) -> bool {
        matches!(self, Layer::Vocabulary | Layer::Domain)
    }
}

/// Every package of the workspace and of `fuzz/`, by package name. A
/// package missing here is an error: a new crate needs a layer.
const LAYERS: &[(&str, Layer)] = &[
    ("bulwark-api", Layer::Vocabulary),
    ("bulwark-proto", Layer::Vocabulary),
    ("bulwark-sbom", Layer::Vocabulary),
    ("bulwark-pkgdb", Layer::Domain),
    ("bulwark-versions", Layer::Domain),
    ("bulwark-pki", Layer::Domain),
    ("bulwark-tlog", Layer::Domain),
    ("bulwark-audit", Layer::Domain),
    ("bulwark-tuf", Layer::Domain),
    ("bulwark-secrets", Layer::Domain),
    ("bulwark-gate", Layer::Domain),
    ("bulwark-osv", Layer::Domain),
    ("bulwark-extract", Layer::Domain),
    ("bulwark-pcap", Layer::Domain),
    ("bulwark-detect", Layer::Domain),
    ("bulwark-store", Layer::Adapter),
    ("bulwark-mqtt", Layer::Adapter),
    ("bulwark-yara", Layer::Adapter),
    ("bulwark-scan", Layer::Adapter),
    ("bulwark-client", Layer::Adapter),
    ("bulwark-services", Layer::Service),
    ("bulwark-server", Layer::Edge),
    ("bulwark-cli", Layer::Edge),
    ("bulwark-agent", Layer::Edge),
    ("bulwark-sim", Layer::Edge),
    ("bulwark-tuf-client", Layer::Edge),
    ("bulwark-bench", Layer::Tooling),
    ("bulwark-testpg", Layer::Tooling),
    ("xtask", Layer::Tooling),
    ("bulwark-fuzz", Layer::Tooling),
];

/// Internal `[dependencies]` edges the layer rule would refuse, each a
/// deliberate decision: `(from, to, why)`. An entry no longer needed is an
/// error, so the list only shrinks with the code.
const ALLOWED_EDGES: &[(&str, &str, &str)] = &[
    (
        "bulwark-cli",
        "bulwark-server",
        "`bulwark server` and `bulwark demo` run the server in process (the API types come \
         from `bulwark-api`)",
    ),
    (
        "bulwark-cli",
        "bulwark-agent",
        "`bulwark agent` is the agent's second entry point, and `bulwark demo` enrolls agents",
    ),
    (
        "bulwark-cli",
        "bulwark-sim",
        "`bulwark sim` and `bulwark demo` run the simulated fleet",
    ),
    (
        "bulwark-cli",
        "bulwark-tuf-client",
        "the `bulwark-tuf-client` binary (tuf-conformance CLIENT-CLI) is built with the CLI",
    ),
    (
        "bulwark-sim",
        "bulwark-agent",
        "the simulator runs the real agent library, N agents in one process",
    ),
];

/// What a pure crate's non-test source may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Fs,
    Thread,
    Clock,
    Random,
}

impl Rule {
    fn what(self) -> &'static str {
        match self {
            Rule::Fs => "file I/O",
            Rule::Thread => "threads",
            Rule::Clock => "the clock (take the time as an argument)",
            Rule::Random => "OS randomness (take a `RandomSource`)",
        }
    }
}

/// The paths a pure crate may not name, as whole tokens.
const IMPURE_PATHS: &[(&str, Rule)] = &[
    ("std::fs", Rule::Fs),
    ("std::thread", Rule::Thread),
    ("SystemTime::now", Rule::Clock),
    ("Instant::now", Rule::Clock),
    ("OffsetDateTime::now_utc", Rule::Clock),
    ("rand::", Rule::Random),
    ("OsRng", Rule::Random),
    ("getrandom", Rule::Random),
];

/// What pure crates do today that [`IMPURE_PATHS`] forbids, per file
/// (`src/`-relative): `(crate, file, rule, why)`. ARCHITECTURE.md
/// ("Layers"): layer 2 means no network, async or database, not no I/O.
/// An entry no longer needed is an error.
const PURITY_EXCEPTIONS: &[(&str, &str, Rule, &str)] = &[
    (
        "bulwark-osv",
        "db.rs",
        Rule::Fs,
        "`AdvisoryDb::save`/`load` write and read the JSON-lines database",
    ),
    (
        "bulwark-osv",
        "import.rs",
        Rule::Fs,
        "`import_path` reads advisory archives and directories",
    ),
    (
        "bulwark-extract",
        "extract.rs",
        Rule::Fs,
        "`extract(path)` opens the artifact or OCI layout on disk",
    ),
    (
        "bulwark-extract",
        "oci.rs",
        Rule::Fs,
        "an OCI layout directory's blobs are files",
    ),
    (
        "bulwark-detect",
        "shard.rs",
        Rule::Thread,
        "`ShardedEngine` spreads devices over worker threads",
    ),
    (
        "bulwark-detect",
        "fleet.rs",
        Rule::Thread,
        "`FleetEngine` (the server's) runs on worker threads",
    ),
    (
        "bulwark-pki",
        "random.rs",
        Rule::Random,
        "`SystemRandom`, the real `RandomSource`: the one place pki reads the OS RNG",
    ),
    (
        "bulwark-tuf",
        "keys.rs",
        Rule::Random,
        "key generation and ECDSA signing draw aws-lc-rs's `SystemRandom`",
    ),
];

/// Dependencies a pure crate may not have.
const IO_DEPS: &[&str] = &[
    "tokio",
    "sqlx",
    "reqwest",
    "hyper",
    "hyper-util",
    "axum",
    "tower",
    "tower-http",
    "rustls",
    "tokio-rustls",
];

/// Packages that must never enter the build.
const BANNED_PACKAGES: &[&str] = &["ring", "openssl-sys", "native-tls"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() {
            if name != "target" && name != ".git" && name != "corpus" && name != "artifacts" {
                rust_files(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The dependencies a manifest's `[dependencies]` tables name (also
/// `[dependencies.NAME]` and `[target.….dependencies]`; not dev- or
/// build-dependencies), by package name (`package = "…"` when renamed).
fn dependencies_section(toml: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut deps = Vec::new();
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            let header = t.trim_start_matches('[').trim_end_matches(']');
            in_deps = header == "dependencies"
                || (header.starts_with("target.") && header.ends_with(".dependencies"));
            if let Some(name) = header.strip_prefix("dependencies.") {
                deps.push(name.trim_matches('"').to_owned());
            }
            continue;
        }
        if in_deps
            && let Some(name) = t
                .split(['=', '.', ' '])
                .next()
                .filter(|n| !n.is_empty() && !n.starts_with('#'))
        {
            let renamed = t
                .split_once("package")
                .and_then(|(_, rest)| rest.trim_start().strip_prefix('='))
                .and_then(|rest| rest.trim_start().strip_prefix('"'))
                .and_then(|rest| rest.split('"').next());
            deps.push(renamed.unwrap_or(name).to_owned());
        }
    }
    deps
}

/// The `name` of a manifest's `[package]`.
fn package_name(toml: &str) -> Option<String> {
    let mut in_package = false;
    for line in toml.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_package = t == "[package]";
        } else if in_package
            && let Some((key, value)) = t.split_once('=')
            && key.trim() == "name"
        {
            return Some(value.trim().trim_matches('"').to_owned());
        }
    }
    None
}

fn layer_of(package: &str) -> Option<Layer> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == package)
        .map(|&(_, layer)| layer)
}

/// The layer rule over `(manifest path, package, its [dependencies])`:
/// every package has a layer, and an internal dependency is on the same
/// layer or a lower one, except tooling (anything) and [`ALLOWED_EDGES`];
/// one edge depending on another needs an allowed edge too.
fn layer_problems(manifests: &[(String, String, Vec<String>)]) -> Vec<String> {
    let mut problems = Vec::new();
    let packages: BTreeSet<&str> = manifests.iter().map(|(_, p, _)| p.as_str()).collect();
    for (name, _) in LAYERS {
        if !packages.contains(name) {
            problems.push(format!(
                "xtask/src/tidy.rs: LAYERS names {name}, which is not a package any more"
            ));
        }
    }
    let mut used = BTreeSet::new();
    for (manifest, package, deps) in manifests {
        let Some(from) = layer_of(package) else {
            problems.push(format!(
                "{manifest}: {package} has no layer; add it to LAYERS in xtask/src/tidy.rs \
                 (ARCHITECTURE.md, \"Layers\")"
            ));
            continue;
        };
        for dep in deps {
            // External, or a package without a layer (reported above).
            let Some(to) = layer_of(dep) else {
                continue;
            };
            let refused = from != Layer::Tooling && (to > from || to == Layer::Edge);
            if !refused {
                continue;
            }
            if ALLOWED_EDGES
                .iter()
                .any(|&(f, t, _)| f == package && t == dep)
            {
                used.insert((package.as_str(), dep.as_str()));
                continue;
            }
            let why = if to > from {
                "a higher layer"
            } else {
                "another edge"
            };
            problems.push(format!(
                "{manifest}: {package} ({}) depends on {dep} ({}), {why}; move the code down a \
                 layer, or add the edge to ALLOWED_EDGES in xtask/src/tidy.rs with its reason",
                from.name(),
                to.name()
            ));
        }
    }
    for (f, t, _) in ALLOWED_EDGES {
        if packages.contains(f) && !used.contains(&(*f, *t)) {
            problems.push(format!(
                "xtask/src/tidy.rs: ALLOWED_EDGES has {f} -> {t}, which the layers allow \
                 or which is gone; remove it"
            ));
        }
    }
    problems
}

/// `src` with comments and the contents of string and character literals
/// blanked to spaces; newlines are kept, so line numbers still hold.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut i = 0;
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (!prev_ident || (matches!(c[i - 1], 'b' | 'c') && (i == 1 || !ident(c[i - 2]))))
            && matches!(c.get(i + 1), Some('"' | '#'))
        {
            // A raw string r"…", r#"…"#, br"…" (or the identifier r#…).
            let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
            if c.get(i + 1 + hashes) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            for _ in 0..hashes + 2 {
                out.push(c[i]);
                i += 1;
            }
            while i < c.len() {
                if c[i] == '"'
                    && c[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&ch| ch == '#')
                        .count()
                        == hashes
                {
                    for _ in 0..hashes + 1 {
                        out.push(c[i]);
                        i += 1;
                    }
                    break;
                }
                out.push(blank(c[i]));
                i += 1;
            }
        } else if c[i] == '"' {
            out.push('"');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' && i + 1 < c.len() {
                    out.push(' ');
                    i += 1;
                }
                out.push(blank(c[i]));
                i += 1;
            }
            if i < c.len() {
                out.push('"');
                i += 1;
            }
        } else if c[i] == '\'' && (!prev_ident || (c[i - 1] == 'b' && (i == 1 || !ident(c[i - 2]))))
        {
            // A character literal ('x', '\n', '\u{…}'), or a lifetime.
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 3..c.len().min(i + 12)).find(|&j| c[j] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.push('\'');
                    out.extend(std::iter::repeat_n(' ', end - i - 1));
                    out.push('\'');
                    i = end + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

/// `code` (from [`code_only`]) with every `#[cfg(test)]` item blanked,
/// and the names of out-of-line test modules (`#[cfg(test)] mod x;`).
fn without_test_items(code: &str) -> (String, Vec<String>) {
    const ATTR: &str = "#[cfg(test)]";
    let mut out: Vec<char> = code.chars().collect();
    let text: String = out.iter().collect();
    let mut modules = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(ATTR).map(|p| p + from) {
        // The item the attribute is on ends at its first `;` outside
        // braces, or where its braces close.
        let start = text[..at].chars().count();
        let mut depth = 0usize;
        let mut end = out.len();
        for (j, &ch) in out.iter().enumerate().skip(start + ATTR.len()) {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                ';' if depth == 0 => {
                    end = j + 1;
                    break;
                }
                _ => {}
            }
        }
        let item: String = out[start + ATTR.len()..end].iter().collect();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let [.., "mod", name] = words.as_slice()
            && let Some(name) = name.strip_suffix(';')
        {
            modules.push(name.to_owned());
        }
        for ch in &mut out[start..end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        from = text
            .char_indices()
            .nth(end)
            .map_or(text.len(), |(byte, _)| byte);
    }
    (out.into_iter().collect(), modules)
}

/// Whether `needle` occurs in `hay` at `at` as whole tokens.
fn token_at(hay: &str, at: usize, needle: &str) -> bool {
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let before = hay[..at].chars().next_back().is_none_or(|ch| !ident(ch));
    let after = needle.ends_with(':')
        || hay[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|ch| !ident(ch));
    before && after
}

/// What a pure crate's file does that [`IMPURE_PATHS`] forbids, as
/// `(line, the path, rule)`, outside comments, literals and test items;
/// a grouped `use std::{fs, thread, …}` counts. Also the out-of-line test
/// modules the file declares.
fn impurities(src: &str) -> (Vec<(usize, String, Rule)>, Vec<String>) {
    let (code, test_modules) = without_test_items(&code_only(src));
    let mut found = Vec::new();
    for (i, line) in code.lines().enumerate() {
        for &(path, rule) in IMPURE_PATHS {
            if line
                .match_indices(path)
                .any(|(at, _)| token_at(line, at, path))
            {
                found.push((i + 1, path.to_owned(), rule));
            }
        }
    }
    // `use std::{fs::File, thread}` names neither path in one piece.
    let mut from = 0;
    while let Some(at) = code[from..].find("use ").map(|p| p + from) {
        if !token_at(&code, at, "use") {
            from = at + 4;
            continue;
        }
        let end = code[at..].find(';').map_or(code.len(), |p| p + at);
        from = end;
        let stmt = &code[at + 4..end];
        let Some(group) = stmt
            .trim_start()
            .trim_start_matches("::")
            .strip_prefix("std::{")
        else {
            continue;
        };
        let line = code[..at].matches('\n').count() + 1;
        for (name, rule) in [("fs", Rule::Fs), ("thread", Rule::Thread)] {
            if group
                .match_indices(name)
                .any(|(p, _)| token_at(group, p, name))
            {
                found.push((line, format!("std::{{{name}}}"), rule));
            }
        }
    }
    found.sort_by_key(|(line, _, _)| *line);
    (found, test_modules)
}

/// The purity rule over a pure crate's `src/`.
fn purity_problems(root: &Path, package: &str, crate_dir: &Path) -> Vec<String> {
    let src = crate_dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut texts = BTreeMap::new();
    let mut test_dirs = Vec::new();
    let mut problems = Vec::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue; // reported as not UTF-8
        };
        let (found, test_modules) = impurities(&text);
        // `#[cfg(test)] mod x;` in a/b.rs is a/b/x.rs (in lib.rs, main.rs
        // or mod.rs: a/x.rs), or a directory module.
        let stem = f.file_stem().unwrap_or_default();
        let dir = f.parent().unwrap_or(&src);
        let dir = if ["lib", "main", "mod"].iter().any(|s| stem == *s) {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        };
        for m in test_modules {
            test_dirs.push(dir.join(format!("{m}.rs")));
            test_dirs.push(dir.join(m));
        }
        texts.insert(f.clone(), found);
    }
    let mut used = BTreeSet::new();
    for (f, found) in texts {
        if test_dirs.iter().any(|t| f.starts_with(t)) {
            continue;
        }
        let in_src = f
            .strip_prefix(&src)
            .unwrap_or(&f)
            .to_string_lossy()
            .into_owned();
        let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
        for (line, path, rule) in found {
            if let Some(e) = PURITY_EXCEPTIONS
                .iter()
                .position(|&(p, file, r, _)| p == package && file == in_src && r == rule)
            {
                used.insert(e);
                continue;
            }
            problems.push(format!(
                "{rel}:{line}: `{path}` in {package}, a pure crate: no {}; move it to an \
                 adapter or edge, or add a PURITY_EXCEPTIONS entry in xtask/src/tidy.rs with \
                 its reason",
                rule.what()
            ));
        }
    }
    for (e, (p, file, rule, _)) in PURITY_EXCEPTIONS.iter().enumerate() {
        if *p == package && !used.contains(&e) {
            problems.push(format!(
                "xtask/src/tidy.rs: PURITY_EXCEPTIONS excuses {p}'s src/{file} from \
                 {rule:?}, which it no longer does; remove the entry"
            ));
        }
    }
    problems
}

/// Runs every check; returns all problems.
pub(crate) fn check(root: &Path) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "fuzz"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let should_panic = ["#[should", "_panic"].concat();
    let ignore_attr = ["#[ig", "nore"].concat();
    for f in &files {
        let rel = f.strip_prefix(root).unwrap_or(f).display().to_string();
        let Ok(text) = std::fs::read_to_string(f) else {
            problems.push(format!("{rel}: not UTF-8"));
            continue;
        };
        if !text.starts_with("//!") {
            problems.push(format!("{rel}: must start with a `//!` doc comment"));
        }
        for (i, line) in text.lines().enumerate() {
            let t = line.trim_start();
            if t.starts_with(&should_panic) || t.starts_with(&ignore_attr) {
                problems.push(format!(
                    "{rel}:{}: no should_panic/ignore; assert the current behaviour with a FIXME",
                    i + 1
                ));
            }
        }
    }
    let Ok(crates) = std::fs::read_dir(root.join("crates")) else {
        return Err(vec!["crates/ is missing".into()]);
    };
    let mut crates: Vec<_> = crates.flatten().map(|c| c.path()).collect();
    crates.sort();
    let mut manifests = Vec::new();
    for dir in ["xtask", "fuzz"] {
        let manifest = format!("{dir}/Cargo.toml");
        match std::fs::read_to_string(root.join(&manifest)) {
            Ok(toml) => manifests.push((
                manifest,
                package_name(&toml).unwrap_or_else(|| dir.to_owned()),
                dependencies_section(&toml),
            )),
            Err(e) => problems.push(format!("{manifest}: {e}")),
        }
    }
    for c in crates {
        let name = c
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let Ok(toml) = std::fs::read_to_string(c.join("Cargo.toml")) else {
            continue;
        };
        let package = package_name(&toml).unwrap_or_else(|| name.clone());
        manifests.push((
            format!("crates/{name}/Cargo.toml"),
            package.clone(),
            dependencies_section(&toml),
        ));
        if !toml.contains("[lints]\nworkspace = true") {
            problems.push(format!(
                "crates/{name}/Cargo.toml: must have `[lints] workspace = true`"
            ));
        }
        // Each integration-test file is its own binary linking the whole
        // dependency tree; one per crate (`tests/it/main.rs`) keeps the
        // CI build inside its disk (session 3 ran out with eight per crate).
        let top_level_tests = std::fs::read_dir(c.join("tests"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
                    .count()
            })
            .unwrap_or(0);
        if top_level_tests > 1 {
            problems.push(format!(
                "crates/{name}/tests: {top_level_tests} test binaries; put them in one (tests/it/main.rs with modules)"
            ));
        }
        if layer_of(&package).is_some_and(Layer::is_pure) {
            for dep in dependencies_section(&toml) {
                if IO_DEPS.contains(&dep.as_str()) {
                    problems.push(format!("crates/{name}: pure crate depends on {dep}"));
                }
            }
            problems.extend(purity_problems(root, &package, &c));
        }
    }
    problems.extend(layer_problems(&manifests));
    // One rustls crypto backend: two linked together panic at the first
    // TLS connect (../shared/DEPENDENCIES.md). Cargo.lock also lists
    // optional dependencies that are never built, so ask cargo for the
    // real build graph on every target.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    match std::process::Command::new(cargo)
        .current_dir(root)
        .args([
            "tree",
            "--workspace",
            "--target",
            "all",
            "-e",
            "normal,build",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .output()
    {
        Ok(out) if out.status.success() => {
            let tree = String::from_utf8_lossy(&out.stdout);
            for banned in BANNED_PACKAGES {
                if tree.lines().any(|l| l.split(' ').next() == Some(banned)) {
                    problems.push(format!(
                        "dependency graph: {banned} is banned (aws-lc-rs and rustls only)"
                    ));
                }
            }
        }
        Ok(out) => problems.push(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => problems.push(format!("cannot run cargo tree: {e}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tidy() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap();
        if let Err(problems) = super::check(root) {
            panic!(
                "tidy found {} problem(s):\n{}",
                problems.len(),
                problems.join("\n")
            );
        }
    }

    #[test]
    fn dependency_scan_reads_only_the_dependencies_table() {
        let toml = "[package]\nname = \"x\"\n[dependencies]\ntokio.workspace = true\nserde = \"1\"\n[dev-dependencies]\nsqlx = \"1\"\n";
        assert_eq!(super::dependencies_section(toml), vec!["tokio", "serde"]);
    }

    #[test]
    fn dependency_scan_reads_renames_and_target_tables() {
        let toml = "[dependencies]\nstore = { package = \"bulwark-store\", path = \"x\" }\n\
                    [target.'cfg(unix)'.dependencies]\nbulwark-mqtt.workspace = true\n\
                    [dependencies.bulwark-yara]\nworkspace = true\n\
                    [build-dependencies]\nbulwark-scan.workspace = true\n";
        assert_eq!(
            super::dependencies_section(toml),
            vec!["bulwark-store", "bulwark-mqtt", "bulwark-yara"]
        );
    }

    fn manifest(package: &str, deps: &[&str]) -> (String, String, Vec<String>) {
        (
            format!("crates/{package}/Cargo.toml"),
            package.to_owned(),
            deps.iter().map(|d| (*d).to_owned()).collect(),
        )
    }

    /// Every package of [`super::LAYERS`] with no dependencies, plus
    /// the allowed edges (or they would be reported as stale).
    fn workspace(extra: &[(String, String, Vec<String>)]) -> Vec<(String, String, Vec<String>)> {
        let mut all: Vec<_> = super::LAYERS
            .iter()
            .map(|(name, _)| {
                let allowed: Vec<&str> = super::ALLOWED_EDGES
                    .iter()
                    .filter(|(from, _, _)| from == name)
                    .map(|&(_, to, _)| to)
                    .collect();
                manifest(name, &allowed)
            })
            .collect();
        all.extend_from_slice(extra);
        all
    }

    #[test]
    fn layers_allow_today_and_downward_edges() {
        let ok = workspace(&[
            manifest("bulwark-gate", &["serde", "bulwark-proto"]),
            manifest("bulwark-scan", &["bulwark-yara", "bulwark-osv"]),
            manifest("bulwark-server", &["bulwark-store", "bulwark-detect"]),
            manifest("bulwark-bench", &["bulwark-server", "bulwark-testpg"]),
        ]);
        assert_eq!(super::layer_problems(&ok), Vec::<String>::new());
    }

    #[test]
    fn layers_refuse_upward_and_edge_to_edge_dependencies() {
        let bad = workspace(&[
            manifest("bulwark-gate", &["bulwark-store"]),
            manifest("bulwark-store", &["bulwark-server"]),
            manifest("bulwark-agent", &["bulwark-server"]),
            manifest("bulwark-proto", &["bulwark-testpg"]),
        ]);
        let problems = super::layer_problems(&bad);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with(
            "crates/bulwark-gate/Cargo.toml: bulwark-gate (pure domain) depends on \
             bulwark-store (adapter), a higher layer"
        ));
        assert!(problems[1].contains("bulwark-store (adapter) depends on bulwark-server (edge)"));
        assert!(problems[2].contains("(edge) depends on bulwark-server (edge), another edge"));
        assert!(
            problems[3].contains("bulwark-proto (vocabulary) depends on bulwark-testpg (tooling)")
        );
    }

    #[test]
    fn layers_require_every_package_in_the_table() {
        let problems = super::layer_problems(&workspace(&[manifest("bulwark-new", &[])]));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("bulwark-new has no layer"));
        let mut gone = workspace(&[]);
        gone.retain(|(_, p, _)| p != "bulwark-sim");
        let problems = super::layer_problems(&gone);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("LAYERS names bulwark-sim"));
        // An allowed edge nothing takes any more is stale.
        let mut unused = workspace(&[]);
        unused.retain(|(_, p, _)| p != "bulwark-cli");
        unused.push(manifest("bulwark-cli", &["bulwark-server"]));
        let problems = super::layer_problems(&unused);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("ALLOWED_EDGES has bulwark-cli -> bulwark-agent"));
    }

    fn impure_lines(src: &str) -> Vec<(usize, String)> {
        super::impurities(src)
            .0
            .into_iter()
            .map(|(line, path, _)| (line, path))
            .collect()
    }

    #[test]
    fn purity_scan_finds_io_clock_threads_and_randomness() {
        let src = "//! x\n\
                   fn load() -> Vec<u8> { std::fs::read(\"a\").unwrap() }\n\
                   use std::{\n    collections::HashMap,\n    fs::{self, File},\n};\n\
                   fn at() { let _ = ::std::time::SystemTime::now(); let _ = time::OffsetDateTime::now_utc(); }\n\
                   fn k() { aws_lc_rs::rand::SystemRandom::new(); std::thread::spawn(|| ()); }\n";
        assert_eq!(
            impure_lines(src),
            vec![
                (2, "std::fs".to_owned()),
                (3, "std::{fs}".to_owned()),
                (7, "SystemTime::now".to_owned()),
                (7, "OffsetDateTime::now_utc".to_owned()),
                (8, "std::thread".to_owned()),
                (8, "rand::".to_owned()),
            ]
        );
    }

    #[test]
    fn purity_scan_skips_tests_comments_and_literals() {
        let src = "//! Reads no std::fs.\n\
                   /* std::thread::spawn /* nested */ std::fs */\n\
                   const S: &str = \"std::fs::read\";\n\
                   const R: &str = r#\"SystemTime::now \"quoted\" }\"#;\n\
                   const C: char = '}';\n\
                   fn f<'a>(x: &'a str) -> &'a str { x }\n\
                   fn operand_rand() { my_std::fs::x(); randomly(); }\n\
                   #[cfg(test)]\nmod tests {\n    #[test]\n    fn t() { let _ = std::fs::read(\"x\"); if true { std::thread::yield_now() } }\n}\n\
                   #[cfg(test)]\nmod more;\n\
                   fn after_tests() { let _ = std::time::Instant::now(); }\n";
        let (found, test_modules) = super::impurities(src);
        let found: Vec<_> = found.into_iter().map(|(l, p, _)| (l, p)).collect();
        assert_eq!(found, vec![(15, "Instant::now".to_owned())]);
        assert_eq!(test_modules, vec!["more"]);
    }

    #[test]
    fn purity_scan_of_a_crate_excuses_only_listed_files_and_test_modules() {
        let dir = std::env::temp_dir().join(format!("tidy-purity-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("helpers")).unwrap();
        let write = |name: &str, text: &str| std::fs::write(src.join(name), text).unwrap();
        write(
            "lib.rs",
            "//! x\n#[cfg(test)]\nmod helpers;\npub mod keys;\n",
        );
        write(
            "helpers/mod.rs",
            "//! x\npub fn f() { std::fs::read(\"a\").unwrap(); }\n",
        );
        write("keys.rs", "//! x\nuse aws_lc_rs::rand::SystemRandom;\n");
        assert_eq!(
            super::purity_problems(&dir, "bulwark-tuf", &dir),
            Vec::<String>::new()
        );
        write("keys.rs", "//! x\n");
        write(
            "sign.rs",
            "//! x\nfn f() { std::fs::write(\"k\", b\"\").unwrap(); }\n",
        );
        let problems = super::purity_problems(&dir, "bulwark-tuf", &dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems[0]
                .starts_with("src/sign.rs:2: `std::fs` in bulwark-tuf, a pure crate: no file I/O")
        );
        assert!(problems[1].contains("excuses bulwark-tuf's src/keys.rs from Random"));
    }
}
