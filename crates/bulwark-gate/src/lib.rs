//! The release gate: policy, waivers and verdicts.
//!
//! A release's scan yields [`Findings`]: vulnerabilities (OSV matches of its
//! components), malware (YARA hits) and secrets. [`evaluate`] judges them
//! against a [`Policy`] and the [`Waiver`]s in force at a given time and
//! returns a [`Verdict`] that lists every blocking reason with its
//! evidence, and every finding a waiver let through.
//!
//! A verdict also states what it was judged with: the size and age of the
//! advisory database ([`AdvisoryState`]). An empty or stale database is a
//! warning, or a blocking reason when the policy says so; no waiver lets
//! either through.
//!
//! Everything here is pure: the time is an argument, so a waiver's expiry
//! is tested without waiting, and the server re-evaluates a stored scan
//! whenever the policy, the waivers or the advisories change.

mod finding;
mod policy;
mod verdict;

pub use finding::{Findings, MalwareFinding, SecretFinding, Severity, VulnerabilityFinding};
pub use policy::{DEFAULT_STALE_ADVISORIES_DAYS, Policy, PolicyError, Waiver, WaiverError};
pub use verdict::{
    AdvisoryInput, AdvisoryState, Counts, Reason, Stage, Status, Subject, Verdict, Waived, evaluate,
};
