//! Authorization: membership of the VM's team, with viewers read-only.

use vmapi_models::{Role, Team, UserId};

use crate::error::Error;

/// What the caller wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Read.
    Read,
    /// Change.
    Write,
}

/// The caller's role in `team`, if the need is met. A missing team or a non-member gets
/// `hidden` (a 404, so ids cannot be probed); a viewer asking to write gets 403.
pub fn authorize(
    team: Option<&Team>,
    user: &UserId,
    need: Need,
    hidden: impl FnOnce() -> Error,
) -> Result<Role, Error> {
    let Some(role) = team.and_then(|t| t.role_of(user)) else {
        return Err(hidden());
    };
    if need == Need::Write && !role.can_write() {
        return Err(Error::Forbidden(
            "viewers of a team cannot change its virtual machines".into(),
        ));
    }
    Ok(role)
}
