//! Trusted metadata in a directory, one `<quoted role>.json` per role.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use bulwark_tuf::{LocalMetadata, quote_role_name};

/// A [`LocalMetadata`] over a directory. Writes are atomic (temporary file,
/// then rename).
#[derive(Debug)]
pub(crate) struct FsStore {
    dir: PathBuf,
}

impl FsStore {
    pub(crate) fn new(dir: &Path) -> FsStore {
        FsStore {
            dir: dir.to_owned(),
        }
    }

    fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote_role_name(role)))
    }
}

impl LocalMetadata for FsStore {
    fn load(&self, role: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(role)).ok()
    }

    fn store(&mut self, role: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path(role);
        let tmp = self
            .dir
            .join(format!(".{}.json.tmp", quote_role_name(role)));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("writing {}: {e}", path.display())
        })
    }
}
