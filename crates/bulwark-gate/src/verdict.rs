//! Judging findings.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Findings, Policy, Waiver};

/// Where in a release's life the gate is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// After the scan, and before a signature is accepted.
    Sign,
    /// Before a promotion beyond the first environment or a deployment
    /// there, with the signatures the release has.
    Promote {
        /// Signatures on the release.
        signatures: u32,
    },
}

/// Pass or block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing blocks.
    Pass,
    /// At least one reason blocks.
    Block,
}

/// One blocking reason (or warning), with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// `vulnerability`, `known_exploited`, `malware`, `private_key`,
    /// `secret`, `unreadable`, `sbom_missing`, `signatures`,
    /// `advisories_empty` or `advisories_stale`.
    pub code: String,
    /// The waiver key that would let it through (empty when none can).
    pub finding: String,
    /// Human explanation with the evidence (component, path, rule).
    pub message: String,
}

/// A finding that would block but a waiver lets through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waived {
    /// The reason it would block.
    pub reason: Reason,
    /// The waiver's id.
    pub waiver: String,
    /// Its reason.
    pub why: String,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Pass or block.
    pub status: Status,
    /// The policy version judged against.
    pub policy_version: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub evaluated_at: OffsetDateTime,
    /// Every blocking reason (empty when passing).
    pub reasons: Vec<Reason>,
    /// Findings waivers let through.
    pub waived: Vec<Waived>,
    /// Counts of the findings, blocking or not.
    pub counts: Counts,
    /// The advisory database the vulnerabilities were matched against
    /// (absent from verdicts stored before it was recorded).
    #[serde(default)]
    pub advisories: Option<AdvisoryState>,
    /// What the gate warns about without blocking: an empty or stale
    /// advisory database the policy does not block on.
    #[serde(default)]
    pub warnings: Vec<Reason>,
}

/// The advisory database as a verdict records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvisoryState {
    /// Advisories stored (withdrawn ones included).
    pub count: u64,
    /// When advisories were last imported, if the database records it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
    /// Seconds from `updated_at` to the verdict (0 when `updated_at` is
    /// later than the verdict).
    #[serde(default)]
    pub age_seconds: Option<u64>,
}

/// What the caller knows about its advisory database, handed to
/// [`evaluate`] with the [`Subject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdvisoryInput {
    /// Advisories stored.
    pub count: u64,
    /// When advisories were last imported (`None`: never, or before the
    /// database recorded it).
    pub updated_at: Option<OffsetDateTime>,
}

/// How many findings of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Components judged.
    pub components: u64,
    /// Vulnerabilities.
    pub vulnerabilities: u64,
    /// Malware hits.
    pub malware: u64,
    /// Secrets.
    pub secrets: u64,
}

/// What is judged: one release's scan at one stage.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `name@version`.
    pub release: &'a str,
    /// How many components its SBOM has.
    pub components: u64,
    /// What its scan found (vulnerabilities matched against the
    /// advisories known now).
    pub findings: &'a Findings,
    /// Where in its life.
    pub stage: Stage,
    /// Why the artifact could not be taken apart, if it could not: such a
    /// release is blocked whatever the policy says, and no waiver applies
    /// (nothing in it was inspected).
    pub unreadable: Option<&'a str>,
    /// The advisory database `findings` were matched against: the verdict
    /// states its size and age, and warns (or, by policy, blocks) when it
    /// is empty or stale.
    pub advisories: AdvisoryInput,
}

