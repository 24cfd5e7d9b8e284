//! Lockfiles: `Cargo.lock`, `package-lock.json` and `go.sum`.

use std::collections::{BTreeMap, BTreeSet};

use bulwark_sbom::{Component, ComponentEcosystem};
use serde::Deserialize;

#[derive(Deserialize)]
struct CargoLock {
    #[serde(default)]
    package: Vec<CargoPackage>,
}

#[derive(Deserialize)]
struct CargoPackage {
    name: String,
    version: String,
    source: Option<String>,
}

/// Crates of a `Cargo.lock` (any format version: all keep `[[package]]`
/// tables). Packages without a `source` are the workspace's own (path)
/// crates and are left out.
pub(super) fn parse_cargo_lock(text: &str) -> Result<Vec<Component>, String> {
    let lock: CargoLock = toml::from_str(text).map_err(|e| format!("invalid Cargo.lock: {e}"))?;
    Ok(lock
        .package
        .into_iter()
        .filter(|p| p.source.is_some())
        .map(|p| Component::new(ComponentEcosystem::Cargo, p.name, p.version, &[]))
        .collect())
}

#[derive(Deserialize)]
struct PackageLock {
    #[serde(default)]
    packages: BTreeMap<String, NpmPackage>,
    #[serde(default)]
    dependencies: BTreeMap<String, NpmDependency>,
}

#[derive(Deserialize)]
struct NpmPackage {
    version: Option<String>,
    #[serde(default)]
    link: bool,
}

#[derive(Deserialize)]
struct NpmDependency {
    version: Option<String>,
    #[serde(default)]
    dependencies: BTreeMap<String, NpmDependency>,
}

/// Packages of an npm `package-lock.json`: the `packages` map
/// (lockfileVersion 2 and 3) when present, else the nested `dependencies`
/// (version 1). The root package, workspace members, links and non-registry
/// versions (`file:`, `git+…`, aliases) are left out.
pub(super) fn parse_package_lock(text: &str) -> Result<Vec<Component>, String> {
    let lock: PackageLock =
        serde_json::from_str(text).map_err(|e| format!("invalid package-lock.json: {e}"))?;
    let mut found = BTreeSet::new();
    if lock.packages.is_empty() {
        walk_v1(&lock.dependencies, &mut found);
    } else {
        for (key, package) in &lock.packages {
            let Some((_, name)) = key.rsplit_once("node_modules/") else {
                continue; // "" (the root) or a workspace directory
            };
            if let (false, Some(version)) = (package.link, &package.version) {
                found.insert((name.to_owned(), version.clone()));
            }
        }
    }
    Ok(found
        .into_iter()
        .filter(|(name, version)| !name.is_empty() && is_registry_version(version))
        .map(|(name, version)| Component::new(ComponentEcosystem::Npm, name, version, &[]))
        .collect())
}

/// Nesting is bounded by `serde_json`'s recursion limit.
fn walk_v1(deps: &BTreeMap<String, NpmDependency>, found: &mut BTreeSet<(String, String)>) {
    for (name, dep) in deps {
        if let Some(version) = &dep.version {
            found.insert((name.clone(), version.clone()));
        }
        walk_v1(&dep.dependencies, found);
    }
}

fn is_registry_version(version: &str) -> bool {
    !version.is_empty() && !version.contains([':', '/', ' '])
}

/// Modules of a `go.sum`: `module version hash` lines, the `/go.mod`-only
/// lines skipped, duplicates removed.
pub(super) fn parse_go_sum(text: &str) -> Vec<Component> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let (Some(module), Some(version), Some(_hash)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if version.ends_with("/go.mod") {
            continue;
        }
        found.insert((module, version));
    }
    found
        .into_iter()
        .map(|(m, v)| Component::new(ComponentEcosystem::Golang, m, v, &[]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(found: &[Component]) -> Vec<String> {
        found
            .iter()
            .map(|c| format!("{}@{}", c.name, c.version))
            .collect()
    }

    #[test]
    fn cargo_lock_skips_path_crates() {
        let lock = r#"
version = 3
[[package]]
name = "app"
version = "0.1.0"
[[package]]
name = "serde"
version = "1.0.200"
source = "registry+https://github.com/rust-lang/crates.io-index"
"#;
        assert_eq!(names(&parse_cargo_lock(lock).unwrap()), ["serde@1.0.200"]);
        assert!(parse_cargo_lock("[[package]]\nname = 1").is_err());
    }

    #[test]
    fn deeply_nested_toml_is_an_error_not_a_crash() {
        let deep = format!("x = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_cargo_lock(&deep).is_err());
    }

    #[test]
    fn package_lock_versions() {
        let v3 = r#"{"lockfileVersion":3,"packages":{
            "":{"name":"root","version":"1.0.0"},
            "node_modules/@scope/a":{"version":"1.2.3"},
            "node_modules/@scope/a/node_modules/b":{"version":"0.1.0"},
            "node_modules/linked":{"link":true,"resolved":"packages/x"},
            "packages/x":{"version":"9.9.9"},
            "node_modules/gitdep":{"version":"git+ssh://git@github.com/x/y.git#abc"}}}"#;
        assert_eq!(
            names(&parse_package_lock(v3).unwrap()),
            ["@scope/a@1.2.3", "b@0.1.0"]
        );
        let v1 = r#"{"lockfileVersion":1,"dependencies":{
            "a":{"version":"1.0.0","dependencies":{"b":{"version":"2.0.0"}}}}}"#;
        assert_eq!(
            names(&parse_package_lock(v1).unwrap()),
            ["a@1.0.0", "b@2.0.0"]
        );
    }

    #[test]
    fn go_sum_dedupes_and_skips_go_mod_lines() {
        let sum = "golang.org/x/net v0.17.0 h1:abc=\ngolang.org/x/net v0.17.0/go.mod h1:def=\n\
                   golang.org/x/net v0.17.0 h1:abc=\nbroken line\n";
        assert_eq!(names(&parse_go_sum(sum)), ["golang.org/x/net@v0.17.0"]);
    }
}
