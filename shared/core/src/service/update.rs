//! Changes to a VM's fields (name, tags, expiry) and an operator's block.

use vmapi_models::{EventKind, UpdateVmRequest, UserId, VirtualMachine, VmEvent, VmId, VmStatus};

use super::base::Service;
use super::checks::check_expiry;
use super::read::populate;
use super::writes::{concurrency_to_conflict, unreachable_conflict, IfMatch, WRITE_ATTEMPTS};
use crate::authz::{not_blocked, Need};
use crate::error::{ConflictCode, Error, Result};
use crate::ports::NameChange;

impl Service {
    /// Changes `name` and/or `tags`. Three round trips (more only when a concurrent write interferes).
    pub async fn update(
        &self,
        caller: &UserId,
        id: VmId,
        patch: UpdateVmRequest,
    ) -> Result<VirtualMachine> {
        Ok(self.update_if(caller, id, patch, &IfMatch::Any).await?.0)
    }

    /// [`Service::update`] only if the stored version is one `if_match` names (else
    /// `PreconditionFailed`, also when a concurrent write wins); returns the new version too.
    pub async fn update_if(
        &self,
        caller: &UserId,
        id: VmId,
        patch: UpdateVmRequest,
        if_match: &IfMatch,
    ) -> Result<(VirtualMachine, u64)> {
        if patch.name.is_none() && patch.tags.is_none() && patch.expires_at.is_none() {
            return Err(Error::invalid_field(
                "body",
                "nothing to update: give `name`, `tags` and/or `expiresAt`",
            ));
        }
        if let Some(Some(at)) = patch.expires_at {
            check_expiry(at, self.clock.now())?;
        }
        for attempt in 1..=WRITE_ATTEMPTS {
            let (vm, found) = self.load_visible(caller, id, Need::Write).await?;
            if_match.check(id, vm.version)?;
            not_blocked(&vm, "a change")?;
            if vm.status == VmStatus::Deleting {
                return Err(Error::conflict(
                    ConflictCode::IllegalTransition,
                    format!("Virtual machine {id} is being deleted and cannot be changed"),
                ));
            }
            let mut next = vm.clone();
            let mut names = NameChange::default();
            if let Some(name) = &patch.name {
                if name != &vm.name {
                    names.release = Some(vm.name.clone());
                    names.claim = Some(name.clone());
                    next.name = name.clone();
                }
            }
            if let Some(tags) = &patch.tags {
                next.tags = tags.clone();
            }
            if let Some(expires_at) = patch.expires_at {
                next.expires_at = expires_at;
            }
            next.updated_at = self.clock.now();
            next.version = vm.version + 1;
            let changed: Vec<&str> = [
                patch.name.as_ref().map(|_| "name"),
                patch.tags.as_ref().map(|_| "tags"),
                patch.expires_at.as_ref().map(|_| "expiresAt"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let event = VmEvent::new(id, next.updated_at, caller.to_string(), EventKind::Update)
                .with_status(next.status)
                .with_detail(format!("changed {}", changed.join(", ")));
            match self
                .repo
                .replace_vm(&next, vm.version, &names, Some(&event))
                .await
            {
                Ok(()) => return Ok((populate(&next, &found, Some(caller)), next.version)),
                Err(Error::VersionConflict) if if_match.is_conditional() => {
                    return Err(if_match.lost(id))
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }

    /// Blocks or unblocks a VM for an operator or administrator (`actor`, as recorded in its
    /// history); no team membership is checked. Whether anything changed. Two round trips.
    pub async fn set_blocked(&self, id: VmId, blocked: bool, actor: &str) -> Result<bool> {
        for attempt in 1..=WRITE_ATTEMPTS {
            let vm = self.live_vm(id).await?;
            if vm.is_blocked == blocked {
                return Ok(false);
            }
            let mut next = vm.clone();
            next.is_blocked = blocked;
            next.updated_at = self.clock.now();
            next.version = vm.version + 1;
            let kind = if blocked {
                EventKind::Block
            } else {
                EventKind::Unblock
            };
            let event = VmEvent::new(id, next.updated_at, actor, kind).with_status(next.status);
            match self
                .repo
                .replace_vm(&next, vm.version, &NameChange::default(), Some(&event))
                .await
            {
                Ok(()) => {
                    tracing::info!(vm = %id, blocked, actor, "virtual machine block changed");
                    return Ok(true);
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }
}
