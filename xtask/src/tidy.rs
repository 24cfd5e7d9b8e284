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
//! - the modules of the crates in [`ACYCLIC_MODULES`] import one another
//!   in no cycle;
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

/// Crates whose modules import one another in no cycle (issue 18), so
/// that each module can be read, moved or split knowing only what is
/// below it. A module is a file under `src/` (`a/b.rs` and `a/b/mod.rs`
/// are `a::b`; `src/bin/` is left out); `a` imports `b` when its non-test
/// code names `crate::b…` (in a `use crate::{…}` group too) or reaches
/// `b` by `super::`, a path naming the longest module it starts with. A
/// module and one holding it (`a` and `a::b`, the crate root and anything)
/// may name each other: a parent declares and dispatches to its children,
/// and a child may lean on its parent.
const ACYCLIC_MODULES: &[&str] = &["bulwark-cli", "bulwark-server", "bulwark-services"];

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
/// `(line, the path, rule)`; `code` is the file's from [`code_only`] with
/// test items blanked ([`non_test_sources`]). A grouped
/// `use std::{fs, thread, …}` counts.
fn impurities(code: &str) -> Vec<(usize, String, Rule)> {
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
        if !token_at(code, at, "use") {
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
    found
}

/// The non-test `.rs` files under `src` with their code: comments and
/// literals blanked ([`code_only`]), and `#[cfg(test)]` items too. A file
/// an out-of-line `#[cfg(test)] mod x;` declares is left out, and so is
/// everything under its directory.
fn non_test_sources(src: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut sources = Vec::new();
    let mut test_dirs = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue; // reported as not UTF-8
        };
        let (code, test_modules) = without_test_items(&code_only(&text));
        // `#[cfg(test)] mod x;` in a/b.rs is a/b/x.rs (in lib.rs, main.rs
        // or mod.rs: a/x.rs), or a directory module.
        let stem = f.file_stem().unwrap_or_default();
        let dir = f.parent().unwrap_or(src);
        let dir = if ["lib", "main", "mod"].iter().any(|s| stem == *s) {
            dir.to_path_buf()
        } else {
            dir.join(stem)
        };
        for m in test_modules {
            test_dirs.push(dir.join(format!("{m}.rs")));
            test_dirs.push(dir.join(m));
        }
        sources.push((f, code));
    }
    sources.retain(|(f, _)| !test_dirs.iter().any(|t| f.starts_with(t)));
    sources
}

