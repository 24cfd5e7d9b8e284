//! Locating the PostgreSQL server and client binaries.
//!
//! Debian installs each major version under `/usr/lib/postgresql/<ver>/bin`; we pick the
//! newest one that has `initdb` and `pg_ctl`, unless `BULWARK_PG_BINDIR` names a directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::Error;

/// Where Debian installs PostgreSQL major versions.
pub(crate) const DEBIAN_ROOT: &str = "/usr/lib/postgresql";
/// Environment variable overriding the binary directory.
pub(crate) const BINDIR_ENV: &str = "BULWARK_PG_BINDIR";

/// Absolute paths of the programs we use.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub(crate) bin_dir: PathBuf,
    pub(crate) initdb: PathBuf,
    pub(crate) pg_ctl: PathBuf,
    pub(crate) createdb: Option<PathBuf>,
    pub(crate) psql: Option<PathBuf>,
    pub(crate) pg_isready: Option<PathBuf>,
}

/// Finds the binaries: in `override_dir` if given (non-empty), else the newest version under `root`.
pub(crate) fn find(override_dir: Option<OsString>, root: &Path) -> Result<Binaries, Error> {
    let bin_dir = match override_dir.filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if !has_server(&dir) {
                return Err(Error::BinariesNotFound {
                    searched: format!("{BINDIR_ENV}={}", dir.display()),
                });
            }
            dir
        }
        None => newest_version_bin(root).ok_or_else(|| Error::BinariesNotFound {
            searched: format!("{}/<version>/bin", root.display()),
        })?,
    };
    let in_bindir_or_usr_bin = |name: &str| {
        [bin_dir.join(name), Path::new("/usr/bin").join(name)]
            .into_iter()
            .find(|p| p.is_file())
    };
    let createdb = Some(bin_dir.join("createdb")).filter(|p| p.is_file());
    let psql = in_bindir_or_usr_bin("psql");
    if createdb.is_none() && psql.is_none() {
        return Err(Error::BinariesNotFound {
            searched: format!(
                "createdb/psql in {} and /usr/bin (server binaries were found)",
                bin_dir.display()
            ),
        });
    }
    Ok(Binaries {
        initdb: bin_dir.join("initdb"),
        pg_ctl: bin_dir.join("pg_ctl"),
        createdb,
        psql,
        pg_isready: in_bindir_or_usr_bin("pg_isready"),
        bin_dir,
    })
}

fn has_server(dir: &Path) -> bool {
    dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()
}

/// `root/<newest version>/bin`, considering only versions that have the server binaries.
fn newest_version_bin(root: &Path) -> Option<PathBuf> {
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let key = version_key(entry.file_name().to_str()?)?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((key, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, bin)| bin)
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`; anything else → `None`.
fn version_key(name: &str) -> Option<Vec<u32>> {
    name.split('.').map(|part| part.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ordering() {
        assert!(version_key("10") > version_key("9.6"));
        assert!(version_key("16") > version_key("15"));
        assert_eq!(version_key("common"), None);
        assert_eq!(version_key(""), None);
    }

    #[test]
    fn missing_binaries_give_the_install_hint() {
        let empty = tempfile::tempdir().unwrap();
        let err = find(None, empty.path()).unwrap_err().to_string();
        assert!(
            err.contains(
                "PostgreSQL binaries not found; install Debian's postgresql package \
                 (apt-get install -y postgresql)"
            ),
            "{err}"
        );
        let err = find(Some(empty.path().into()), Path::new(DEBIAN_ROOT))
            .unwrap_err()
            .to_string();
        assert!(err.contains("PostgreSQL binaries not found"), "{err}");
        assert!(err.contains(BINDIR_ENV), "{err}");
    }

    #[test]
    fn picks_newest_version_with_server_binaries() {
        let root = tempfile::tempdir().unwrap();
        for (ver, complete) in [("9.6", true), ("13", true), ("15", true), ("17", false)] {
            let bin = root.path().join(ver).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let names: &[&str] = if complete {
                &["initdb", "pg_ctl", "createdb"]
            } else {
                &["psql"]
            };
            for name in names {
                std::fs::write(bin.join(name), "").unwrap();
            }
        }
        let bins = find(None, root.path()).unwrap();
        assert_eq!(bins.bin_dir, root.path().join("15").join("bin"));
        assert_eq!(bins.createdb, Some(root.path().join("15/bin/createdb")));
    }
}
