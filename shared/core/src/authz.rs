//! Authorization: membership of the VM's team, with viewers read-only; a blocked VM only
//! read, stopped or deleted.

use vmapi_models::{Role, Team, UserId, VmRecord};

use crate::error::{ConflictCode, Error};

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

/// Refuses what a blocked VM may not have (409 `VM_BLOCKED`): anything but being read, stopped
/// or deleted. `what` names the refused request ("a start", "reading its credentials").
pub fn not_blocked(vm: &VmRecord, what: &str) -> Result<(), Error> {
    if vm.is_blocked {
        return Err(Error::conflict(
            ConflictCode::VmBlocked,
            format!(
                "virtual machine {} is blocked by an administrator: it may be stopped or deleted, but {what} is refused",
                vm.id
            ),
        ));
    }
    Ok(())
}
