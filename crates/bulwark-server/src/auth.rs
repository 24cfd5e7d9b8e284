//! API authentication (bearer tokens) and authorization (roles).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use bulwark_proto::JournalActor;
use bulwark_store::{Account, Audit, Role};

use crate::error::ApiError;
use crate::state::AppState;

/// Declares [`Permission`] and, for each of its values, a type in
/// [`need`] for `Authorized<need::…>`: one list, so the two cannot drift.
macro_rules! permissions {
    ($($(#[doc = $doc:literal])* $p:ident,)*) => {
        /// Something an API call may need permission for.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Permission {
            $($(#[doc = $doc])* $p,)*
        }

        /// One type per [`Permission`], for `Authorized<need::…>`.
        pub(crate) mod need {
            $(
                #[doc = concat!("[`Permission::", stringify!($p), "`].")]
                #[derive(Debug)]
                pub(crate) struct $p;
                impl super::Needs for $p {
                    const PERMISSION: super::Permission = super::Permission::$p;
                }
            )*
        }
    };
}

permissions! {
    /// Read devices, tokens of one's own, the fleet's state.
    ReadFleet,
    /// Create and revoke one's own API tokens.
    ManageOwnTokens,
    /// Tag devices.
    ManageDevices,
    /// Revoke devices.
    RevokeDevices,
    /// Create enrollment tokens.
    ManageEnrollment,
    /// Create accounts, see and revoke anyone's tokens.
    ManageAccounts,
    /// Upload blobs, create, sign and promote releases, manage the image
    /// repository's root.
    ManageReleases,
    /// Deploy promoted releases to groups.
    Deploy,
    /// Import advisories (and known-exploited catalogs).
    ManageAdvisories,
    /// Change the gate policy, add and revoke waivers.
    ManageGate,
    /// Apply detection profiles.
    ManageProfiles,
    /// Quarantine devices and release them.
    QuarantineDevices,
    /// Add and remove alert webhooks.
    ManageWebhooks,
}

/// A [`Permission`] named as a type, for [`Authorized`].
pub(crate) trait Needs {
    /// The permission.
    const PERMISSION: Permission;
}

/// The role → permission policy, in one place.
pub fn allows(role: Role, p: Permission) -> bool {
    use Permission::*;
    match (role, p) {
        (Role::Admin, _) => true,
        (_, ReadFleet | ManageOwnTokens) => true,
        (Role::Operator, ManageDevices | RevokeDevices | ManageEnrollment) => true,
        (Role::Operator, Deploy) => true,
        (Role::ReleaseManager, ManageReleases | Deploy) => true,
        (Role::Security, RevokeDevices | ManageAdvisories | ManageGate) => true,
        (Role::Security, ManageProfiles | QuarantineDevices | ManageWebhooks) => true,
        (Role::Operator, QuarantineDevices) => true,
        (Role::ReleaseManager, ManageAdvisories) => true,
        (Role::Operator | Role::Security | Role::ReleaseManager | Role::Viewer, _) => false,
    }
}

/// A caller whose role allows `P`, as an extractor: authentication and
/// authorization run before the body is read, so a caller without the
/// permission gets 403 for any body (it learns nothing from a 400, and no
/// large body is parsed on its behalf).
#[derive(Debug)]
pub(crate) struct Authorized<P>(pub(crate) Caller, pub(crate) std::marker::PhantomData<P>);

impl<P: Needs + Send> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(P::PERMISSION)?;
        Ok(Self(caller, std::marker::PhantomData))
    }
}

/// The authenticated caller of an API request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Its account.
    pub account: Account,
    /// The token it used.
    pub token_id: String,
    /// The request id (`x-request-id`).
    pub request_id: Option<String>,
    /// The client's address.
    pub source: Option<String>,
}

impl Caller {
    /// The journal context of a change this caller makes at `time`.
    pub fn audit(&self, time: time::OffsetDateTime) -> Audit {
        Audit {
            time,
            actor: JournalActor {
                kind: "account".into(),
                id: self.account.id.clone(),
                name: Some(self.account.name.clone()),
                token_id: Some(self.token_id.clone()),
            },
            request_id: self.request_id.clone(),
            source: self.source.clone(),
        }
    }

    /// Fails with 403 unless the caller's role allows `p`.
    pub fn require(&self, p: Permission) -> Result<(), ApiError> {
        if allows(self.account.role, p) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not do this ({p:?})",
                self.account.role
            )))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthenticated)?;
        let text = header
            .strip_prefix("Bearer ")
            .ok_or(ApiError::Unauthenticated)?;
        let (account, token_id) = state.accounts().authenticate(text).await?;
        Ok(Caller {
            account,
            token_id,
            request_id: request_id(parts),
            source: source(parts),
        })
    }
}

/// The request id the `observe` middleware assigned.
pub(crate) fn request_id(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<crate::http::RequestId>()
        .map(|r| r.0.clone())
}

/// The peer address, when the listener recorded it.
pub(crate) fn source(parts: &Parts) -> Option<String> {
    if let Some(c) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(c.0.to_string());
    }
    parts
        .extensions
        .get::<crate::http::DeviceConn>()
        .map(|c| c.peer.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_table() {
        let rows: Vec<String> = Role::ALL
            .iter()
            .map(|r| {
                let perms = [
                    Permission::ReadFleet,
                    Permission::ManageOwnTokens,
                    Permission::ManageDevices,
                    Permission::RevokeDevices,
                    Permission::ManageEnrollment,
                    Permission::ManageAccounts,
                    Permission::ManageReleases,
                    Permission::Deploy,
                ];
                let cells: String = perms
                    .iter()
                    .map(|p| if allows(*r, *p) { 'x' } else { '.' })
                    .collect();
                format!("{r:<16}{cells}")
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                "admin           xxxxxxxx",
                "operator        xxxxx..x",
                "release-manager xx....xx",
                "security        xx.x....",
                "viewer          xx......",
            ]
        );
    }
}