/// Judges `subject` against `policy` (of `policy_version`) and the
/// `waivers` in force at `now`.
pub fn evaluate(
    policy: &Policy,
    policy_version: u64,
    subject: Subject<'_>,
    waivers: &[Waiver],
    now: OffsetDateTime,
) -> Verdict {
    let Subject {
        release,
        components,
        findings,
        stage,
        unreadable,
        advisories,
    } = subject;
    let mut blocking: Vec<(Reason, Vec<String>)> = Vec::new();
    for v in &findings.vulnerabilities {
        let mut names = vec![v.id.clone()];
        names.extend(v.aliases.iter().cloned());
        let aka = if v.aliases.is_empty() {
            String::new()
        } else {
            format!(" (aka {})", v.aliases.join(", "))
        };
        let fix = if v.fixed.is_empty() {
            "no fixed version known".to_owned()
        } else {
            format!("fixed in {}", v.fixed.join(", "))
        };
        if policy.block_known_exploited && v.known_exploited {
            blocking.push((
                Reason {
                    code: "known_exploited".into(),
                    finding: v.id.clone(),
                    message: format!(
                        "{}{aka} is known to be exploited; affects {}; {fix}",
                        v.id, v.purl
                    ),
                },
                names,
            ));
        } else {
            let (severity, rated) = if v.is_unscored() {
                (
                    policy.unscored_severity,
                    format!("no score; {} by policy", policy.unscored_severity),
                )
            } else {
                (v.severity, v.severity.to_string())
            };
            if policy.block_severity.is_some_and(|min| severity >= min) {
                blocking.push((
                    Reason {
                        code: "vulnerability".into(),
                        finding: v.id.clone(),
                        message: format!("{}{aka} ({rated}) affects {}; {fix}", v.id, v.purl),
                    },
                    names,
                ));
            }
        }
    }
    if policy.block_malware {
        for m in &findings.malware {
            let removed = if m.removed {
                " (deleted by a later layer, still shipped)"
            } else {
                ""
            };
            blocking.push((
                Reason {
                    code: "malware".into(),
                    finding: m.key(),
                    message: format!(
                        "YARA rule {}.{} matched {}{removed}",
                        m.namespace, m.rule, m.path
                    ),
                },
                vec![m.key()],
            ));
        }
    }
    for s in &findings.secrets {
        let line = s.line.map(|l| format!(":{l}")).unwrap_or_default();
        let code = if s.is_private_key() && policy.block_private_keys {
            "private_key"
        } else if policy
            .block_secret_severity
            .is_some_and(|min| s.severity >= min)
        {
            "secret"
        } else {
            continue;
        };
        blocking.push((
            Reason {
                code: code.into(),
                finding: s.key(),
                message: format!("{} ({}) in {}{line}", s.description, s.kind, s.path),
            },
            vec![s.key()],
        ));
    }
    let mut reasons = Vec::new();
    let mut waived = Vec::new();
    for (reason, names) in blocking {
        let waiver = waivers
            .iter()
            .filter(|w| w.applies(release, now))
            .find(|w| names.contains(&w.finding));
        match waiver {
            Some(w) => waived.push(Waived {
                reason,
                waiver: w.id.clone(),
                why: w.reason.clone(),
                expires_at: w.expires_at,
            }),
            None => reasons.push(reason),
        }
    }
    if let Some(why) = unreadable {
        reasons.push(Reason {
            code: "unreadable".into(),
            finding: String::new(),
            message: format!("the artifact could not be scanned: {why}"),
        });
    }
    if policy.require_sbom && components == 0 {
        reasons.push(Reason {
            code: "sbom_missing".into(),
            finding: String::new(),
            message: "no components: upload an SBOM or publish an artifact whose contents can be inventoried".into(),
        });
    }
    if let Stage::Promote { signatures } = stage
        && signatures < policy.require_signatures
    {
        reasons.push(Reason {
            code: "signatures".into(),
            finding: String::new(),
            message: format!(
                "{signatures} signature(s); the policy requires {}",
                policy.require_signatures
            ),
        });
    }
    let (state, concerns) = judge_advisories(policy, advisories, now);
    let mut warnings = Vec::new();
    for (reason, blocks) in concerns {
        if blocks {
            reasons.push(reason);
        } else {
            warnings.push(reason);
        }
    }
    Verdict {
        status: if reasons.is_empty() {
            Status::Pass
        } else {
            Status::Block
        },
        policy_version,
        evaluated_at: now,
        reasons,
        waived,
        counts: Counts {
            components,
            vulnerabilities: findings.vulnerabilities.len() as u64,
            malware: findings.malware.len() as u64,
            secrets: findings.secrets.len() as u64,
        },
        advisories: Some(state),
        warnings,
    }
}

/// The advisory database's state at `now`, and what the policy says about
/// it: each concern with whether it blocks (no waiver applies to either).
fn judge_advisories(
    policy: &Policy,
    db: AdvisoryInput,
    now: OffsetDateTime,
) -> (AdvisoryState, Vec<(Reason, bool)>) {
    let age_seconds = db
        .updated_at
        .map(|t| u64::try_from((now - t).whole_seconds()).unwrap_or(0));
    let state = AdvisoryState {
        count: db.count,
        updated_at: db.updated_at,
        age_seconds,
    };
    let mut concerns = Vec::new();
    if db.count == 0 {
        concerns.push((
            Reason {
                code: "advisories_empty".into(),
                finding: String::new(),
                message: "the advisory database is empty: no vulnerability can be found \
                          (import an OSV archive with `bulwark advisories import`)"
                    .into(),
            },
            policy.block_without_advisories,
        ));
    } else if let Some(days) = policy.stale_advisories_days {
        let limit = u64::from(days) * 86_400;
        let message = match age_seconds {
            None => Some(
                "the advisory database records no import time (imported by an older \
                 version): import advisories again to date it"
                    .to_owned(),
            ),
            Some(age) if age > limit => Some(format!(
                "the advisory database was last updated {:.1} days ago, more than the \
                 policy's {days}: advisories published since are missed \
                 (import a fresh OSV archive)",
                age as f64 / 86_400.0
            )),
            Some(_) => None,
        };
        if let Some(message) = message {
            concerns.push((
                Reason {
                    code: "advisories_stale".into(),
                    finding: String::new(),
                    message,
                },
                policy.block_stale_advisories,
            ));
        }
    }
    (state, concerns)
}
