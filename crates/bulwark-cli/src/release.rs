//! Offline keys, the image repository's root, releases, promotion and
//! deployment.
//!
//! Offline keys never leave this process: key files are PKCS#8 encrypted
//! with a passphrase (scrypt + AES-256-CBC, the standard PBES2 scheme, so
//! `openssl pkey` reads them too); `repo init` and `release sign` fetch
//! what is to be signed, check it, sign locally and upload signatures.
//!
//! The server is not trusted to say what the image repository's root is:
//! `release sign` and `repo rotate-root` start from a root file the
//! operator keeps (the one `repo init --out` and `repo rotate-root --out`
//! write) and reach the server's current root by the root-rotation rule
//! ([`bulwark_tuf::chain_root`]), see [`established_root`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail, ensure};
use bulwark_api::{
    AddSignature, CreateDeployment, CreateRelease, PromoteRelease, ReleaseView, SigningView,
};
use bulwark_client::Client;
use bulwark_tuf::{
    ExpectedTarget, Metadata, PublicKey, Role as _, Root, SigningKey, Targets, chain_root,
    check_targets_proposal,
};
use clap::{Subcommand, ValueEnum};
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::args::Conn;
use crate::output::print_json;

/// Lifetime of a root signed by `repo init` / `repo rotate-root`.
const ROOT_LIFETIME: time::Duration = time::Duration::days(365);

