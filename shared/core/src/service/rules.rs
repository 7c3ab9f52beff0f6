//! Security-rule use cases: add a rule to a VM, list a VM's rules, remove a rule.
//!
//! A VM's rule set lives in its record. Every change bumps `rulesRevision` and the record's
//! `version` in one conditional write, with the changed rule's pointer item and an event; on a
//! running or stopped VM with nothing pending the same write asks the provisioner to apply the
//! rules (`pendingOp` `apply-rules`). Another pending operation is left alone: the provisioner
//! applies the rules after it, as long as `rulesApplied < rulesRevision`.

use vmapi_models::{
    CloudKind, CreateRuleRequest, EventKind, OpKind, PendingOp, RuleDeleted, SecurityRuleId,
    SecurityRuleView, UserId, VmEvent, VmId, VmRecord, VmStatus,
};

use super::base::{note_team, Service};
use super::writes::{concurrency_to_conflict, WRITE_ATTEMPTS};
use crate::authz::{authorize, Need};
use crate::error::{ConflictCode, Error, FieldError, NotFoundKind, Result};
use crate::ports::{Lookup, RuleChange};

/// The rule set of `vm` after a change made `now`: the next revision, and `apply-rules`
/// pending when the VM is running or stopped with nothing else pending.
fn bump_rules(vm: &VmRecord, next: &mut VmRecord, now: vmapi_models::Timestamp) {
    next.rules_revision = vm.rules_revision + 1;
    if vm.pending_op.is_none() && matches!(vm.status, VmStatus::Running | VmStatus::Stopped) {
        next.pending_op = Some(PendingOp::new(OpKind::ApplyRules, now));
    }
    next.updated_at = now;
    next.version = vm.version + 1;
}

/// Refuses rule changes on a VM that failed or is being deleted.
fn check_changeable(vm: &VmRecord) -> Result<()> {
    if matches!(vm.status, VmStatus::Failed | VmStatus::Deleting) {
        return Err(Error::conflict(
            ConflictCode::IllegalTransition,
            format!(
                "the security rules of virtual machine {} cannot change while it is {} (status {})",
                vm.id,
                vm.status.name(),
                vm.status.code()
            ),
        ));
    }
    Ok(())
}

/// The rules of a VM in list order: inbound first, then by priority.
fn ordered(vm: &VmRecord) -> Vec<SecurityRuleView> {
    let mut rules: Vec<_> = vm.rules.iter().collect();
    rules.sort_by_key(|r| (r.direction != vmapi_models::Direction::Inbound, r.priority));
    rules
        .into_iter()
        .map(|r| r.to_wire(vm.id, vm.rules_applied))
        .collect()
}

