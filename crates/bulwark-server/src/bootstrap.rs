//! First-start and every-start setup of the data directory.
//!
//! Layout (directory 0700, secrets 0600):
//!
//! | file | what |
//! |---|---|
//! | `master.key` | 32 random bytes that seal the other secrets |
//! | `ca.pem` | device CA certificate (agents pin it) |
//! | `ca-key.sealed` | device CA private key, AES-256-GCM under `master.key` |
//! | `admin.token` | the first admin's API token, written once on first start |
//! | `journal-key.sealed` | Ed25519 seed that signs journal checkpoints, sealed |
//! | `journal.origin` | the journal's origin line (names this instance) |
//! | `journal.vkey` | the checkpoint verifier key (public; pin it) |
//! | `bulwark.db` | SQLite store (unless `--database-url` points elsewhere) |
//!
//! The device listener's own certificate is issued from the CA at every
//! start and kept only in memory.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use bulwark_pki::{DeviceCa, IssuedToken, MasterKey, RandomSource, Secret, TokenKind};
use bulwark_store::{Audit, NewAccount, NewApiToken, Role, Store};
use time::OffsetDateTime;

const CA_KEY_CONTEXT: &[u8] = b"bulwark device CA key v1";
const JOURNAL_KEY_CONTEXT: &[u8] = b"bulwark journal key v1";

/// Creates `dir` (0700) if missing and refuses one others can read.
pub fn ensure_data_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
    }
    let meta = fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    anyhow::ensure!(meta.is_dir(), "{} is not a directory", dir.display());
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("restricting {} to 0700 (was {mode:o})", dir.display()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically with mode 0600 (temp file, fsync, rename).
pub fn write_secret_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("writing {}", tmp.display()))?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Refuses a secret file that group or others can read.
pub(crate) fn check_secret_mode(path: &Path) -> Result<()> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} has mode {mode:o}; secrets must be 0600 (chmod 600 it)",
        path.display()
    );
    Ok(())
}

