//! The root-rotation rule (specification section 5.3), without I/O: the
//! [`Updater`](crate::Updater) walks it over fetched files, and
//! [`chain_root`] applies it to roots the caller already has (a signer
//! establishing the server's current root from the one it pinned).

use crate::{Metadata, Role, Root, UpdateError};

/// One step of the rule: `new` replaces `trusted` if a threshold of
/// `trusted`'s root keys signed it, its version is exactly
/// `trusted.version + 1` and a threshold of its own root keys signed it.
/// Expiry is not checked: an expired root may still lead to a newer one.
///
/// The checks run in this order (the first failure is the error), as in
/// python-tuf's `ngclient`: the old threshold
/// ([`UpdateError::Threshold`]), then the version: not newer is
/// [`UpdateError::Rollback`], newer but not the next is
/// [`UpdateError::VersionMismatch`] naming `source_of_truth` as the origin
/// of the expected version; then the new threshold
/// ([`UpdateError::Threshold`]).
pub(crate) fn next_root(
    trusted: &Metadata<Root>,
    new: &Metadata<Root>,
    source_of_truth: &'static str,
) -> Result<(), UpdateError> {
    let trusted_version = trusted.signed().version;
    trusted
        .signed()
        .verify_role("root", new)
        .map_err(|source| UpdateError::Threshold {
            role: "root (signed by trusted root)".to_owned(),
            version: new.signed().version(),
            source,
        })?;
    let got = new.signed().version;
    if got <= trusted_version {
        return Err(UpdateError::Rollback {
            role: "root".to_owned(),
            trusted: trusted_version,
            new: got,
        });
    }
    if got != trusted_version + 1 {
        return Err(UpdateError::VersionMismatch {
            role: "root".to_owned(),
            expected: trusted_version + 1,
            got,
            source_of_truth,
        });
    }
    new.signed()
        .verify_role("root", new)
        .map_err(|source| UpdateError::Threshold {
            role: "root (signed by itself)".to_owned(),
            version: got,
            source,
        })?;
    Ok(())
}

/// Establishes the newest root reachable from `trusted` through `newer`,
/// by the root-rotation rule: `trusted` must be signed by a threshold of
/// its own root keys, and each root in `newer`, in order, must be signed by
/// a threshold of the root keys of the one before it AND by a threshold of
/// its own, with the version after it: versions are consecutive and never
/// go back. Returns the last root of `newer` (a copy of `trusted` when
/// `newer` is empty).
///
/// No clock is read and expiry is not checked, neither for intermediate
/// roots (an expired root may still lead to a newer one, as for a device)
/// nor for the result: whether an expired current root is acceptable is
/// the caller's decision. Nothing checks that the result is the *newest*
/// root either: a server may withhold newer versions (a freeze), which the
/// result's expiry bounds.
///
/// # Errors
///
/// The first broken rule, as an [`UpdateError`]:
/// [`UpdateError::Threshold`] when `trusted` is not signed by itself, or a
/// root is not signed by the previous root's threshold (`role` says
/// `signed by trusted root`) or by its own (`signed by itself`);
/// [`UpdateError::Rollback`] when a version is not newer than the previous
/// one; [`UpdateError::VersionMismatch`] when it skips versions.
/// [`UpdateError::kind`] is `threshold`, `rollback` or `mix-and-match`.
///
/// # Example
///
/// ```
/// use bulwark_tuf::{Metadata, Root, SigningKey, chain_root};
/// use time::macros::datetime;
///
/// let (old, _) = SigningKey::generate_ed25519()?;
/// let (new, _) = SigningKey::generate_ed25519()?;
/// let mut root = Root::new(datetime!(2030-01-01 0:00 UTC));
/// for role in ["root", "timestamp", "snapshot", "targets"] {
///     root.add_key(role, old.public().clone());
/// }
/// let mut v1 = Metadata::new(root.clone());
/// v1.sign(&old)?;
/// // Version 2 replaces the root key: signed by the old key and the new one.
/// root.version = 2;
/// root.revoke_key("root", &old.key_id());
/// root.add_key("root", new.public().clone());
/// let mut v2 = Metadata::new(root);
/// v2.sign(&old)?;
/// v2.sign(&new)?;
/// let current = chain_root(&v1, &[v2]).expect("a valid rotation");
/// assert_eq!(current.signed().version, 2);
/// # Ok::<(), bulwark_tuf::Error>(())
/// ```
pub fn chain_root(
    trusted: &Metadata<Root>,
    newer: &[Metadata<Root>],
) -> Result<Metadata<Root>, UpdateError> {
    trusted
        .signed()
        .verify_role("root", trusted)
        .map_err(|source| UpdateError::Threshold {
            role: "trusted root".to_owned(),
            version: trusted.signed().version,
            source,
        })?;
    let mut current = trusted;
    for new in newer {
        next_root(current, new, "the previous root's version + 1")?;
        current = new;
    }
    Ok(current.clone())
}
