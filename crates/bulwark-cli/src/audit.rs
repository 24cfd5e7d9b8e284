//! `bulwark audit …`: read, prove and verify the audit journal.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use bulwark_api::{AuditEntryView, AuditQuery, CheckpointView, ProofQuery};
use bulwark_audit::{Evidence, EvidenceEntry, verify};
use bulwark_tlog::{Checkpoint, NoteVerifier, leaf_hash, verify_inclusion};
use clap::Subcommand;
use time::OffsetDateTime;

use crate::args::Conn;
use bulwark_client::Client;

/// Largest bundle the CLI reads.
const MAX_BUNDLE_BYTES: u64 = 4 << 30;
/// Most consistency proofs an export carries (newest checkpoints first).
const MAX_EXPORT_PROOFS: usize = 256;

#[derive(Debug, Subcommand)]
pub(crate) enum AuditCmd {
    /// List journal entries, optionally filtered.
    Log {
        /// Only entries at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only entries by this actor (account name, account id or device id).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (or prefix, e.g. `device.`).
        #[arg(long)]
        action: Option<String>,
        /// Only entries whose target contains this (e.g. a device id).
        #[arg(long)]
        target: Option<String>,
        /// Leave out what devices did themselves (check-ins' inventories,
        /// update reports, enrollments).
        #[arg(long)]
        exclude_devices: bool,
        /// Only entries before this sequence number (the previous page:
        /// the first SEQ shown).
        #[arg(long, value_name = "SEQ")]
        before: Option<u64>,
        /// Show the newest N matching entries (the command says how to see
        /// the page before).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show one entry and verify its inclusion proof against the newest signed checkpoint.
    Show {
        /// Sequence number.
        seq: u64,
        /// Verifier key file (default: ask the server, and say so).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Print the newest signed checkpoint (C2SP signed note); keep it to verify later.
    Checkpoint {
        #[command(flatten)]
        conn: Conn,
    },
    /// Print the journal's checkpoint verifier key; pin it.
    Key {
        #[command(flatten)]
        conn: Conn,
    },
    /// Verify the whole journal: every entry rehashed, every signed checkpoint
    /// matched, and consistency with a trusted older checkpoint.
    Verify {
        /// An older checkpoint you saved (`bulwark audit checkpoint > cp.txt`).
        #[arg(long)]
        trusted: Option<PathBuf>,
        /// Verifier key file (default: the bundle's or the server's, with a warning).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Verify an exported bundle instead of the live server.
        #[arg(long)]
        bundle: Option<PathBuf>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Export entries, checkpoints and proofs as a tar bundle verifiable offline.
    Export {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
}

fn read_small(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > 64 * 1024 {
        bail!(
            "{} is larger than 64 KiB; not a key or checkpoint",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

async fn all_entries(api: &Client) -> Result<Vec<AuditEntryView>> {
    let mut out = Vec::new();
    let mut start = 0u64;
    loop {
        let query = AuditQuery {
            start: Some(start),
            limit: Some(1000),
        };
        let page = api.audit_entries(&query).await?.value;
        out.extend(page.entries);
        match page.next {
            Some(n) if n > start => start = n,
            _ => break,
        }
    }
    Ok(out)
}

fn to_evidence(entries: Vec<AuditEntryView>, checkpoints: Vec<CheckpointView>) -> Result<Evidence> {
    let entries = entries
        .into_iter()
        .map(|e| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(&e.raw)
                .context("entry is not base64")?;
            let recorded: Option<[u8; 32]> = hex::decode(&e.leaf_hash)
                .ok()
                .and_then(|h| h.try_into().ok());
            Ok(EvidenceEntry {
                seq: e.seq,
                raw,
                recorded_leaf_hash: recorded,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Evidence {
        entries,
        checkpoints: checkpoints.into_iter().map(|c| c.note).collect(),
        consistency: vec![],
    })
}

fn parse_proof(hexes: &[String]) -> Result<Vec<[u8; 32]>> {
    hexes
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("proof hash is not 32 bytes of hex")
        })
        .collect()
}

async fn verifier(
    api: Option<&Client>,
    key: Option<&Path>,
    fallback: Option<&str>,
) -> Result<NoteVerifier> {
    let vkey = match (key, fallback, api) {
        (Some(p), _, _) => read_small(p)?.trim().to_owned(),
        (None, Some(v), _) => {
            eprintln!(
                "warning: using the verifier key inside the bundle; pass --key to check it against the key you pinned"
            );
            v.to_owned()
        }
        (None, None, Some(api)) => {
            let k = api.journal_key().await?.value;
            eprintln!(
                "warning: using the server's verifier key ({}); pass --key to pin it",
                k.vkey
            );
            k.vkey
        }
        (None, None, None) => bail!("no verifier key: pass --key"),
    };
    NoteVerifier::from_vkey(&vkey).map_err(|e| anyhow::anyhow!("verifier key {vkey:?}: {e}"))
}

fn read_bundle(path: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut archive = tar::Archive::new(file.take(MAX_BUNDLE_BYTES));
    let mut files = BTreeMap::new();
    for entry in archive.entries().context("reading the bundle")? {
        let mut entry = entry.context("reading the bundle")?;
        if !entry.header().entry_type().is_file() {
            continue; // directories; links and devices are never followed
        }
        let name = entry
            .path()
            .context("bundle entry name")?
            .to_string_lossy()
            .into_owned();
        if !name.starts_with(bulwark_audit::BUNDLE_DIR) || name.contains("..") {
            bail!("unexpected file {name:?} in the bundle");
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading {name}"))?;
        files.insert(name, bytes);
    }
    Ok(files)
}

fn print_entry(e: &AuditEntryView) {
    let Some(entry) = &e.entry else {
        println!(
            "{:>6}  NOT A CANONICAL ENTRY: {} (run `bulwark audit verify`)",
            e.seq,
            e.problem.as_deref().unwrap_or("unreadable")
        );
        return;
    };
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(entry.time_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let who = entry
        .actor
        .name
        .clone()
        .unwrap_or_else(|| format!("{}:{}", entry.actor.kind, entry.actor.id));
    let detail: Vec<String> = entry
        .detail
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "{:>6}  {:<24}  {:<22}  {:<22}  {}  {}",
        e.seq,
        t,
        who,
        entry.action,
        entry.target,
        detail.join(" ")
    );
}

pub(crate) async fn run(cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Log {
            since,
            actor,
            action,
            target,
            exclude_devices,
            before,
            limit,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let since_ms = since
                .map(|s| {
                    OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339)
                        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                        .with_context(|| format!("--since {s:?} is not an RFC 3339 time"))
                })
                .transpose()?;
            let mut entries: Vec<AuditEntryView> = all_entries(&api)
                .await?
                .into_iter()
                .filter(|e| before.is_none_or(|b| e.seq < b))
                // An unreadable entry is always listed: it is what a
                // reader of the log most needs to see.
                .filter(|e| {
                    let Some(entry) = &e.entry else {
                        return true;
                    };
                    since_ms.is_none_or(|t| entry.time_ms >= t)
                        && actor.as_ref().is_none_or(|a| {
                            entry.actor.id == *a || entry.actor.name.as_ref() == Some(a)
                        })
                        && action
                            .as_ref()
                            .is_none_or(|a| entry.action.starts_with(a.as_str()))
                        && target
                            .as_ref()
                            .is_none_or(|t| entry.target.contains(t.as_str()))
                        && !(exclude_devices && entry.actor.kind == "device")
                })
                .collect();
            let earlier = match limit {
                Some(n) if entries.len() as u64 > n => {
                    let cut = entries.len() - n as usize;
                    entries.drain(..cut);
                    Some(cut)
                }
                _ => None,
            };
            if let (Some(skipped), Some(first)) = (earlier, entries.first()) {
                eprintln!(
                    "{skipped} earlier matching entries: --before {} for the page before",
                    first.seq
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                println!(
                    "{:>6}  {:<24}  {:<22}  {:<22}  TARGET  DETAIL",
                    "SEQ", "TIME", "ACTOR", "ACTION"
                );
                entries.iter().for_each(print_entry);
            }
        }
        AuditCmd::Show {
            seq,
            key,
            json,
            conn,
        } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let (v, raw) = api
                .audit_entry(seq, &ProofQuery::default())
                .await?
                .into_parts();
            let verifier = verifier(Some(&api), key.as_deref(), None).await?;
            let (cp, _) = Checkpoint::open(&v.checkpoint, std::slice::from_ref(&verifier))
                .map_err(|e| anyhow::anyhow!("checkpoint: {e}"))?;
            let bytes = base64::engine::general_purpose::STANDARD.decode(&v.entry.raw)?;
            let proof = parse_proof(&v.proof)?;
            verify_inclusion(&leaf_hash(&bytes), seq, cp.size, &proof, &cp.root_hash).map_err(
                |e| anyhow::anyhow!("inclusion proof of entry {seq} does NOT verify: {e}"),
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&raw)?);
            } else {
                print_entry(&v.entry);
                if let Some(entry) = &v.entry.entry {
                    println!("{}", serde_json::to_string_pretty(entry)?);
                }
                println!(
                    "inclusion proof ({} hashes) verified against the signed checkpoint for size {}",
                    proof.len(),
                    cp.size
                );
            }
        }
        AuditCmd::Checkpoint { conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            print!("{}", api.log_checkpoint().await?);
        }
        AuditCmd::Key { conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            println!("{}", api.journal_key().await?.value.vkey);
        }
        AuditCmd::Verify {
            trusted,
            key,
            bundle,
            conn,
        } => {
            let trusted = trusted.as_deref().map(read_small).transpose()?;
            let (evidence, verifier) = match bundle {
                Some(path) => {
                    let files = read_bundle(&path)?;
                    let (ev, vkey) = Evidence::from_bundle_files(&files)?;
                    (ev, verifier(None, key.as_deref(), Some(&vkey)).await?)
                }
                None => {
                    let api = crate::client::from_env(conn.server, conn.token)?;
                    let verifier = verifier(Some(&api), key.as_deref(), None).await?;
                    let checkpoints = api.checkpoints().await?.value;
                    let mut ev = to_evidence(all_entries(&api).await?, checkpoints.clone())?;
                    // Witness-style: the server's own consistency proof from the
                    // trusted size to the newest, checked like a witness would.
                    if let (Some(t), Some(newest)) = (&trusted, checkpoints.last())
                        && let Ok(cp) = Checkpoint::open(t, std::slice::from_ref(&verifier))
                        && cp.0.size <= newest.size
                    {
                        let query = ProofQuery {
                            from: Some(cp.0.size),
                            size: Some(newest.size),
                        };
                        let c = api.consistency(&query).await?.value;
                        ev.consistency
                            .push((c.from, c.size, parse_proof(&c.proof)?));
                    }
                    (ev, verifier)
                }
            };
            let report = verify(&evidence, &verifier, trusted.as_deref())
                .map_err(|f| anyhow::anyhow!("journal verification FAILED: {f}"))?;
            println!(
                "journal verified: {} entries under {} signed checkpoints (newest size {}, root {}){}{}",
                report.size + report.unsigned_tail,
                report.checkpoints,
                report.size,
                hex::encode(report.root),
                report
                    .trusted_size
                    .map(|s| format!("; consistent with the trusted checkpoint of size {s}"))
                    .unwrap_or_default(),
                if report.unsigned_tail > 0 {
                    format!(
                        "; {} newer entries not yet checkpointed",
                        report.unsigned_tail
                    )
                } else {
                    String::new()
                },
            );
        }
        AuditCmd::Export { out, conn } => {
            let api = crate::client::from_env(conn.server, conn.token)?;
            let k = api.journal_key().await?.value;
            let checkpoints = api.checkpoints().await?.value;
            let newest = checkpoints.last().map(|c| c.size).unwrap_or(0);
            let mut ev = to_evidence(all_entries(&api).await?, checkpoints.clone())?;
            for c in checkpoints.iter().rev().skip(1).take(MAX_EXPORT_PROOFS) {
                let query = ProofQuery {
                    from: Some(c.size),
                    size: Some(newest),
                };
                let p = api.consistency(&query).await?.value;
                ev.consistency
                    .push((p.from, p.size, parse_proof(&p.proof)?));
            }
            let files = ev.to_bundle_files(&k.vkey);
            let tmp = out.with_extension("tmp");
            {
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                let mut builder = tar::Builder::new(f);
                for (name, bytes) in &files {
                    let mut header = tar::Header::new_gnu();
                    header.set_size(bytes.len() as u64);
                    header.set_mode(0o644);
                    header.set_cksum();
                    builder.append_data(&mut header, name, bytes.as_slice())?;
                }
                builder.into_inner()?.sync_all()?;
            }
            std::fs::rename(&tmp, &out)?;
            println!(
                "exported {} entries, {} checkpoints, {} proofs to {}",
                ev.entries.len(),
                ev.checkpoints.len(),
                ev.consistency.len(),
                out.display()
            );
        }
    }
    Ok(())
}