/// The purity rule over a pure crate's `src/`.
fn purity_problems(root: &Path, package: &str, crate_dir: &Path) -> Vec<String> {
    let src = crate_dir.join("src");
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    for (f, code) in non_test_sources(&src) {
        let found = impurities(&code);
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

/// The module a file under `src/` is, by its `src/`-relative path:
/// `a/b.rs` and `a/b/mod.rs` are `a::b`; `lib.rs` and `main.rs` are the
/// crate root, `""`.
fn module_of(in_src: &Path) -> String {
    let mut parts: Vec<String> = in_src
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod")
        || (parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main"))
    {
        parts.pop();
    }
    parts.join("::")
}

/// A module's name in messages (the root is `crate`).
fn module_name(module: &str) -> &str {
    if module.is_empty() { "crate" } else { module }
}

/// Whether `a` is `b`, or one holds the other: `super::` and `self::`
/// between them, and a parent reaching into its child, are not imports
/// that [`ACYCLIC_MODULES`] counts.
fn nested(a: &str, b: &str) -> bool {
    let under = |inner: &str, outer: &str| {
        outer.is_empty()
            || inner == outer
            || inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with("::"))
    };
    under(a, b) || under(b, a)
}

/// The paths of a use tree (or a plain path) starting at `c[*i]`, each
/// appended to `prefix`: `a::{b, c::d, self}` is `a::b`, `a::c::d`, `a`.
/// A path ends where no `::` and a name, group or glob follows it (a
/// turbofish, a call, `as`).
fn use_paths(c: &[char], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let skip_ws = |i: &mut usize| {
        while c.get(*i).is_some_and(|ch| ch.is_whitespace()) {
            *i += 1;
        }
    };
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let mut prefix = prefix;
    loop {
        skip_ws(i);
        if c.get(*i) == Some(&'{') {
            *i += 1;
            loop {
                skip_ws(i);
                match c.get(*i) {
                    None => return,
                    Some('}') => {
                        *i += 1;
                        return;
                    }
                    Some(',') => *i += 1,
                    Some(_) => {
                        let before = *i;
                        use_paths(c, i, prefix.clone(), out);
                        // `as x` or anything unexpected: skip to the next
                        // item of the group.
                        skip_ws(i);
                        while c
                            .get(*i)
                            .is_some_and(|&ch| ch != ',' && ch != '}' && ch != '{')
                        {
                            *i += 1;
                        }
                        if *i == before {
                            *i += 1;
                        }
                    }
                }
            }
        }
        if c.get(*i) == Some(&'r') && c.get(*i + 1) == Some(&'#') {
            *i += 2;
        }
        let start = *i;
        while c.get(*i).is_some_and(|&ch| ident(ch)) {
            *i += 1;
        }
        let name: String = c[start..*i].iter().collect();
        if name.is_empty() || name == "self" {
            // A glob, or `self` in a group: the prefix itself.
            if c.get(*i) == Some(&'*') {
                *i += 1;
            }
            out.push(prefix);
            return;
        }
        prefix.push(name);
        let mut j = *i;
        skip_ws(&mut j);
        if c.get(j) == Some(&':') && c.get(j + 1) == Some(&':') {
            let mut k = j + 2;
            skip_ws(&mut k);
            if c.get(k)
                .is_some_and(|&ch| ident(ch) || ch == '{' || ch == '*')
            {
                *i = k;
                continue;
            }
        }
        out.push(prefix);
        return;
    }
}

/// The paths of other modules a file's `code` (from [`non_test_sources`])
/// names, as `(line, absolute path)`: `crate::a::b` and `use crate::{a,
/// b::c}` from anywhere, `super::x` resolved from `module` (the file's).
/// `super::` inside an inline `mod m { … }` first climbs out of `m`;
/// one that stays in the file is left out, and so are `self::`,
/// `$crate::` and `pub(in crate::…)`.
fn module_mentions(code: &str, module: &str) -> Vec<(usize, Vec<String>)> {
    let c: Vec<char> = code.chars().collect();
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    let here: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(str::to_owned).collect()
    };
    let word_at = |i: usize, w: &str| {
        w.chars()
            .enumerate()
            .all(|(k, ch)| c.get(i + k) == Some(&ch))
            && (i == 0 || !(ident(c[i - 1]) || c[i - 1] == '$'))
            && !c.get(i + w.len()).is_some_and(|&ch| ident(ch))
    };
    // `::` after `at`, whitespace allowed: the index after it.
    let colons_after = |at: usize| {
        let mut j = at;
        while c.get(j).is_some_and(|ch| ch.is_whitespace()) {
            j += 1;
        }
        (c.get(j) == Some(&':') && c.get(j + 1) == Some(&':')).then_some(j + 2)
    };
    // The previous word or `::` before `at`, whitespace skipped.
    let before = |at: usize| {
        let mut j = at;
        while j > 0 && c[j - 1].is_whitespace() {
            j -= 1;
        }
        let end = j;
        if j >= 2 && c[j - 1] == ':' && c[j - 2] == ':' {
            return "::".to_owned();
        }
        while j > 0 && ident(c[j - 1]) {
            j -= 1;
        }
        c[j..end].iter().collect::<String>()
    };
    let mut found = Vec::new();
    let mut line = 1;
    let mut depth = 0usize;
    // Brace depths at which the inline modules around `i` opened.
    let mut inline: Vec<usize> = Vec::new();
    let mut mod_opens = false;
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\n' => line += 1,
            '{' => {
                depth += 1;
                if mod_opens {
                    inline.push(depth);
                    mod_opens = false;
                }
            }
            '}' => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            ';' => mod_opens = false,
            _ => {}
        }
        if word_at(i, "mod") {
            // `mod name {`: the next brace opens an inline module.
            let mut j = i + 3;
            while c.get(j).is_some_and(|ch| ch.is_whitespace()) {
                j += 1;
            }
            let name_start = j;
            while c.get(j).is_some_and(|&ch| ident(ch)) {
                j += 1;
            }
            while c.get(j).is_some_and(|ch| ch.is_whitespace()) {
                j += 1;
            }
            mod_opens = j > name_start && c.get(j) == Some(&'{');
        }
        let at_line = line;
        if word_at(i, "crate")
            && before(i) != "::"
            && before(i) != "in"
            && let Some(next) = colons_after(i + 5)
        {
            let mut j = next;
            let mut paths = Vec::new();
            use_paths(&c, &mut j, Vec::new(), &mut paths);
            found.extend(paths.into_iter().map(|p| (at_line, p)));
        } else if word_at(i, "super")
            && before(i) != "::"
            && before(i) != "in"
            && let Some(mut next) = colons_after(i + 5)
        {
            let mut supers = 1;
            loop {
                let mut j = next;
                while c.get(j).is_some_and(|ch| ch.is_whitespace()) {
                    j += 1;
                }
                match (word_at(j, "super"), colons_after(j + 5)) {
                    (true, Some(after)) => {
                        supers += 1;
                        next = after;
                    }
                    _ => break,
                }
            }
            // Out of the inline modules first; what stays in this file is
            // this module.
            if supers > inline.len() && supers - inline.len() <= here.len() {
                let base = here[..here.len() - (supers - inline.len())].to_vec();
                let mut j = next;
                let mut paths = Vec::new();
                use_paths(&c, &mut j, base, &mut paths);
                found.extend(paths.into_iter().map(|p| (at_line, p)));
            }
        }
        i += 1;
    }
    found
}

