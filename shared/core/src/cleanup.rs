//! The cleanup job: finds stale VMs through the sparse stale index (never a scan) and repairs or
//! removes them. The definition of "stale" is in `docs/cleanup.md`.
//!
//! Follow-up steps this job does not take yet (see docs/cleanup.md):
//! - *orphan pass*: healthy VMs (not in the stale index) of a team or project removed from the
//!   platform are only found once they become candidates for another reason;
//! - *store reconciliation*: secrets and cloud resources tagged `managed-by=vm-api` whose VM record
//!   is gone, and team logins of teams without VMs, are not listed and removed yet.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use vmapi_models::{
    EventKind, OpKind, PendingOp, StaleCategory, Timestamp, VmEvent, VmId, VmRecord, VmStatus,
};

use crate::error::{Error, ErrorChain, Result};
use crate::ports::{Clock, Lookup, NameChange, Repository};
use crate::provisioner::Provisioner;

/// Periods and limits of a run.
#[derive(Clone, Debug)]
pub struct CleanupPolicy {
    /// A transitional status or pending operation older than this is stuck.
    pub transitional_after: Duration,
    /// Failed VMs older than this are deleted (cloud leftovers, login, record).
    pub failed_retention: Duration,
    /// Deleted VM records older than this are purged.
    pub deleted_retention: Duration,
    /// Report what would be done and change nothing.
    pub dry_run: bool,
    /// VMs handled at once.
    pub concurrency: usize,
    /// Stop starting new work after this long (the rest is left to the next run).
    pub time_budget: Duration,
    /// Most candidates per category and run.
    pub max_candidates: usize,
}

impl Default for CleanupPolicy {
    fn default() -> Self {
        CleanupPolicy {
            transitional_after: Duration::from_secs(60 * 60),
            failed_retention: Duration::from_secs(7 * 24 * 3600),
            deleted_retention: Duration::from_secs(30 * 24 * 3600),
            dry_run: false,
            concurrency: 8,
            time_budget: Duration::from_secs(240),
            max_candidates: 500,
        }
    }
}

/// What one run did (also its summary log line and metrics).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// VMs the index named.
    pub candidates: u32,
    /// Stuck operations moved on or re-armed.
    pub repaired: u32,
    /// VMs deleted (failed too long, expired, team or project gone).
    pub deleted: u32,
    /// Deleted records purged.
    pub purged: u32,
    /// VMs the job could not handle (left for the next run).
    pub failed: u32,
    /// Candidates that needed nothing (healthy by now, or changed meanwhile).
    pub skipped: u32,
    /// Candidates not reached within the time budget.
    pub deferred: u32,
    /// Milliseconds the run took.
    pub duration_ms: u64,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// What was (or, in a dry run, would be) done, one line per VM.
    pub actions: Vec<String>,
}

/// What to do with one candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Skip,
    Repair,
    Delete(String),
    Purge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Done {
    Skipped,
    Repaired,
    Deleted,
    Purged,
    Failed,
}

/// The cleanup job over a repository, a clock and the provisioner (which does the cloud work).
pub struct Cleanup {
    repo: Arc<dyn Repository>,
    clock: Arc<dyn Clock>,
    provisioner: Option<Provisioner>,
    policy: CleanupPolicy,
}

fn ago(now: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_unix_millis(now.unix_millis() - d.as_millis() as i64).unwrap_or(now)
}

impl Cleanup {
    /// Wires the job; without a provisioner, cloud work is left to the stream (the writes still
    /// carry `pendingOp`).
    pub fn new(
        repo: Arc<dyn Repository>,
        clock: Arc<dyn Clock>,
        provisioner: Option<Provisioner>,
        policy: CleanupPolicy,
    ) -> Self {
        Cleanup {
            repo,
            clock,
            provisioner,
            policy,
        }
    }

