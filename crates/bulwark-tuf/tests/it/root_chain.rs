//! [`chain_root`]: establishing a current root from a pinned one, as a
//! release signer does before trusting what a server says is published.
//! Hostile chains a compromised server could hand over, each refused with
//! the right `UpdateError::kind`, and honest rotations accepted. Keys are
//! generated per test; nothing touches the network, the disk or the clock.

use bulwark_tuf::{Metadata, Root, SigningKey, UpdateError, chain_root};
use time::OffsetDateTime;
use time::macros::datetime;

const EXPIRES: OffsetDateTime = datetime!(2030-01-01 0:00 UTC);
/// Long past: the chain is checked without a clock.
const EXPIRED: OffsetDateTime = datetime!(2001-01-01 0:00 UTC);

fn key() -> SigningKey {
    SigningKey::generate_ed25519().unwrap().0
}

/// Version 1 with `root_keys` (threshold `threshold`) and one key for the
/// other roles.
fn root_v1(root_keys: &[&SigningKey], threshold: u64) -> Root {
    let mut root = Root::new(EXPIRES);
    for k in root_keys {
        root.add_key("root", k.public().clone());
    }
    root.set_threshold("root", threshold);
    let other = key();
    for role in ["timestamp", "snapshot", "targets"] {
        root.add_key(role, other.public().clone());
    }
    root
}

fn signed(root: &Root, keys: &[&SigningKey]) -> Metadata<Root> {
    let mut md = Metadata::new(root.clone());
    for k in keys {
        md.sign(k).unwrap();
    }
    // As received from a server: parsed from bytes.
    Metadata::from_slice(&md.to_vec().unwrap()).unwrap()
}

/// `root` as the next version with its root key `old` replaced by `new`.
fn rotated(root: &Root, old: &SigningKey, new: &SigningKey) -> Root {
    let mut next = root.clone();
    next.version += 1;
    next.revoke_key("root", &old.key_id());
    next.add_key("root", new.public().clone());
    next
}

#[track_caller]
fn assert_refused(result: Result<Metadata<Root>, UpdateError>, kind: &str, needle: &str) {
    match result {
        Ok(md) => panic!(
            "expected a {kind} error, got root version {}",
            md.signed().version
        ),
        Err(e) => {
            assert_eq!(e.kind(), kind, "unexpected error: {e}");
            let text = e.to_string();
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
        }
    }
}

#[test]
fn no_newer_roots_gives_the_trusted_one() {
    let k = key();
    let v1 = signed(&root_v1(&[&k], 1), &[&k]);
    let current = chain_root(&v1, &[]).unwrap();
    assert_eq!(current.signed_bytes().unwrap(), v1.signed_bytes().unwrap());
}

#[test]
fn honest_rotations_are_followed_even_through_expired_roots() {
    let (k1, k2, k3) = (key(), key(), key());
    let mut r1 = root_v1(&[&k1], 1);
    r1.expires = EXPIRED;
    let v1 = signed(&r1, &[&k1]);
    let mut r2 = rotated(&r1, &k1, &k2);
    r2.expires = EXPIRED;
    let v2 = signed(&r2, &[&k1, &k2]);
    let mut r3 = rotated(&r2, &k2, &k3);
    r3.expires = EXPIRES;
    // Version 3 also raises the targets threshold: what the signer trusts
    // is version 3's roles.
    let t = key();
    r3.add_key("targets", t.public().clone());
    r3.set_threshold("targets", 2);
    let v3 = signed(&r3, &[&k2, &k3]);
    let current = chain_root(&v1, &[v2, v3.clone()]).unwrap();
    assert_eq!(current.signed().version, 3);
    assert_eq!(current.signed_bytes().unwrap(), v3.signed_bytes().unwrap());
    assert_eq!(current.signed().roles["targets"].threshold, 2);
}

#[test]
fn the_pinned_root_must_be_signed_by_itself() {
    let (k, stranger) = (key(), key());
    let r1 = root_v1(&[&k], 1);
    assert_refused(
        chain_root(&signed(&r1, &[&stranger]), &[]),
        "threshold",
        "trusted root",
    );
    assert_refused(
        chain_root(&signed(&r1, &[]), &[]),
        "threshold",
        "trusted root",
    );
}