/// The import graph of a crate's modules, from `(module, file, code)` per
/// file: an edge `a → b` where `a`'s code names `crate::b…` or reaches `b`
/// by `super::`, a path naming the longest module it starts with; never
/// between a module and one holding it ([`nested`]). With the file and
/// line of the first mention of each edge.
fn module_graph(files: &[(String, String, String)]) -> BTreeMap<(String, String), (String, usize)> {
    let modules: BTreeSet<&str> = files.iter().map(|(m, _, _)| m.as_str()).collect();
    let mut edges = BTreeMap::new();
    for (from, file, code) in files {
        for (line, path) in module_mentions(code, from) {
            let to = (1..=path.len())
                .rev()
                .map(|k| path[..k].join("::"))
                .find(|m| modules.contains(m.as_str()))
                .unwrap_or_default();
            if !nested(from, &to) {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| (file.clone(), line));
            }
        }
    }
    edges
}

/// The strongly connected components of a graph of `n` nodes (Tarjan),
/// each sorted; a component of more than one node is a cycle.
fn strongly_connected(n: usize, next: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct Walk<'a> {
        next: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        count: usize,
        components: Vec<Vec<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.count);
            self.low[v] = self.count;
            self.count += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.next[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                self.components.push(component);
            }
        }
    }
    let mut walk = Walk {
        next,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        count: 0,
        components: Vec::new(),
    };
    for v in 0..n {
        if walk.index[v].is_none() {
            walk.visit(v);
        }
    }
    walk.components
}

