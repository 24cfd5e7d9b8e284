//! Audit-journal benchmarks: durable appends, proof generation, offline
//! verification.
//!
//! - **Appends.** Entries are appended to a fresh SQLite store (WAL,
//!   `synchronous=NORMAL`: durable across a process crash; see
//!   `tests/it/cli.rs` for the SIGKILL test) through `Store::append_journal`,
//!   exactly as the server's engines do, in batches of 1, 100 and 1000
//!   entries per transaction. Each entry costs one journal row and, on
//!   average, two Merkle node rows.
//! - **Proofs.** Inclusion and consistency proofs over an in-memory tree of
//!   10M leaves (the pure cost), and inclusion proofs served from the SQLite
//!   journal of the append run (node lookups included).
//! - **Verification.** `bulwark_audit::verify` over 1M generated entries with
//!   a signed checkpoint every 10,000: every entry decoded, checked
//!   canonical and rehashed, every signature checked.

use std::process::ExitCode;
use std::time::Instant;

use bulwark_audit::{Evidence, EvidenceEntry};
use bulwark_proto::{JournalActor, JournalEntry};
use bulwark_tlog::{Checkpoint, CompactRange, MemoryTree, NoteSigner, leaf_hash};

/// Arguments of `bulwark-bench journal`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct JournalArgs {
    /// Small run: 40k appends, 1M-leaf tree, 100k-entry verification.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Print only the markdown table on stdout.
    #[arg(long)]
    pub(crate) markdown: bool,
}

fn entry(i: u64) -> JournalEntry {
    JournalEntry {
        time_ms: 1_795_000_000_000 + i as i64,
        actor: JournalActor {
            kind: "account".into(),
            id: "7f068dc882c74ec0944e7a9afe9ce6bf".into(),
            name: Some("ana".into()),
            token_id: Some("28d946f838a17c40".into()),
        },
        action: "device.tag".into(),
        target: format!("device:{:08x}-0000-4000-8000-000000000000", i),
        request_id: Some(format!("{i:032x}")),
        source: Some("127.0.0.1:54321".into()),
        before: Some("ab".repeat(32)),
        after: Some("cd".repeat(32)),
        detail: [("tags".to_owned(), "site=berlin".to_owned())]
            .into_iter()
            .collect(),
    }
}

/// A small deterministic generator for benchmark indices (not security).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

struct Row {
    name: String,
    size: u64,
    result: String,
    target: &'static str,
}