    /// One run. Never fails as a whole: per-VM problems are counted as `failed`.
    pub async fn run(&self) -> Result<Summary> {
        let started = Instant::now();
        let now = self.clock.now();
        let p = &self.policy;
        let mut candidates: Vec<VmId> = Vec::new();
        for (category, older_than) in [
            (StaleCategory::Transitional, ago(now, p.transitional_after)),
            (StaleCategory::Failed, ago(now, p.failed_retention)),
            (StaleCategory::Deleted, ago(now, p.deleted_retention)),
            (StaleCategory::Expiring, now),
        ] {
            for id in self
                .repo
                .stale_vms(category, older_than, p.max_candidates)
                .await?
            {
                if !candidates.contains(&id) {
                    candidates.push(id);
                }
            }
        }
        let mut summary = Summary {
            candidates: candidates.len() as u32,
            dry_run: p.dry_run,
            ..Summary::default()
        };
        let deadline = started + p.time_budget;
        let results: Vec<(VmId, Option<(Done, String)>)> = stream::iter(candidates)
            .map(|id| async move {
                if Instant::now() >= deadline {
                    return (id, None);
                }
                (id, Some(self.handle(id, now).await))
            })
            .buffer_unordered(p.concurrency.max(1))
            .collect()
            .await;
        for (id, outcome) in results {
            match outcome {
                None => summary.deferred += 1,
                Some((done, note)) => {
                    match done {
                        Done::Skipped => summary.skipped += 1,
                        Done::Repaired => summary.repaired += 1,
                        Done::Deleted => summary.deleted += 1,
                        Done::Purged => summary.purged += 1,
                        Done::Failed => summary.failed += 1,
                    }
                    if done != Done::Skipped {
                        summary.actions.push(format!("{id}: {note}"));
                    }
                }
            }
        }
        summary.actions.sort();
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// Decides and (unless dry) carries out what one VM needs.
    async fn handle(&self, id: VmId, now: Timestamp) -> (Done, String) {
        match self.try_handle(id, now).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(vm = %id, error = %ErrorChain(&e), "cleanup could not handle the VM; the next run retries");
                (Done::Failed, format!("failed: {e}"))
            }
        }
    }

    async fn try_handle(&self, id: VmId, now: Timestamp) -> Result<(Done, String)> {
        let Some(vm) = self.repo.get_vm(id).await? else {
            return Ok((Done::Skipped, "gone".into()));
        };
        let verdict = self.verdict(&vm, now).await?;
        let what = match &verdict {
            Verdict::Skip => return Ok((Done::Skipped, "healthy".into())),
            Verdict::Repair => format!(
                "repair the stuck {} ({})",
                vm.pending_op.as_ref().map_or("status", |p| p.op.name()),
                vm.status.name()
            ),
            Verdict::Delete(why) => format!("delete: {why}"),
            Verdict::Purge => "purge the deleted record".into(),
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
                let mut next = vm.clone();
                if next.pending_op.is_none() {
                    // The stream record was lost (e.g. to the dead-letter queue): re-arm it.
                    next.pending_op = Some(PendingOp::new(rearm_op(vm.status), now));
                }
                if let Some(p) = next.pending_op.as_mut() {
                    p.attempt += 1;
                }
                next.version = vm.version + 1;
                match self
                    .repo
                    .replace_vm(&next, vm.version, &NameChange::default())
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
                next.status = VmStatus::Deleting;
                next.pending_op = Some(PendingOp::new(OpKind::Delete, now));
                next.status_reason = Some(format!("deleted by the cleanup job: {why}"));
                next.updated_at = now;
                next.version = vm.version + 1;
                let names = if vm.status.is_active() {
                    NameChange {
                        release: Some(vm.name.clone()),
                        claim: None,
                    }
                } else {
                    NameChange::default()
                };
                match self.repo.replace_vm(&next, vm.version, &names).await {
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
    async fn verdict(&self, vm: &VmRecord, now: Timestamp) -> Result<Verdict> {
        let p = &self.policy;
        let older = |since: Timestamp, d: Duration| since < ago(now, d);
        let Some((category, since)) = StaleCategory::of(vm) else {
            return Ok(Verdict::Skip);
        };
        if category == StaleCategory::Deleted {
            return Ok(if older(since, p.deleted_retention) {
                Verdict::Purge
            } else {
                Verdict::Skip
            });
        }
        // Orphans: the VM's team or project no longer exists.
        if vm.status != VmStatus::Deleting {
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
        let event = VmEvent {
            vm_id: id,
            at: now,
            actor: "system:cleanup".into(),
            kind,
            detail: Some(detail.to_string()),
        };
        if let Err(e) = self.repo.record_event(&event).await {
            tracing::warn!(vm = %id, error = %ErrorChain(&e), "cleanup: could not record the action");
        }
    }
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

/// The summary as one JSON log line in CloudWatch's embedded metric format: the same line is a
/// log entry and, in Lambda, metrics in the `VmApi/Cleanup` namespace.
pub fn emf_line(summary: &Summary, now: Timestamp) -> String {
    let metrics = [
        "Candidates",
        "Repaired",
        "Deleted",
        "Purged",
        "Failed",
        "Skipped",
        "Deferred",
    ];
    let mut m = serde_json::Map::new();
    m.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": now.unix_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "VmApi/Cleanup",
                "Dimensions": [["DryRun"]],
                "Metrics": metrics.iter().map(|n| serde_json::json!({"Name": n, "Unit": "Count"}))
                    .chain(std::iter::once(serde_json::json!({"Name": "Duration", "Unit": "Milliseconds"})))
                    .collect::<Vec<_>>()
            }]
        }),
    );
    m.insert("message".into(), "cleanup run finished".into());
    m.insert("DryRun".into(), summary.dry_run.to_string().into());
    for (name, value) in [
        ("Candidates", summary.candidates),
        ("Repaired", summary.repaired),
        ("Deleted", summary.deleted),
        ("Purged", summary.purged),
        ("Failed", summary.failed),
        ("Skipped", summary.skipped),
        ("Deferred", summary.deferred),
    ] {
        m.insert(name.into(), value.into());
    }
    m.insert("Duration".into(), summary.duration_ms.into());
    m.insert("actions".into(), summary.actions.clone().into());
    serde_json::Value::Object(m).to_string()
}
