//! Start, stop, reboot and delete: the status changes and the cloud work is left to the
//! provisioner.

use vmapi_models::{ActionResult, EventKind, OpKind, PendingOp, UserId, VmEvent, VmId, VmStatus};

use super::base::Service;
use super::writes::{concurrency_to_conflict, unreachable_conflict, IfMatch, WRITE_ATTEMPTS};
use crate::authz::{not_blocked, Need};
use crate::error::{ConflictCode, Error, NotFoundKind, Result};
use crate::lifecycle::{decide, Action, Decision};
use crate::ports::NameChange;

/// Who acts: a user (authorized by the VM's team) or an administrator (already authenticated
/// by an admin key).
#[derive(Clone, Copy)]
enum Who<'a> {
    User(&'a UserId),
    Admin(&'a str),
}

impl Service {
    /// Starts, stops or deletes a VM as the state table says: the status changes and the cloud
    /// work is left to the provisioner as `pendingOp`, in one conditional write. Three round
    /// trips: read the VM, read its team, write.
    pub async fn act(&self, caller: &UserId, id: VmId, action: Action) -> Result<ActionResult> {
        Ok(self.act_if(caller, id, action, &IfMatch::Any).await?.0)
    }

    /// [`Service::act`] only if the stored version is one `if_match` names; returns the
    /// version after the action too.
    pub async fn act_if(
        &self,
        caller: &UserId,
        id: VmId,
        action: Action,
        if_match: &IfMatch,
    ) -> Result<(ActionResult, u64)> {
        self.act_as(Who::User(caller), id, action, if_match).await
    }

    /// [`Service::act`] by an administrator (no team membership asked; recorded as `actor`).
    pub(super) async fn act_as_admin(
        &self,
        actor: &str,
        id: VmId,
        action: Action,
    ) -> Result<ActionResult> {
        Ok(self
            .act_as(Who::Admin(actor), id, action, &IfMatch::Any)
            .await?
            .0)
    }

    async fn act_as(
        &self,
        who: Who<'_>,
        id: VmId,
        action: Action,
        if_match: &IfMatch,
    ) -> Result<(ActionResult, u64)> {
        for attempt in 1..=WRITE_ATTEMPTS {
            let vm = match who {
                Who::User(caller) => self.load_for(caller, id, Need::Write, |_, _| {}).await?.0,
                Who::Admin(_) => self.live_vm(id).await?,
            };
            if_match.check(id, vm.version)?;
            if action != Action::Delete
                && vm
                    .pending_op
                    .as_ref()
                    .is_some_and(|p| p.op == OpKind::Resize)
            {
                return Err(Error::conflict(
                    ConflictCode::IllegalTransition,
                    format!(
                        "cannot {} virtual machine {id} while it is being resized; wait for the resize to finish",
                        action.verb()
                    ),
                ));
            }
            if matches!(action, Action::Start | Action::Reboot) {
                not_blocked(
                    &vm,
                    if action == Action::Start {
                        "a start"
                    } else {
                        "a reboot"
                    },
                )?;
            }
            // A reboot already pending is not asked twice.
            if action == Action::Reboot
                && vm
                    .pending_op
                    .as_ref()
                    .is_some_and(|p| p.op == OpKind::Reboot)
            {
                return Ok((ActionResult::new(id, vm.status), vm.version));
            }
            let target = match decide(action, vm.status) {
                // A teardown that failed (deleting, nothing pending) is retried by a new delete.
                Decision::NoOp
                    if action == Action::Delete
                        && vm.status == VmStatus::Deleting
                        && vm.pending_op.is_none() =>
                {
                    VmStatus::Deleting
                }
                Decision::NoOp => return Ok((ActionResult::new(id, vm.status), vm.version)),
                Decision::Gone => return Err(Error::not_found(NotFoundKind::Vm, id)),
                Decision::Illegal => {
                    return Err(Error::conflict(
                        ConflictCode::IllegalTransition,
                        format!(
                            "cannot {} virtual machine {id} while it is {} (status {})",
                            action.verb(),
                            vm.status.name(),
                            vm.status.code()
                        ),
                    ))
                }
                Decision::To(status) => status,
            };
            let now = self.clock.now();
            let mut next = vm.clone();
            next.set_status(target, now);
            next.status_reason = None;
            next.pending_op = Some(PendingOp::new(action.op(), now));
            // A delete ends a pending resize (the VM counts the larger size until it goes).
            next.resize_to = None;
            next.updated_at = now;
            next.version = vm.version + 1;
            let names = if target.is_active() {
                NameChange::default()
            } else if vm.status.is_active() {
                // Leaving the active statuses: its name and its quota usage are free at once.
                NameChange::leaving_active(&vm)
            } else {
                // A retried teardown: the VM left the quota when it was first deleted.
                NameChange {
                    release: Some(vm.name.clone()),
                    ..NameChange::default()
                }
            };
            let kind = match action {
                Action::Start => EventKind::Start,
                Action::Stop => EventKind::Stop,
                Action::Reboot => EventKind::Reboot,
                Action::Delete => EventKind::Delete,
            };
            let actor = match who {
                Who::User(caller) => caller.to_string(),
                Who::Admin(actor) => actor.to_string(),
            };
            let event = VmEvent::new(id, now, actor, kind).with_status(target);
            match self
                .repo
                .replace_vm(&next, vm.version, &names, Some(&event))
                .await
            {
                Ok(()) => {
                    tracing::info!(vm = %id, from = %vm.status, to = %target, "virtual machine {}", action.verb());
                    return Ok((ActionResult::new(id, target), next.version));
                }
                Err(Error::VersionConflict) if if_match.is_conditional() => {
                    return Err(if_match.lost(id))
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        unreachable_conflict()
    }
}