/// Most root versions fetched to go from the pinned root to the server's
/// (python-tuf's default `max_root_rotations`, as devices use).
const MAX_ROOT_ROTATIONS: u64 = 256;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KeyRole {
    Root,
    Targets,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCmd {
    /// Generate an Ed25519 offline key: OUT (encrypted, 0600) and OUT's
    /// public key next to it with the extension `.pub`.
    Generate {
        /// What the key is for (only recorded in the public key file name and output).
        #[arg(long, value_enum)]
        role: KeyRole,
        /// Private key file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a key file's key id and public key.
    Show {
        /// A `.key` (asks for its passphrase) or `.pub` file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RepoCmd {
    /// Create the image repository's root (version 1), signed offline.
    Init {
        /// Root key file (repeatable; each signs).
        #[arg(long = "root-key", required = true)]
        root_keys: Vec<PathBuf>,
        /// Root signatures required.
        #[arg(long, default_value_t = 1)]
        root_threshold: u64,
        /// Public key file of a release manager (repeatable).
        #[arg(long = "targets-pub", required = true)]
        targets_pubs: Vec<PathBuf>,
        /// Targets signatures required to publish a release.
        #[arg(long, default_value_t = 1)]
        targets_threshold: u64,
        /// Also write the signed root here (provision it on devices).
        #[arg(long, default_value = "root.json")]
        out: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Sign and upload the next root version: change root or targets keys
    /// and thresholds. Sign with enough old AND new root keys. Starts from
    /// the root in `--out` (which must exist: the file `repo init` or the
    /// last rotation wrote), following the server's rotations from it.
    RotateRoot {
        /// Key files that sign the new root (repeatable).
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
        /// Add a root public key (repeatable).
        #[arg(long = "add-root-pub")]
        add_root: Vec<PathBuf>,
        /// Remove a root key by key id (repeatable).
        #[arg(long = "remove-root-keyid")]
        remove_root: Vec<String>,
        /// New root threshold.
        #[arg(long)]
        root_threshold: Option<u64>,
        /// Add a targets public key (repeatable).
        #[arg(long = "add-targets-pub")]
        add_targets: Vec<PathBuf>,
        /// Remove a targets key by key id (repeatable).
        #[arg(long = "remove-targets-keyid")]
        remove_targets: Vec<String>,
        /// New targets threshold.
        #[arg(long)]
        targets_threshold: Option<u64>,
        /// The trusted root to start from (it must exist), replaced by the
        /// new signed root.
        #[arg(long, default_value = "root.json")]
        out: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show the current root: version, expiry, keys and thresholds.
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Installer {
    File,
    Ab,
    Script,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReleaseCmd {
    /// Upload an artifact (streamed) and create a release from it.
    #[command(disable_version_flag = true)]
    Publish {
        /// The artifact.
        file: PathBuf,
        /// Product name.
        #[arg(long)]
        name: String,
        /// Version.
        #[arg(long = "version", id = "release_version")]
        version: String,
        /// How devices install it.
        #[arg(long, value_enum)]
        installer: Installer,
        /// Destination path (file installer).
        #[arg(long)]
        install_path: Option<String>,
        /// Command the device runs after switching; failure rolls back.
        #[arg(long)]
        smoke_test: Option<String>,
        /// Smoke test timeout, seconds.
        #[arg(long)]
        smoke_timeout: Option<u64>,
        /// The builder's SBOM (CycloneDX 1.5/1.6 or SPDX 2.3 JSON), uploaded
        /// and judged with what the gate extracts from the artifact.
        #[arg(long)]
        sbom: Option<PathBuf>,
        /// Do not wait for the gate's verdict.
        #[arg(long)]
        no_wait: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show a release's gate verdict with its evidence.
    Gate {
        /// `name@version`.
        reference: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Sign a release's targets metadata with an offline key, after
    /// checking it against the published targets, verified with the root
    /// reached from the pinned one.
    Sign {
        /// `name@version`.
        reference: String,
        /// Targets key file.
        #[arg(long)]
        key: PathBuf,
        /// The pinned image root: the file `bulwark repo init --out` (or
        /// `repo rotate-root --out`) wrote. The server's current root must
        /// follow from it by signed rotations.
        #[arg(long, default_value = "root.json")]
        root: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
    /// Promote a published release to an environment (same digest).
    Promote {
        /// `name@version`.
        reference: String,
        /// Environment.
        #[arg(long = "env")]
        environment: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// List releases.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one release.
    Show {
        /// `name@version`.
        reference: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete uploaded artifacts no release uses (older than an hour).
    Gc {
        #[command(flatten)]
        conn: Conn,
    },
}

fn passphrase(confirm: bool) -> Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var("BULWARK_KEY_PASSPHRASE") {
        ensure!(!p.is_empty(), "BULWARK_KEY_PASSPHRASE is empty");
        return Ok(Zeroizing::new(p));
    }
    let p = Zeroizing::new(
        rpassword::prompt_password("key passphrase: ")
            .context("reading the passphrase (or set BULWARK_KEY_PASSPHRASE)")?,
    );
    ensure!(
        p.len() >= 8,
        "the passphrase must have at least 8 characters"
    );
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("again: ")?);
        ensure!(*p == *again, "the passphrases differ");
    }
    Ok(p)
}

/// Encrypts a PKCS#8 document with the passphrase (PBES2: scrypt,
/// AES-256-CBC) as PEM.
fn encrypt_key(der: &[u8], pass: &str) -> Result<Zeroizing<String>> {
    let mut salt = [0u8; 16];
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| anyhow::anyhow!("random source failed"))?;
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| anyhow::anyhow!("random source failed"))?;
    let params = pkcs8::pkcs5::scrypt::Params::new(15, 8, 1, 32)
        .map_err(|e| anyhow::anyhow!("scrypt parameters: {e}"))?;
    let scheme = pkcs8::pkcs5::pbes2::Parameters::scrypt_aes256cbc(params, &salt, &iv)
        .map_err(|e| anyhow::anyhow!("encryption scheme: {e}"))?;
    let info = pkcs8::PrivateKeyInfo::try_from(der).map_err(|e| anyhow::anyhow!("key: {e}"))?;
    let doc = info
        .encrypt_with_params(scheme, pass)
        .map_err(|e| anyhow::anyhow!("encrypting the key: {e}"))?;
    let pem = doc
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .map_err(|e| anyhow::anyhow!("encoding the key: {e}"))?;
    Ok(pem)
}

/// Loads an encrypted key file.
pub(crate) fn load_key(path: &Path) -> Result<SigningKey> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let (label, doc) = pkcs8::SecretDocument::from_pem(&text)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM key file: {e}", path.display()))?;
    let der: Zeroizing<Vec<u8>> = match label {
        "ENCRYPTED PRIVATE KEY" => {
            let enc = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let pass = passphrase(false)?;
            let plain = enc.decrypt(pass.as_bytes()).map_err(|_| {
                anyhow::anyhow!(
                    "{}: wrong passphrase (or a damaged key file)",
                    path.display()
                )
            })?;
            Zeroizing::new(plain.as_bytes().to_vec())
        }
        "PRIVATE KEY" => Zeroizing::new(doc.as_bytes().to_vec()),
        other => bail!("{}: unexpected PEM label {other:?}", path.display()),
    };
    SigningKey::from_pkcs8_der(&der).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn load_pub(path: &Path) -> Result<PublicKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a TUF public key (JSON)", path.display()))
}

fn pub_path(out: &Path) -> PathBuf {
    out.with_extension("pub")
}

pub(crate) fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

pub(crate) fn keys(cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::Generate { role, out } => {
            let pass = passphrase(true)?;
            let (key, der) = SigningKey::generate_ed25519()
                .map_err(|e| anyhow::anyhow!("generating the key: {e}"))?;
            let der = Zeroizing::new(der);
            let pem = encrypt_key(&der, &pass)?;
            write_file(&out, pem.as_bytes(), 0o600)?;
            let pubp = pub_path(&out);
            let public = serde_json::to_vec_pretty(key.public())?;
            if let Err(e) = write_file(&pubp, &public, 0o644) {
                let _ = std::fs::remove_file(&out);
                return Err(e);
            }
            println!(
                "{:?} key {} written to {} (encrypted) and {}",
                role,
                key.key_id(),
                out.display(),
                pubp.display()
            );
        }
        KeysCmd::Show { file } => {
            let public = if file.extension().is_some_and(|e| e == "pub") {
                load_pub(&file)?
            } else {
                load_key(&file)?.public().clone()
            };
            println!("keyid: {}", public.key_id());
            println!("{}", serde_json::to_string_pretty(&public)?);
        }
    }
    Ok(())
}

/// The server's current root, as it says (not verified: for display, and
/// as the end point [`established_root`] must reach).
async fn current_root(api: &Client) -> Result<Metadata<Root>> {
    let bytes = api
        .repo_metadata("root.json")
        .await
        .context("fetching the current root (run `bulwark repo init` first)")?;
    Metadata::<Root>::from_slice(&bytes).map_err(|e| anyhow::anyhow!("the server's root: {e}"))
}

/// Reads the pinned root from `path`; `flag` names the option that gives
/// the path, for the message when it is missing.
fn load_pinned_root(path: &Path, flag: &str) -> Result<Metadata<Root>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no pinned image root at {}: pass {flag} FILE, the root.json that \
             `bulwark repo init --out` (or the last `repo rotate-root --out`) wrote; \
             the server's word alone is not trusted for the root",
            path.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the pinned root {}", path.display()));
        }
    };
    Metadata::<Root>::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("the pinned root {}: {e}", path.display()))
}

/// The server's current image root, established from `pinned` (read from
/// `pinned_path`) by the root-rotation rule: the server's `N.root.json` for
/// every version after the pinned one up to its `root.json`, each signed by
/// a threshold of the previous root's keys and of its own
/// ([`chain_root`]), and the root reached must be exactly the server's
/// `root.json`. A server older than the pinned root is a rollback; a root
/// of the same version but other content is another repository. Expiry is
/// not checked here: intermediate roots may have expired, and whether the
/// current one may is the caller's decision.
async fn established_root(
    api: &Client,
    pinned: &Metadata<Root>,
    pinned_path: &Path,
) -> Result<Metadata<Root>> {
    let current = current_root(api).await?;
    let (pinned_v, server_v) = (pinned.signed().version, current.signed().version);
    let refuse = |why: String| {
        anyhow::anyhow!(
            "the server's image root (version {server_v}) does not chain from the pinned root {} \
             (version {pinned_v}): {why}; refusing (a compromised server, or the wrong --root/server)",
            pinned_path.display()
        )
    };
    if server_v < pinned_v {
        bail!(
            "the server's image root is version {server_v}, older than the pinned root {} \
             (version {pinned_v}): rollback refused (is this the right server?)",
            pinned_path.display()
        );
    }
    if server_v - pinned_v > MAX_ROOT_ROTATIONS {
        return Err(refuse(format!(
            "more than {MAX_ROOT_ROTATIONS} rotations to follow"
        )));
    }
    let mut newer = Vec::new();
    for v in pinned_v + 1..=server_v {
        let bytes = api
            .repo_metadata(&format!("{v}.root.json"))
            .await
            .with_context(|| format!("fetching root version {v} from the server"))?;
        let md = Metadata::<Root>::from_slice(&bytes)
            .map_err(|e| refuse(format!("its root version {v}: {e}")))?;
        newer.push(md);
    }
    let established = chain_root(pinned, &newer).map_err(|e| refuse(e.to_string()))?;
    let canonical = |md: &Metadata<Root>| md.signed_bytes().map_err(|e| anyhow::anyhow!("{e}"));
    if canonical(&established)? != canonical(&current)? {
        return Err(refuse(if server_v == pinned_v {
            "same version, other content: another image repository".to_owned()
        } else {
            format!("its root.json is not its {server_v}.root.json")
        }));
    }
    if server_v > pinned_v {
        eprintln!(
            "image root: followed {} signed rotation(s) from the pinned version {pinned_v} ({}) to version {server_v}",
            server_v - pinned_v,
            pinned_path.display()
        );
    }
    Ok(established)
}

async fn upload_root(api: &Client, md: &Metadata<Root>, out: &Path) -> Result<()> {
    let bytes = md.to_vec().map_err(|e| anyhow::anyhow!("{e}"))?;
    let r = api.put_root(bytes.clone()).await?.value;
    replace_file(out, &bytes)?;
    let root = md.signed();
    println!(
        "image repository root version {} accepted (expires {}); copy {} to devices to pin it",
        r.version,
        crate::output::ts(Some(root.expires)),
        out.display()
    );
    for (role, rk) in &root.roles {
        println!(
            "  {role:<10} threshold {} of {}",
            rk.threshold,
            rk.keyids.len()
        );
    }
    Ok(())
}

pub(crate) async fn repo(cmd: RepoCmd) -> Result<()> {
    match cmd {
        RepoCmd::Init {
            root_keys,
            root_threshold,
            targets_pubs,
            targets_threshold,
            out,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let online = api.online_key().await?.value;
            let online_key: PublicKey = serde_json::from_value(online.key)?;
            let keys: Vec<SigningKey> = root_keys
                .iter()
                .map(|p| load_key(p))
                .collect::<Result<_>>()?;
            #[expect(
                clippy::disallowed_methods,
                reason = "the CLI is an edge: a new root's expiry counts from now"
            )]
            let mut root = Root::new(OffsetDateTime::now_utc() + ROOT_LIFETIME);
            for k in &keys {
                root.add_key("root", k.public().clone());
            }
            root.set_threshold("root", root_threshold);
            for p in &targets_pubs {
                root.add_key("targets", load_pub(p)?);
            }
            root.set_threshold("targets", targets_threshold);
            root.add_key("snapshot", online_key.clone());
            root.add_key("timestamp", online_key);
            check_thresholds(&root)?;
            let mut md = Metadata::new(root);
            for k in &keys {
                md.sign(k).map_err(|e| anyhow::anyhow!("signing: {e}"))?;
            }
            upload_root(&api, &md, &out).await?;
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "the CLI is an edge: the current root's expiry and the new one's are judged against now"
        )]
        RepoCmd::RotateRoot {
            keys,
            add_root,
            remove_root,
            root_threshold,
            add_targets,
            remove_targets,
            targets_threshold,
            out,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            // The starting point is the operator's root, never the server's
            // word: a server could otherwise slip its own keys into the
            // version the root keys sign.
            let pinned = load_pinned_root(&out, "--out")?;
            let cur = established_root(&api, &pinned, &out).await?;
            if cur.signed().is_expired(OffsetDateTime::now_utc()) {
                // Rotating is how an expired root is renewed: go on.
                eprintln!(
                    "note: the current root version {} expired at {}; the new version renews it",
                    cur.signed().version,
                    crate::output::ts(Some(cur.signed().expires))
                );
            }
            let mut root = cur.signed().clone();
            root.version += 1;
            root.expires = OffsetDateTime::now_utc() + ROOT_LIFETIME;
            for id in &remove_root {
                root.revoke_key(
                    "root",
                    &id.parse().map_err(|e| anyhow::anyhow!("{id}: {e}"))?,
                );
            }
            for p in &add_root {
                root.add_key("root", load_pub(p)?);
            }
            if let Some(t) = root_threshold {
                root.set_threshold("root", t);
            }
            for id in &remove_targets {
                root.revoke_key(
                    "targets",
                    &id.parse().map_err(|e| anyhow::anyhow!("{id}: {e}"))?,
                );
            }
            for p in &add_targets {
                root.add_key("targets", load_pub(p)?);
            }
            if let Some(t) = targets_threshold {
                root.set_threshold("targets", t);
            }
            check_thresholds(&root)?;
            let mut md = Metadata::new(root);
            for p in &keys {
                md.sign(&load_key(p)?)
                    .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
            }
            cur.signed().verify_role("root", &md).map_err(|e| {
                anyhow::anyhow!("not enough signatures by the current root keys: {e}")
            })?;
            md.signed()
                .verify_role("root", &md)
                .map_err(|e| anyhow::anyhow!("not enough signatures by the new root keys: {e}"))?;
            upload_root(&api, &md, &out).await?;
        }
        RepoCmd::Show { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let md = current_root(&api).await?;
            if json {
                println!(
                    "{}",
                    String::from_utf8_lossy(&md.to_vec().map_err(|e| anyhow::anyhow!("{e}"))?)
                );
            } else {
                let r = md.signed();
                println!("version:  {}", r.version);
                println!("expires:  {}", crate::output::ts(Some(r.expires)));
                for (role, rk) in &r.roles {
                    println!("{role:<10} threshold {}:", rk.threshold);
                    for k in &rk.keyids {
                        println!("    {k}");
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_thresholds(root: &Root) -> Result<()> {
    for (role, rk) in &root.roles {
        ensure!(
            rk.threshold >= 1 && rk.threshold <= rk.keyids.len() as u64,
            "{role}: threshold {} cannot be met by {} keys",
            rk.threshold,
            rk.keyids.len()
        );
    }
    Ok(())
}

fn print_release(r: &ReleaseView) {
    println!("release:      {}", r.reference);
    println!("target:       {}", r.target);
    println!("sha256:       {}", r.sha256);
    println!("length:       {}", r.length);
    println!(
        "installer:    {}{}",
        r.installer,
        r.install_path
            .as_deref()
            .map(|p| format!(" → {p}"))
            .unwrap_or_default()
    );
    println!(
        "smoke test:   {} (timeout {}s)",
        r.smoke_test.as_deref().unwrap_or("-"),
        r.smoke_timeout_secs
    );
    println!("status:       {}", r.status);
    println!(
        "environments: {}",
        if r.environments.is_empty() {
            "-".to_owned()
        } else {
            r.environments.join(" → ")
        }
    );
}

pub(crate) async fn release(cmd: ReleaseCmd) -> Result<ExitCode> {
    match cmd {
        ReleaseCmd::Publish {
            file,
            name,
            version,
            installer,
            install_path,
            smoke_test,
            smoke_timeout,
            sbom,
            no_wait,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            // The SBOM is checked here first, for a message naming the file.
            let sbom_sha256 = match &sbom {
                Some(p) => {
                    let bytes =
                        std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
                    bulwark_sbom::Sbom::from_json(&bytes, &bulwark_sbom::Limits::default())
                        .with_context(|| format!("{}", p.display()))?;
                    let b = api.upload_blob(p, None).await?.value;
                    Some(b.sha256)
                }
                None => None,
            };
            let blob = api.upload_blob(&file, None).await?.value;
            eprintln!(
                "uploaded {} ({} bytes), sha256 {}",
                file.display(),
                blob.length,
                blob.sha256
            );
            let body = CreateRelease {
                name,
                version,
                sha256: blob.sha256.clone(),
                installer: match installer {
                    Installer::File => bulwark_api::Installer::File,
                    Installer::Ab => bulwark_api::Installer::Ab,
                    Installer::Script => bulwark_api::Installer::Script,
                },
                install_path,
                smoke_test,
                smoke_timeout_secs: smoke_timeout,
                sbom_sha256,
            };
            let (r, raw) = api.create_release(&body).await?.into_parts();
            let gate = if no_wait {
                None
            } else {
                Some(
                    crate::gate::wait_gate(
                        &api,
                        &r.reference,
                        std::time::Duration::from_secs(1800),
                    )
                    .await?,
                )
            };
            if json {
                print_json(
                    &serde_json::json!({"release": raw, "gate": gate.as_ref().map(|g| &g.json)}),
                )?;
            } else {
                println!("{}", blob.sha256);
                eprintln!(
                    "release {} created: unsigned until enough release managers run `bulwark release sign {}`",
                    r.reference, r.reference
                );
                if let Some(g) = &gate {
                    eprint!("{}", crate::gate::gate_text(&g.value)?);
                }
            }
            if gate.is_some_and(|g| g.value.state == bulwark_api::GateState::Block) {
                return Ok(ExitCode::from(crate::gate::EXIT_BLOCKED));
            }
        }
        ReleaseCmd::Gate {
            reference,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (g, raw) = api.release_gate(&reference).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                print!("{}", crate::gate::gate_text(&g)?);
            }
            if g.state == bulwark_api::GateState::Block {
                return Ok(ExitCode::from(crate::gate::EXIT_BLOCKED));
            }
        }
        ReleaseCmd::Sign {
            reference,
            key,
            root: root_path,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let pinned = load_pinned_root(&root_path, "--root")?;
            let key = load_key(&key)?;
            let root = established_root(&api, &pinned, &root_path).await?;
            // Devices refuse an expired root (freeze attack), and a server
            // withholding a newer root to keep old targets keys in force is
            // bounded only by this expiry.
            #[expect(
                clippy::disallowed_methods,
                reason = "the CLI is an edge: it passes the time to the root's expiry check"
            )]
            let now = OffsetDateTime::now_utc();
            ensure!(
                !root.signed().is_expired(now),
                "the image root version {} expired at {}: devices refuse it and so does signing; \
                 renew it with `bulwark repo rotate-root` first",
                root.signed().version,
                crate::output::ts(Some(root.signed().expires))
            );
            ensure_targets_key(root.signed(), &key)?;
            let rel = api.show_release(&reference).await?.value;
            let s = api.signing(&reference).await?.value;
            check_proposal(&api, root.signed(), &rel, &s).await?;
            let sig = key
                .sign(s.signed_canonical.as_bytes())
                .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
            let body = AddSignature {
                keyid: key.key_id().to_string(),
                sig: hex::encode(sig),
            };
            let after = api.add_signature(&reference, &body).await?.value;
            if after.published {
                println!(
                    "{}: {} of {} signatures, threshold met: published as targets version {}",
                    after.release,
                    after.valid_signatures,
                    after.threshold,
                    after.base_version + 1
                );
            } else {
                println!(
                    "{}: {} of {} signatures",
                    after.release, after.valid_signatures, after.threshold
                );
            }
        }
        ReleaseCmd::Promote {
            reference,
            environment,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let r = api
                .promote_release(&reference, &PromoteRelease { environment })
                .await?
                .value;
            println!(
                "{} (sha256 {}) is now in {}",
                r.reference,
                r.sha256,
                r.environments.join(" → ")
            );
        }
        ReleaseCmd::List { json, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (l, raw) = api.list_releases().await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                println!(
                    "{:<32} {:<10} {:<14} {:<24} SHA256",
                    "RELEASE", "STATUS", "INSTALLER", "ENVIRONMENTS"
                );
                for r in l.releases {
                    println!(
                        "{:<32} {:<10} {:<14} {:<24} {}",
                        r.reference,
                        r.status,
                        r.installer,
                        if r.environments.is_empty() {
                            "-".into()
                        } else {
                            r.environments.join(",")
                        },
                        &r.sha256[..16]
                    );
                }
            }
        }
        ReleaseCmd::Show {
            reference,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (r, raw) = api.show_release(&reference).await?.into_parts();
            if json {
                print_json(&raw)?;
            } else {
                print_release(&r);
            }
        }
        ReleaseCmd::Gc { conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let g = api.gc_blobs().await?.value;
            println!(
                "deleted {} blobs, freed {} bytes",
                g.deleted.len(),
                g.freed_bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The longest lifetime a targets proposal may have. The server proposes
/// targets expiring 365 days after it builds the proposal
/// (`Lifetimes::default().targets` in `bulwark_server::updates`), which is
/// no later than 365 days from now; the extra day leaves room for the
/// server's clock running ahead of this machine's.
const MAX_TARGETS_LIFETIME: time::Duration = time::Duration::days(366);

/// `key` must be a `targets` key of `root` (the established root, not the
/// server's list of key ids), under its own key id and with the same key
/// material, so that its signature counts where devices check it.
fn ensure_targets_key(root: &Root, key: &SigningKey) -> Result<()> {
    let id = key.key_id();
    let listed = root
        .roles
        .get("targets")
        .is_some_and(|r| r.keyids.contains(&id));
    let same = root.keys.get(&id).is_some_and(|k| {
        let mine = key.public();
        k.keytype == mine.keytype
            && k.scheme == mine.scheme
            && k.keyval.public == mine.keyval.public
    });
    ensure!(
        listed && same,
        "key {id} is not a targets key of the image root (version {})",
        root.version
    );
    Ok(())
}

/// A compromised server could ask signers to sign anything: fetch the
/// published targets, verify them with `root` (established from the pinned
/// root by [`established_root`]), and check that the proposal is them plus
/// exactly this release, with the digest, length and install instructions
/// the release shows ([`check_targets_proposal`] has every rule).
async fn check_proposal(
    api: &Client,
    root: &Root,
    rel: &ReleaseView,
    s: &SigningView,
) -> Result<()> {
    let published = if s.base_version == 0 {
        None
    } else {
        let bytes = api
            .repo_metadata(&format!("{}.targets.json", s.base_version))
            .await?;
        let md = Metadata::<Targets>::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("the published targets: {e}"))?;
        root.verify_role("targets", &md)
            .map_err(|e| anyhow::anyhow!("the published targets are not properly signed: {e}"))?;
        Some(md.signed().clone())
    };
    // The install instructions devices follow, as the server writes them
    // into the target's `custom` (`release_custom` in
    // `bulwark_server::updates`) from the release shown here.
    let custom = serde_json::json!({
        "bulwark": {
            "name": rel.name,
            "version": rel.version,
            "installer": rel.installer,
            "install_path": rel.install_path,
            "smoke_test": rel.smoke_test,
            "smoke_timeout_secs": rel.smoke_timeout_secs,
        }
    });
    let expected = ExpectedTarget {
        path: rel.target.clone(),
        length: rel.length,
        sha256: rel.sha256.clone(),
        custom: Some(custom),
    };
    #[expect(
        clippy::disallowed_methods,
        reason = "the CLI is an edge: it passes the time to the pure proposal check"
    )]
    let summary = check_targets_proposal(
        s.signed_canonical.as_bytes(),
        published.as_ref(),
        s.base_version,
        &expected,
        OffsetDateTime::now_utc(),
        MAX_TARGETS_LIFETIME,
    )
    .map_err(|e| anyhow::anyhow!("refusing to sign: {e}"))?;
    eprintln!(
        "signing targets version {}: adds {} (sha256 {}, {} bytes), {} published targets unchanged, expires {}",
        summary.version,
        summary.added,
        summary.sha256,
        summary.length,
        summary.unchanged,
        crate::output::ts(Some(summary.expires))
    );
    Ok(())
}

/// `bulwark deploy`.
pub(crate) async fn deploy(
    reference: String,
    group: String,
    environment: String,
    remediation: bool,
    json: bool,
    conn: Conn,
) -> Result<()> {
    let api = crate::client::from_env(conn.server, conn.token)?;
    let (d, raw) = api
        .create_deployment(&CreateDeployment {
            release: reference,
            group,
            environment,
            remediation,
        })
        .await?
        .into_parts();
    if json {
        print_json(&raw)?;
    } else {
        println!(
            "deployed {} to group {} in {} (deployment {}{})",
            d.release,
            d.group,
            d.environment,
            d.id,
            if d.remediation {
                "; remediation: quarantined devices receive it too"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// `bulwark deployments`.
pub(crate) async fn deployments(json: bool, conn: Conn) -> Result<()> {
    let api = crate::client::from_env(conn.server, conn.token)?;
    let (l, raw) = api.list_deployments().await?.into_parts();
    if json {
        print_json(&raw)?;
    } else {
        println!(
            "{:<5} {:<32} {:<20} {:<12} CREATED",
            "SEQ", "RELEASE", "GROUP", "ENV"
        );
        for d in l.deployments {
            println!(
                "{:<5} {:<32} {:<20} {:<12} {}",
                d.seq,
                d.release,
                d.group,
                d.environment,
                crate::output::ts(Some(d.created_at))
            );
        }
    }
    Ok(())
}