/// The import cycles of a crate, from `(module, file, code)` per file:
/// for each strongly connected component of [`module_graph`] with more
/// than one module, its modules and a shortest cycle through the first of
/// them, each edge with the file and line that makes it.
fn module_cycles(files: &[(String, String, String)]) -> Vec<(Vec<String>, Vec<String>)> {
    let edges = module_graph(files);
    let names: Vec<&str> = files
        .iter()
        .map(|(m, _, _)| m.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let id = |m: &str| names.binary_search(&m).ok();
    let mut next = vec![Vec::new(); names.len()];
    for (from, to) in edges.keys() {
        if let (Some(f), Some(t)) = (id(from), id(to)) {
            next[f].push(t);
        }
    }
    let mut cycles = Vec::new();
    for component in strongly_connected(names.len(), &next) {
        if component.len() < 2 {
            continue;
        }
        // Breadth first from the first module back to it, inside the
        // component: the shortest cycle through it.
        let start = component[0];
        let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        // Every module of the component reaches `start`, so this is found.
        let mut last = start;
        'search: while let Some(v) = queue.pop_front() {
            for &w in &next[v] {
                if component.binary_search(&w).is_err() {
                    continue;
                }
                if w == start {
                    last = v;
                    break 'search;
                }
                if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(w) {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
        let mut path = vec![start];
        let mut at = last;
        while at != start {
            path.push(at);
            at = came_from[&at];
        }
        path[1..].reverse();
        path.push(start);
        let steps = path
            .windows(2)
            .map(|pair| {
                let (from, to) = (names[pair[0]], names[pair[1]]);
                let (file, line) = &edges[&(from.to_owned(), to.to_owned())];
                format!("{file}:{line}: {} → {}", module_name(from), module_name(to))
            })
            .collect();
        let members = component
            .iter()
            .map(|&m| module_name(names[m]).to_owned())
            .collect();
        cycles.push((members, steps));
    }
    cycles
}

/// The acyclic-imports rule over a crate's `src/` ([`ACYCLIC_MODULES`]);
/// `src/bin/` holds other crates and is left out.
fn module_cycle_problems(root: &Path, package: &str, crate_dir: &Path) -> Vec<String> {
    let src = crate_dir.join("src");
    let files: Vec<(String, String, String)> = non_test_sources(&src)
        .into_iter()
        .filter_map(|(f, code)| {
            let in_src = f.strip_prefix(&src).ok()?;
            if in_src.starts_with("bin") {
                return None;
            }
            let rel = f.strip_prefix(root).unwrap_or(&f).display().to_string();
            Some((module_of(in_src), rel, code))
        })
        .collect();
    module_cycles(&files)
        .into_iter()
        .map(|(members, steps)| {
            format!(
                "{package}: modules {} import one another in a cycle; move what they share \
                 into a module below them (ACYCLIC_MODULES in xtask/src/tidy.rs). One way \
                 round:\n    {}",
                members.join(", "),
                steps.join("\n    ")
            )
        })
        .collect()
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
        if ACYCLIC_MODULES.contains(&package.as_str()) {
            problems.extend(module_cycle_problems(root, &package, &c));
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
    for name in ACYCLIC_MODULES {
        if !manifests.iter().any(|(_, package, _)| package == name) {
            problems.push(format!(
                "xtask/src/tidy.rs: ACYCLIC_MODULES names {name}, which is not a package"
            ));
        }
    }
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

    /// `src`'s code as the scans see it (comments, literals and test
    /// items blanked), and its out-of-line test modules.
    fn scanned(src: &str) -> (String, Vec<String>) {
        super::without_test_items(&super::code_only(src))
    }

    fn impure_lines(src: &str) -> Vec<(usize, String)> {
        super::impurities(&scanned(src).0)
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
        let (code, test_modules) = scanned(src);
        let found: Vec<_> = super::impurities(&code)
            .into_iter()
            .map(|(l, p, _)| (l, p))
            .collect();
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

    #[test]
    fn modules_are_files_under_src() {
        let m = |p: &str| super::module_of(std::path::Path::new(p));
        assert_eq!(m("main.rs"), "");
        assert_eq!(m("lib.rs"), "");
        assert_eq!(m("release.rs"), "release");
        assert_eq!(m("foo/mod.rs"), "foo");
        assert_eq!(m("foo/bar.rs"), "foo::bar");
        assert_eq!(m("foo/lib.rs"), "foo::lib");
    }

    #[test]
    fn strongly_connected_components_of_a_small_graph() {
        // 0 → 1 → 2 → 0 is a cycle, 3 → 4 ⇄ 5 another, 3 and 6 stand alone.
        let next = vec![
            vec![1],
            vec![2],
            vec![0, 3],
            vec![4],
            vec![5],
            vec![4],
            vec![],
        ];
        let mut components = super::strongly_connected(next.len(), &next);
        components.sort();
        assert_eq!(
            components,
            vec![vec![0, 1, 2], vec![3], vec![4, 5], vec![6]]
        );
        // A chain has none.
        let chain = vec![vec![1], vec![2], vec![]];
        assert!(
            super::strongly_connected(3, &chain)
                .iter()
                .all(|c| c.len() == 1)
        );
    }

    /// `(src-relative path, source)` per file, as [`super::module_cycles`]
    /// takes them.
    fn crate_files(files: &[(&str, &str)]) -> Vec<(String, String, String)> {
        files
            .iter()
            .map(|(path, src)| {
                (
                    super::module_of(std::path::Path::new(path)),
                    format!("src/{path}"),
                    scanned(src).0,
                )
            })
            .collect()
    }

    #[test]
    fn use_groups_name_each_of_their_paths() {
        let code = scanned(
            "//! x\nuse crate::{a, b::{c, d as e}, f::*};\nuse crate::g::{self, H};\n\
             fn f() { crate::h::run::<u8>(); let _ = crate :: i :: J; }\n",
        )
        .0;
        let paths: Vec<(usize, String)> = super::module_mentions(&code, "x")
            .into_iter()
            .map(|(line, p)| (line, p.join("::")))
            .collect();
        let expected = [
            (2, "a"),
            (2, "b::c"),
            (2, "b::d"),
            (2, "f"),
            (3, "g"),
            (3, "g::H"),
            (4, "h::run"),
            (4, "i::J"),
        ];
        let expected: Vec<(usize, String)> =
            expected.iter().map(|&(l, p)| (l, p.to_owned())).collect();
        assert_eq!(paths, expected);
    }

    #[test]
    fn mentions_skip_comments_strings_tests_and_non_imports() {
        let code = scanned(
            "//! Uses crate::a.\n\
             // crate::b\n\
             const S: &str = \"crate::c\";\n\
             pub(crate) fn f() {}\n\
             pub(in crate::d) fn g() {}\n\
             macro_rules! m { () => { $crate::e::f() } }\n\
             #[cfg(test)]\nmod tests {\n    use crate::h;\n}\n\
             fn k() { other::crate_like::x(); crate::real::y(); }\n",
        )
        .0;
        let paths: Vec<_> = super::module_mentions(&code, "x")
            .into_iter()
            .map(|(line, p)| (line, p.join("::")))
            .collect();
        assert_eq!(paths, vec![(11, "real::y".to_owned())]);
    }

    #[test]
    fn super_resolves_from_the_file_and_out_of_inline_modules() {
        let code = scanned(
            "//! x\nuse super::sibling::T;\nuse super::super::top;\n\
             pub mod inner {\n    use super::Own;\n    use super::super::{cousin, other::U};\n}\n\
             fn f() { super::parent_item(); }\n",
        )
        .0;
        let paths: Vec<_> = super::module_mentions(&code, "a::b")
            .into_iter()
            .map(|(line, p)| (line, p.join("::")))
            .collect();
        let expected = [
            (2, "a::sibling::T"),
            (3, "top"),
            (6, "a::cousin"),
            (6, "a::other::U"),
            (8, "a::parent_item"),
        ];
        let expected: Vec<_> = expected.iter().map(|&(l, p)| (l, p.to_owned())).collect();
        assert_eq!(paths, expected);
    }

    #[test]
    fn a_dag_of_modules_has_no_cycle() {
        let files = crate_files(&[
            (
                "main.rs",
                "//! x\nmod a;\nmod b;\nmod c;\nfn main() { a::run(); }\n",
            ),
            (
                "a.rs",
                "//! x\nuse crate::{b::B, c};\npub fn run() { c::f(); }\n",
            ),
            ("b.rs", "//! x\nuse crate::c::C;\npub struct B(C);\n"),
            ("c.rs", "//! x\npub struct C;\npub fn f() {}\n"),
        ]);
        assert_eq!(super::module_cycles(&files), Vec::new());
    }

    #[test]
    fn a_cycle_is_named_with_a_path_through_it() {
        let files = crate_files(&[
            ("main.rs", "//! x\nmod a;\nmod b;\nmod c;\nmod d;\nmod e;\n"),
            ("a.rs", "//! x\nuse crate::b::B;\n"),
            ("b.rs", "//! x\n\nfn f() { crate::c::g() }\n"),
            // The group reaches back to `a`; `d` leans on the cycle, and
            // the cycle on `e`, but neither is in it.
            ("c.rs", "//! x\nuse crate::{e, a::A};\n"),
            ("d.rs", "//! x\nuse crate::a::A;\n"),
            ("e.rs", "//! x\n"),
        ]);
        assert_eq!(
            super::module_cycles(&files),
            vec![(
                vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
                vec![
                    "src/a.rs:2: a → b".to_owned(),
                    "src/b.rs:3: b → c".to_owned(),
                    "src/c.rs:2: c → a".to_owned(),
                ]
            )]
        );
    }

    #[test]
    fn parents_and_children_may_name_each_other_siblings_may_not() {
        let files = crate_files(&[
            ("lib.rs", "//! x\npub mod net;\npub struct Config;\n"),
            (
                "net/mod.rs",
                "//! x\nmod tls;\nmod wire;\npub use crate::net::tls::Tls;\npub struct Addr;\n",
            ),
            (
                "net/tls.rs",
                "//! x\nuse super::Addr;\nuse crate::Config;\npub struct Tls(Addr, Config);\n",
            ),
            ("net/wire.rs", "//! x\nuse crate::net::{Addr, tls::Tls};\n"),
        ]);
        assert_eq!(super::module_cycles(&files), Vec::new());
        // Once the child reaches its sibling back, by `super::`, it is a
        // cycle between siblings.
        let mut files = files;
        files[2].2 = scanned("//! x\nuse super::wire::Frame;\n").0;
        assert_eq!(
            super::module_cycles(&files),
            vec![(
                vec!["net::tls".to_owned(), "net::wire".to_owned()],
                vec![
                    "src/net/tls.rs:2: net::tls → net::wire".to_owned(),
                    "src/net/wire.rs:2: net::wire → net::tls".to_owned(),
                ]
            )]
        );
    }
}