pub(crate) async fn run(args: JournalArgs) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    let appends: u64 = if args.quick { 40_000 } else { 200_000 };
    let tree_size: u64 = if args.quick { 1_000_000 } else { 10_000_000 };
    let verify_size: u64 = if args.quick { 100_000 } else { 1_000_000 };

    // 1. Durable appends into SQLite.
    let dir = tempfile::tempdir()?;
    let store = bulwark_store::open(&format!(
        "sqlite://{}",
        dir.path().join("journal.db").display()
    ))
    .await?;
    let mut next = 0u64;
    for (batch, count) in [(1u64, 2_000u64), (100, appends / 2), (1_000, appends)] {
        let entries: Vec<JournalEntry> = (next..next + count).map(entry).collect();
        next += count;
        eprintln!("journal: appending {count} entries in batches of {batch}…");
        let t = Instant::now();
        for chunk in entries.chunks(batch as usize) {
            store.append_journal(chunk).await?;
        }
        let secs = t.elapsed().as_secs_f64();
        rows.push(Row {
            name: format!("journal: durable appends, SQLite, {batch} per transaction"),
            size: count,
            result: format!("{:.0} entries/s", count as f64 / secs),
            target: if batch == 1_000 {
                "≥ 100000 entries/s"
            } else {
                "-"
            },
        });
    }

    // 2a. Store-backed inclusion proofs (node lookups in SQLite).
    let (size, root) = store.journal_root().await?;
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let n_proofs = 2_000u64;
    let t = Instant::now();
    for _ in 0..n_proofs {
        let index = rng.below(size);
        let keys =
            bulwark_tlog::nodes_needed(|src| bulwark_tlog::inclusion_proof(index, size, src))?;
        let nodes = store.journal_nodes(&keys).await?;
        let map: std::collections::HashMap<(u8, u64), bulwark_tlog::Hash> = keys
            .into_iter()
            .zip(nodes)
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let proof = bulwark_tlog::inclusion_proof(index, size, &map)?;
        std::hint::black_box(&proof);
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / n_proofs as f64;
    rows.push(Row {
        name: "journal: inclusion proof from the SQLite journal (node lookups)".into(),
        size,
        result: format!("{per:.1} µs/proof"),
        target: "-",
    });
    let _ = root;

    // 2b. Pure proof generation over a large tree.
    eprintln!("journal: building a {tree_size}-leaf tree in memory…");
    let mut tree = MemoryTree::new();
    for i in 0..tree_size {
        tree.append(leaf_hash(&i.to_be_bytes()));
    }
    let n_proofs = 200_000u64;
    let t = Instant::now();
    for _ in 0..n_proofs {
        let proof = bulwark_tlog::inclusion_proof(rng.below(tree_size), tree_size, &tree)?;
        std::hint::black_box(&proof);
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / n_proofs as f64;
    rows.push(Row {
        name: "journal: inclusion proof generation (in memory)".into(),
        size: tree_size,
        result: format!("{per:.2} µs/proof"),
        target: "< 50 µs at 10M entries",
    });
    let t = Instant::now();
    for _ in 0..n_proofs {
        let old = 1 + rng.below(tree_size - 1);
        let proof = bulwark_tlog::consistency_proof(old, tree_size, &tree)?;
        std::hint::black_box(&proof);
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / n_proofs as f64;
    rows.push(Row {
        name: "journal: consistency proof generation (in memory)".into(),
        size: tree_size,
        result: format!("{per:.2} µs/proof"),
        target: "-",
    });
    drop(tree);

    // 3. Full offline verification.
    eprintln!("journal: generating {verify_size} entries for verification…");
    let signer = NoteSigner::new("bench.invalid/journal", &[9; 32])?;
    let mut cr = CompactRange::new();
    let mut evidence = Evidence::default();
    for i in 0..verify_size {
        let raw = entry(i).to_canonical();
        cr.append(leaf_hash(&raw));
        evidence.entries.push(EvidenceEntry {
            seq: i,
            recorded_leaf_hash: None,
            raw,
        });
        if cr.size().is_multiple_of(10_000) || cr.size() == verify_size {
            evidence.checkpoints.push(
                Checkpoint::new("bench.invalid/journal", cr.size(), cr.root()).sign(&signer)?,
            );
        }
    }
    let t = Instant::now();
    let report = bulwark_audit::verify(
        &evidence,
        &signer.verifier(),
        evidence.checkpoints.first().map(String::as_str),
    )
    .map_err(|e| anyhow::anyhow!("verification failed: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        report.size == verify_size,
        "verified {} of {verify_size}",
        report.size
    );
    rows.push(Row {
        name: format!(
            "journal: full offline verification ({} signed checkpoints)",
            report.checkpoints
        ),
        size: verify_size,
        result: format!("{secs:.2} s ({:.0} entries/s)", verify_size as f64 / secs),
        target: "-",
    });

    let header = "| benchmark | entries | result | target |\n|---|---|---|---|";
    let body: Vec<String> = rows
        .iter()
        .map(|r| format!("| {} | {} | {} | {} |", r.name, r.size, r.result, r.target))
        .collect();
    if !args.markdown {
        println!(
            "machine: {} CPUs ({})",
            crate::stats::cpus(),
            crate::stats::cpu_model()
        );
    }
    println!("{header}\n{}", body.join("\n"));
    Ok(ExitCode::SUCCESS)
}