fn read_secret_file(path: &Path) -> Result<Vec<u8>> {
    check_secret_mode(path)?;
    fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads `master.key`, creating it on first start.
pub(crate) fn master_key(dir: &Path, rng: &dyn RandomSource) -> Result<MasterKey> {
    let path = dir.join("master.key");
    if path.exists() {
        let bytes = read_secret_file(&path)?;
        return MasterKey::from_bytes(&bytes)
            .with_context(|| format!("{} is not a master key", path.display()));
    }
    let key = MasterKey::generate(rng)?;
    write_secret_file(&path, key.as_bytes())?;
    Ok(key)
}

/// Loads the device CA, creating it on first start.
pub(crate) fn device_ca(
    dir: &Path,
    master: &MasterKey,
    rng: &dyn RandomSource,
    now: OffsetDateTime,
) -> Result<DeviceCa> {
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca-key.sealed");
    if cert_path.exists() || key_path.exists() {
        let cert = fs::read_to_string(&cert_path)
            .with_context(|| format!("reading {}", cert_path.display()))?;
        let sealed = read_secret_file(&key_path)?;
        let key = master
            .open(&sealed, CA_KEY_CONTEXT)
            .with_context(|| format!("unsealing {} with master.key", key_path.display()))?;
        let key = Secret::new(String::from_utf8(key.to_vec()).context("CA key is not UTF-8 PEM")?);
        return DeviceCa::from_pem(&cert, &key).context("loading the device CA");
    }
    let (ca, key_pem) = DeviceCa::generate("Bulwark device CA", now)?;
    let sealed = master.seal(key_pem.expose().as_bytes(), CA_KEY_CONTEXT, rng)?;
    write_secret_file(&key_path, &sealed)?;
    fs::write(&cert_path, ca.cert_pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(ca)
}

/// Loads the journal's signing key and origin, creating both on first
/// start. The origin is fixed from then on: a checkpoint names its log.
pub(crate) fn journal_signer(
    dir: &Path,
    master: &MasterKey,
    rng: &dyn RandomSource,
    wanted_origin: Option<&str>,
) -> Result<bulwark_tlog::NoteSigner> {
    let origin_path = dir.join("journal.origin");
    let key_path = dir.join("journal-key.sealed");
    let origin = if origin_path.exists() {
        let stored = fs::read_to_string(&origin_path)
            .with_context(|| format!("reading {}", origin_path.display()))?;
        let stored = stored.trim().to_owned();
        if let Some(w) = wanted_origin {
            anyhow::ensure!(
                w == stored,
                "journal origin is {stored:?} and cannot be changed to {w:?}"
            );
        }
        stored
    } else {
        let origin = match wanted_origin {
            Some(o) => o.to_owned(),
            None => {
                let mut id = [0u8; 8];
                rng.fill(&mut id)?;
                format!("bulwark.invalid/journal/{}", hex::encode(id))
            }
        };
        fs::write(&origin_path, format!("{origin}\n"))
            .with_context(|| format!("writing {}", origin_path.display()))?;
        origin
    };
    let seed: [u8; 32] = if key_path.exists() {
        let sealed = read_secret_file(&key_path)?;
        let seed = master
            .open(&sealed, JOURNAL_KEY_CONTEXT)
            .with_context(|| format!("unsealing {} with master.key", key_path.display()))?;
        seed.as_slice()
            .try_into()
            .context("journal key is not 32 bytes")?
    } else {
        let mut seed = [0u8; 32];
        rng.fill(&mut seed)?;
        write_secret_file(&key_path, &master.seal(&seed, JOURNAL_KEY_CONTEXT, rng)?)?;
        seed
    };
    let signer = bulwark_tlog::NoteSigner::new(&origin, &seed).context("journal signing key")?;
    fs::write(
        dir.join("journal.vkey"),
        format!("{}\n", signer.verifier_key()),
    )
    .context("writing journal.vkey")?;
    Ok(signer)
}

/// On a store with no accounts: creates the `admin` account and its token,
/// writes the token to `admin.token` (0600) and returns that path.
pub(crate) async fn first_admin(
    dir: &Path,
    store: &dyn Store,
    rng: &dyn RandomSource,
    now: OffsetDateTime,
) -> Result<Option<PathBuf>> {
    if !store.list_accounts().await?.is_empty() {
        return Ok(None);
    }
    let audit = Audit::system(now);
    let account = store
        .create_account(
            NewAccount {
                name: "admin".into(),
                role: Role::Admin,
            },
            &audit,
        )
        .await?;
    let token = IssuedToken::generate(TokenKind::Api, rng)?;
    store
        .insert_api_token(
            NewApiToken {
                id: token.id.clone(),
                account_id: account.id,
                label: "first admin (admin.token)".into(),
                secret_hash: token.secret_hash.to_vec(),
                expires_at: None,
            },
            &audit,
        )
        .await?;
    let path = dir.join("admin.token");
    write_secret_file(&path, format!("{}\n", token.plaintext.expose()).as_bytes())?;
    Ok(Some(path))
}

/// On a store that never had a profile for every group (`*`): stores the
/// built-in fleet profile under the system's name, journaled like any
/// applied profile, so that monitoring is on from the first start. A
/// `*` profile applied since (even one that replaced it) is left alone.
pub(crate) async fn builtin_profile(store: &dyn Store, now: OffsetDateTime) -> Result<()> {
    let rows = store.profiles().await?;
    if rows
        .iter()
        .any(|r| r.group == bulwark_detect::DEFAULT_GROUP)
    {
        return Ok(());
    }
    store
        .put_profile(
            bulwark_detect::DEFAULT_GROUP,
            bulwark_detect::BUILTIN_VERSION,
            bulwark_detect::BUILTIN_PROFILE,
            &Audit::system(now),
        )
        .await?;
    Ok(())
}

/// The server's online TUF keys (image snapshot/timestamp, director root,
/// director targets/snapshot/timestamp): Ed25519 PKCS#8, sealed under
/// `master.key`, created on first start.
pub(crate) fn tuf_key(
    dir: &Path,
    master: &MasterKey,
    name: &str,
) -> Result<bulwark_tuf::SigningKey> {
    let path = dir.join(format!("tuf-{name}-key.sealed"));
    let context = format!("bulwark tuf {name} key v1");
    if path.exists() {
        let sealed = read_secret_file(&path)?;
        let der = master
            .open(&sealed, context.as_bytes())
            .with_context(|| format!("unsealing {} with master.key", path.display()))?;
        return bulwark_tuf::SigningKey::from_pkcs8_der(&der)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let (key, der) = bulwark_tuf::SigningKey::generate_ed25519()
        .map_err(|e| anyhow::anyhow!("generating the {name} key: {e}"))?;
    let der = zeroize::Zeroizing::new(der);
    write_secret_file(
        &path,
        &master.seal(&der, context.as_bytes(), &bulwark_pki::SystemRandom)?,
    )?;
    Ok(key)
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "tests run against the real clock"
)]
mod tests {
    use super::*;
    use bulwark_pki::SystemRandom;

    #[test]
    fn secrets_are_0600_and_ca_survives_restart() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        ensure_data_dir(&data).unwrap();
        assert_eq!(
            fs::metadata(&data).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let now = OffsetDateTime::now_utc();
        let mk = master_key(&data, &SystemRandom).unwrap();
        let ca1 = device_ca(&data, &mk, &SystemRandom, now).unwrap();
        for f in ["master.key", "ca-key.sealed"] {
            assert_eq!(
                fs::metadata(data.join(f)).unwrap().permissions().mode() & 0o777,
                0o600,
                "{f}"
            );
        }
        let sealed = fs::read(data.join("ca-key.sealed")).unwrap();
        assert!(
            !String::from_utf8_lossy(&sealed).contains("PRIVATE KEY"),
            "CA key must be encrypted at rest"
        );
        let mk2 = master_key(&data, &SystemRandom).unwrap();
        let ca2 = device_ca(&data, &mk2, &SystemRandom, now).unwrap();
        assert_eq!(ca1.cert_pem(), ca2.cert_pem());
    }

    #[test]
    fn wrong_master_key_or_loose_permissions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        let now = OffsetDateTime::now_utc();
        let mk = master_key(data, &SystemRandom).unwrap();
        device_ca(data, &mk, &SystemRandom, now).unwrap();
        let other = MasterKey::generate(&SystemRandom).unwrap();
        let err = device_ca(data, &other, &SystemRandom, now).unwrap_err();
        assert!(format!("{err:#}").contains("unsealing"), "{err:#}");
        fs::set_permissions(data.join("master.key"), fs::Permissions::from_mode(0o644)).unwrap();
        let err = master_key(data, &SystemRandom).unwrap_err();
        assert!(format!("{err:#}").contains("must be 0600"), "{err:#}");
    }
}
