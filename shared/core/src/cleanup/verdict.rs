//! What becomes of one stale VM: the verdict, carrying it out, and the record of it.

use std::time::Duration;

use vmapi_models::{
    EventKind, OpKind, PendingOp, StaleCategory, Timestamp, VmEvent, VmId, VmRecord, VmStatus,
};

use super::base::{ago, Cleanup};
use crate::error::{Error, ErrorChain, Result};
use crate::ports::{Lookup, NameChange};

/// What to do with one candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Skip,
    Repair,
    Delete(String),
    Purge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Done {
    Skipped,
    Repaired,
    Deleted,
    Purged,
    Failed,
}

/// What a verdict means for `vm`, in a summary line; `None` when nothing is to be done.
pub(super) fn verdict_action(verdict: &Verdict, vm: &VmRecord) -> Option<String> {
    Some(match verdict {
        Verdict::Skip => return None,
        Verdict::Repair => format!(
            "repair the stuck {} ({})",
            vm.pending_op.as_ref().map_or("status", |p| p.op.name()),
            vm.status.name()
        ),
        Verdict::Delete(why) => format!("delete: {why}"),
        Verdict::Purge => "purge the deleted record".into(),
    })
}

/// The next record of a VM whose operation is stuck: the pending operation re-armed (a new
/// one for its status when the stream record was lost, e.g. to the dead-letter queue), its
/// attempt counted and its version bumped, so the write is fresh and the stream wakes the
/// provisioner. Written with a condition on `vm.version` (the cleanup job's repair and
/// `vmctl vms retry`).
pub(crate) fn rearmed(vm: &VmRecord, now: Timestamp) -> VmRecord {
    let mut next = vm.clone();
    if next.pending_op.is_none() {
        next.pending_op = Some(PendingOp::new(rearm_op(vm.status), now));
    }
    if let Some(p) = next.pending_op.as_mut() {
        p.attempt += 1;
    }
    next.version = vm.version + 1;
    next
}

/// The operation a transitional status without one needs.
fn rearm_op(status: VmStatus) -> OpKind {
    match status {
        VmStatus::Starting => OpKind::Start,
        VmStatus::Stopping => OpKind::Stop,
        VmStatus::Deleting => OpKind::Delete,
        _ => OpKind::Create,
    }
}