/// A server's own root, signed only by keys it holds: the new root keys
/// sign, the pinned root's do not.
#[test]
fn a_root_signed_only_by_its_own_new_keys_is_refused() {
    let (k1, attacker) = (key(), key());
    let r1 = root_v1(&[&k1], 1);
    let v1 = signed(&r1, &[&k1]);
    let r2 = rotated(&r1, &k1, &attacker);
    assert_refused(
        chain_root(&v1, &[signed(&r2, &[&attacker])]),
        "threshold",
        "signed by trusted root",
    );
}

#[test]
fn a_root_from_another_repository_is_refused() {
    let (ours, theirs) = (key(), key());
    let v1 = signed(&root_v1(&[&ours], 1), &[&ours]);
    let mut other = root_v1(&[&theirs], 1);
    other.version = 2;
    assert_refused(
        chain_root(&v1, &[signed(&other, &[&theirs])]),
        "threshold",
        "signed by trusted root",
    );
}

#[test]
fn a_newer_root_needs_the_old_threshold_not_one_old_key() {
    let (a, b, c) = (key(), key(), key());
    let r1 = root_v1(&[&a, &b], 2);
    let v1 = signed(&r1, &[&a, &b]);
    let mut r2 = rotated(&r1, &b, &c);
    r2.set_threshold("root", 1);
    // One of the two old keys and the new one: the old root asked for two.
    assert_refused(
        chain_root(&v1, &[signed(&r2, &[&a, &c])]),
        "threshold",
        "signed by trusted root",
    );
    // Both old keys: accepted (version 2's own threshold, 1, is met by a).
    let current = chain_root(&v1, &[signed(&r2, &[&a, &b])]).unwrap();
    assert_eq!(current.signed().version, 2);
}

#[test]
fn a_newer_root_needs_its_own_threshold_too() {
    let (k1, k2) = (key(), key());
    let r1 = root_v1(&[&k1], 1);
    let v1 = signed(&r1, &[&k1]);
    let r2 = rotated(&r1, &k1, &k2);
    assert_refused(
        chain_root(&v1, &[signed(&r2, &[&k1])]),
        "threshold",
        "signed by itself",
    );
}

#[test]
fn a_skipped_version_is_refused() {
    let k = key();
    let r1 = root_v1(&[&k], 1);
    let v1 = signed(&r1, &[&k]);
    let mut r3 = r1.clone();
    r3.version = 3;
    assert_refused(
        chain_root(&v1, &[signed(&r3, &[&k])]),
        "mix-and-match",
        "says version 2",
    );
    // Also after a valid step.
    let mut r2 = r1.clone();
    r2.version = 2;
    let mut r4 = r1;
    r4.version = 4;
    assert_refused(
        chain_root(&v1, &[signed(&r2, &[&k]), signed(&r4, &[&k])]),
        "mix-and-match",
        "root is version 4",
    );
}

#[test]
fn a_version_going_back_is_refused() {
    let k = key();
    let r1 = root_v1(&[&k], 1);
    let v1 = signed(&r1, &[&k]);
    let mut r2 = r1.clone();
    r2.version = 2;
    let v2 = signed(&r2, &[&k]);
    // 2 then 1 again, and the same version twice (another root 1).
    assert_refused(
        chain_root(&v1, &[v2.clone(), v1.clone()]),
        "rollback",
        "version 1 is lower than trusted version 2",
    );
    let mut other1 = r1;
    other1.expires = datetime!(2031-01-01 0:00 UTC);
    assert_refused(
        chain_root(&v1, &[signed(&other1, &[&k])]),
        "rollback",
        "version 1 is lower than trusted version 1",
    );
    // Pinned at 2, handed 1: refused too.
    assert_refused(chain_root(&v2, &[v1]), "rollback", "rollback refused");
}

/// The old keys can sign anything: a root replacing every key in one step
/// is valid only when the new keys sign it as well.
#[test]
fn a_full_key_replacement_needs_both_sets() {
    let (old, new) = (key(), key());
    let r1 = root_v1(&[&old], 1);
    let v1 = signed(&r1, &[&old]);
    let r2 = rotated(&r1, &old, &new);
    assert_refused(
        chain_root(&v1, &[signed(&r2, &[&old])]),
        "threshold",
        "signed by itself",
    );
    let current = chain_root(&v1, &[signed(&r2, &[&new, &old])]).unwrap();
    assert_eq!(current.signed().roles["root"].keyids, vec![new.key_id()]);
}