impl Service {
    /// Adds a security rule to a VM (for those who may start and stop it). Three round trips:
    /// read the VM, read its team and cloud provider, write.
    pub async fn create_rule(
        &self,
        caller: &UserId,
        req: CreateRuleRequest,
    ) -> Result<SecurityRuleView> {
        let new = req.parse().map_err(|errors| {
            Error::invalid_fields(
                errors
                    .into_iter()
                    .map(|(f, m)| FieldError::new(f, m))
                    .collect(),
            )
        })?;
        let id = new.vm;
        for attempt in 1..=WRITE_ATTEMPTS {
            let (vm, found) = self
                .load_for(caller, id, Need::Write, |vm, lookup| {
                    lookup.cloud_providers.insert(vm.cloud_provider);
                })
                .await?;
            check_changeable(&vm)?;
            crate::authz::not_blocked(&vm, "a security rule change")?;
            let cloud = found
                .cloud_providers
                .get(&vm.cloud_provider)
                .and_then(CloudKind::of);
            if let Some(why) = new.unsupported_on(cloud) {
                return Err(Error::UnsupportedByProvider(why));
            }
            if vm.rules.len() >= vmapi_models::rules::MAX_RULES_PER_VM {
                return Err(Error::conflict(
                    ConflictCode::RuleLimitReached,
                    format!(
                        "virtual machine {id} already has {} security rules, the most it may have; delete one first",
                        vm.rules.len()
                    ),
                ));
            }
            if let Some(other) = vm
                .rules
                .iter()
                .find(|r| r.name.as_str().eq_ignore_ascii_case(new.name.as_str()))
            {
                return Err(Error::conflict(
                    ConflictCode::RuleNameTaken,
                    format!(
                        "virtual machine {id} already has a security rule named '{}' (names are unique per VM, ignoring case)",
                        other.name
                    ),
                ));
            }
            if let Some(p) = new.priority {
                if let Some(other) = vm
                    .rules
                    .iter()
                    .find(|r| r.direction == new.direction && r.priority == p)
                {
                    return Err(Error::conflict(
                        ConflictCode::PriorityTaken,
                        format!(
                            "security rule '{}' of virtual machine {id} already has {:?} priority {p}; choose another or leave priority out for the next free one",
                            other.name, new.direction
                        ),
                    ));
                }
            }
            let now = self.clock.now();
            let revision = vm.rules_revision + 1;
            let rule = new
                .clone()
                .into_rule(&vm.rules, caller, revision, now)
                .ok_or_else(|| {
                    Error::conflict(
                        ConflictCode::RuleLimitReached,
                        format!(
                            "virtual machine {id} has no free {:?} priority left",
                            new.direction
                        ),
                    )
                })?;
            let mut next = vm.clone();
            next.rules.push(rule.clone());
            bump_rules(&vm, &mut next, now);
            let event = VmEvent::new(id, now, caller.to_string(), EventKind::RuleCreate)
                .with_status(next.status)
                .with_detail(rule.name.to_string());
            match self
                .repo
                .replace_vm_rules(&next, vm.version, RuleChange::Added(rule.id), &event)
                .await
            {
                Ok(()) => {
                    tracing::info!(vm = %id, rule = %rule.id, revision = next.rules_revision, "security rule created");
                    return Ok(rule.to_wire(id, next.rules_applied));
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        Err(concurrency_to_conflict(Error::VersionConflict))
    }

    /// A VM's security rules, inbound first, then by priority. Everyone who may read the VM
    /// may list them. Two round trips.
    pub async fn list_rules(&self, caller: &UserId, id: VmId) -> Result<Vec<SecurityRuleView>> {
        let (vm, _) = self.load_visible(caller, id, Need::Read).await?;
        Ok(ordered(&vm))
    }

    /// Removes a security rule (for those who may start and stop its VM). Three round trips:
    /// read the rule's pointer, read its VM with the VM's team, write.
    pub async fn delete_rule(&self, caller: &UserId, rule: SecurityRuleId) -> Result<RuleDeleted> {
        let hidden = || Error::not_found(NotFoundKind::SecurityRule, rule);
        let owner = self.repo.rule_owner(rule).await?.ok_or_else(hidden)?;
        let mut lookup = Lookup::default();
        lookup.teams.insert(owner.team);
        for attempt in 1..=WRITE_ATTEMPTS {
            let (vm, found) = self.repo.get_vm_with(owner.vm, &lookup).await?;
            let vm = vm
                .filter(|vm| vm.status != VmStatus::Deleted)
                .ok_or_else(hidden)?;
            note_team(&vm);
            authorize(found.teams.get(&vm.team), caller, Need::Write, hidden)?;
            let Some(pos) = vm.rules.iter().position(|r| r.id == rule) else {
                return Err(hidden());
            };
            check_changeable(&vm)?;
            crate::authz::not_blocked(&vm, "a security rule change")?;
            let now = self.clock.now();
            let mut next = vm.clone();
            let removed = next.rules.remove(pos);
            bump_rules(&vm, &mut next, now);
            let event = VmEvent::new(vm.id, now, caller.to_string(), EventKind::RuleDelete)
                .with_status(next.status)
                .with_detail(removed.name.to_string());
            match self
                .repo
                .replace_vm_rules(&next, vm.version, RuleChange::Removed(rule), &event)
                .await
            {
                Ok(()) => {
                    tracing::info!(vm = %vm.id, rule = %rule, revision = next.rules_revision, "security rule deleted");
                    return Ok(RuleDeleted {
                        message: "Security rule deleted".into(),
                        rule_id: rule,
                        vm_id: vm.id,
                    });
                }
                Err(Error::VersionConflict) if attempt < WRITE_ATTEMPTS => continue,
                Err(e) => return Err(concurrency_to_conflict(e)),
            }
        }
        Err(concurrency_to_conflict(Error::VersionConflict))
    }
}