impl Cleanup {
    /// Decides and (unless dry) carries out what one VM needs.
    pub(super) async fn handle(&self, id: VmId, now: Timestamp) -> (Done, String) {
        match self.try_handle(id, now).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(vm = %id, error = %ErrorChain(&e), "cleanup could not handle the VM; the next run retries");
                (Done::Failed, format!("failed: {}", ErrorChain(&e)))
            }
        }
    }

    async fn try_handle(&self, id: VmId, now: Timestamp) -> Result<(Done, String)> {
        let Some(vm) = self.repo.get_vm(id).await? else {
            return Ok((Done::Skipped, "gone".into()));
        };
        let verdict = self.verdict(&vm, now).await?;
        let Some(what) = verdict_action(&verdict, &vm) else {
            return Ok((Done::Skipped, "healthy".into()));
        };
        if self.policy.dry_run {
            tracing::info!(vm = %id, action = %what, "cleanup (dry run): would act");
            return Ok((
                match verdict {
                    Verdict::Repair => Done::Repaired,
                    Verdict::Purge => Done::Purged,
                    _ => Done::Deleted,
                },
                format!("would {what}"),
            ));
        }
        let done = match verdict {
            Verdict::Skip => Done::Skipped,
            Verdict::Purge => match self.repo.purge_vm(id, vm.version).await {
                Ok(()) => Done::Purged,
                Err(Error::VersionConflict) => {
                    return Ok((Done::Skipped, "changed meanwhile".into()))
                }
                Err(e) => return Err(e),
            },
            Verdict::Repair => {
                let next = rearmed(&vm, now);
                match self
                    .repo
                    .replace_vm(&next, vm.version, &NameChange::default(), None)
                    .await
                {
                    Ok(()) => {}
                    Err(Error::VersionConflict) => {
                        return Ok((Done::Skipped, "changed meanwhile".into()))
                    }
                    Err(e) => return Err(e),
                }
                self.record(id, now, EventKind::CleanupRepaired, &what)
                    .await;
                self.drive(id).await;
                Done::Repaired
            }
            Verdict::Delete(why) => {
                let mut next = vm.clone();
                next.set_status(VmStatus::Deleting, now);
                next.pending_op = Some(PendingOp::new(OpKind::Delete, now));
                next.status_reason = Some(format!("deleted by the cleanup job: {why}"));
                next.updated_at = now;
                next.version = vm.version + 1;
                let names = if vm.status.is_active() {
                    NameChange::leaving_active(&vm)
                } else {
                    NameChange::default()
                };
                match self.repo.replace_vm(&next, vm.version, &names, None).await {
                    Ok(()) => {}
                    Err(Error::VersionConflict) => {
                        return Ok((Done::Skipped, "changed meanwhile".into()))
                    }
                    Err(e) => return Err(e),
                }
                self.record(id, now, EventKind::CleanupDeleted, &why).await;
                self.drive(id).await;
                Done::Deleted
            }
        };
        tracing::info!(vm = %id, action = %what, "cleanup acted");
        Ok((done, what))
    }

    /// What a VM needs, judged from its record as it is now (the index may be older).
    pub(super) async fn verdict(&self, vm: &VmRecord, now: Timestamp) -> Result<Verdict> {
        let p = &self.policy;
        let older = |since: Timestamp, d: Duration| since < ago(now, d);
        let stale = StaleCategory::of(vm);
        if let Some((StaleCategory::Deleted, since)) = stale {
            // Kept at least to the end of its month, whose cost estimate bills it.
            return Ok(
                if older(since, p.deleted_retention) && since.month() != now.month() {
                    Verdict::Purge
                } else {
                    Verdict::Skip
                },
            );
        }
        // Orphans: the VM's team or project no longer exists (healthy VMs come here through a
        // tombstone).
        if !matches!(vm.status, VmStatus::Deleting | VmStatus::Deleted) {
            let mut lookup = Lookup::default();
            lookup.teams.insert(vm.team);
            lookup.projects.insert(vm.project);
            let found = self.repo.lookup(&lookup).await?;
            if !found.teams.contains_key(&vm.team) {
                return Ok(Verdict::Delete(format!(
                    "its team {} no longer exists",
                    vm.team
                )));
            }
            if !found.projects.contains_key(&vm.project) {
                return Ok(Verdict::Delete(format!(
                    "its project {} no longer exists",
                    vm.project
                )));
            }
        }
        let Some((category, since)) = stale else {
            return Ok(Verdict::Skip);
        };
        Ok(match category {
            StaleCategory::Transitional if older(since, p.transitional_after) => Verdict::Repair,
            StaleCategory::Failed if older(since, p.failed_retention) => Verdict::Delete(format!(
                "failed for more than {} hours",
                p.failed_retention.as_secs() / 3600
            )),
            StaleCategory::Expiring if since <= now => {
                Verdict::Delete(format!("it expired at {since}"))
            }
            _ => Verdict::Skip,
        })
    }

    /// Moves the VM on at once when a provisioner is wired (the stream would too).
    async fn drive(&self, id: VmId) {
        if let Some(p) = &self.provisioner {
            if let Err(e) = p.process(id).await {
                tracing::warn!(vm = %id, error = %ErrorChain(&e), "cleanup: provisioning step failed; the stream retries");
            }
        }
    }

    async fn record(&self, id: VmId, now: Timestamp, kind: EventKind, detail: &str) {
        let event = VmEvent::new(id, now, "system:cleanup", kind).with_detail(detail);
        if let Err(e) = self.repo.record_event(&event).await {
            tracing::warn!(vm = %id, error = %ErrorChain(&e), "cleanup: could not record the action");
        }
    }
}
