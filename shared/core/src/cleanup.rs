//! The cleanup job: finds stale VMs through the sparse stale index (never a scan) and the
//! tombstones of removed teams and projects, and repairs or removes them; then reconciles the
//! secret store and the clouds against the table (logins and cloud VMs of ours with no VM
//! left). The definition of "stale" is in `docs/cleanup.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use vmapi_models::{
    EventKind, OpKind, PendingOp, StaleCategory, Timestamp, VmEvent, VmId, VmRecord, VmStatus,
};

use vmapi_models::{CloudKind, DeploymentId, Ownership, SecretOwner};

use crate::cloud::CloudDriver;
use crate::credentials::SecretStore;
use crate::error::{Error, ErrorChain, Result};
use crate::ports::{Clock, Gone, Lookup, NameChange, Repository, VmFilter};
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
    /// Logins and cloud VMs of ours younger than this are never reconciled away (a create in
    /// flight stores the login before the VM record exists).
    pub orphan_grace: Duration,
    /// The clouds and regions whose VMs are reconciled against the table (regions are
    /// ignored by clouds that are not regional).
    pub regions: Vec<(CloudKind, String)>,
    /// This deployment: reconciliation removes only logins and cloud resources tagged with it,
    /// reports untagged ones and ignores other deployments'.
    pub deployment: DeploymentId,
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
            orphan_grace: Duration::from_secs(3600),
            regions: Vec::new(),
            deployment: DeploymentId::local(),
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
    /// Logins and cloud VMs of ours removed because no VM needs them any more.
    pub reconciled: u32,
    /// Logins and cloud resources of the service with no deployment tag (made before
    /// deployment ids): reported, never removed (`vmctl adopt` tags this deployment's).
    pub untagged: u32,
    /// Milliseconds the run took.
    pub duration_ms: u64,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// What was (or, in a dry run, would be) done, one line per VM.
    pub actions: Vec<String>,
}

/// A listed cloud resource in a summary line.
pub(crate) fn describe(cloud: CloudKind, resource: &crate::cloud::ManagedResource) -> String {
    let cloud = format!("{cloud:?}").to_lowercase();
    match &resource.kind {
        crate::cloud::ManagedKind::Vm => format!(
            "{cloud} VM {} ({})",
            resource.target.provider_id.as_deref().unwrap_or("?"),
            resource.target.vm_id
        ),
        crate::cloud::ManagedKind::Firewall(id) => {
            format!("{cloud} firewall {id} of VM {}", resource.target.vm_id)
        }
    }
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
        let mut candidates = self.index_candidates(now).await?;
        let mut summary = Summary {
            dry_run: p.dry_run,
            ..Summary::default()
        };
        // Removed teams and projects: every VM they still have is a candidate (the verdict
        // deletes it), and a tombstone with nothing left is forgotten.
        for tombstone in self.repo.tombstones(p.max_candidates).await? {
            match self.tombstone_vms(tombstone.gone).await {
                Ok(None) => {
                    if !p.dry_run {
                        self.repo.clear_tombstone(tombstone.gone).await?;
                    }
                    summary.actions.push(format!(
                        "{}: {}forget the tombstone (nothing of it is left, or it is back)",
                        tombstone.gone,
                        if p.dry_run { "would " } else { "" }
                    ));
                }
                Ok(Some(ids)) => {
                    for id in ids {
                        if !candidates.contains(&id) {
                            candidates.push(id);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(gone = %tombstone.gone, error = %ErrorChain(&e), "cleanup: could not list what a tombstone names; the next run retries");
                    summary.failed += 1;
                }
            }
        }
        summary.candidates = candidates.len() as u32;
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
        if Instant::now() < deadline {
            self.reconcile(now, deadline, &mut summary).await;
        }
        summary.actions.sort();
        summary.duration_ms = started.elapsed().as_millis() as u64;
        Ok(summary)
    }

    /// The VMs the stale index names as past the policy's periods (never a scan), each once.
    async fn index_candidates(&self, now: Timestamp) -> Result<Vec<VmId>> {
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
        Ok(candidates)
    }

    /// The candidates a run would look at now (the stale index and the tombstones, as
    /// [`Cleanup::run`] finds them) with what it would do to each; reads only.
    pub async fn candidates(&self) -> Result<Vec<Candidate>> {
        let now = self.clock.now();
        let mut ids = self.index_candidates(now).await?;
        let mut gone_of: Vec<(VmId, Gone)> = Vec::new();
        for tombstone in self.repo.tombstones(self.policy.max_candidates).await? {
            for id in self
                .tombstone_vms(tombstone.gone)
                .await?
                .unwrap_or_default()
            {
                gone_of.push((id, tombstone.gone));
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(vm) = self.repo.get_vm(id).await? else {
                continue;
            };
            let verdict = self.verdict(&vm, now).await?;
            out.push(Candidate {
                stale: StaleCategory::of(&vm),
                removed: gone_of.iter().find(|(v, _)| *v == id).map(|(_, g)| *g),
                action: verdict_action(&verdict, &vm),
                vm,
            });
        }
        out.sort_by_key(|c| (c.stale.map(|(_, since)| since), c.vm.id));
        Ok(out)
    }

    /// The active VMs of a removed team or project, or `None` when nothing is left of it (or it
    /// exists again).
    async fn tombstone_vms(&self, gone: Gone) -> Result<Option<Vec<VmId>>> {
        let mut lookup = Lookup::default();
        let projects = match gone {
            Gone::Team(team) => {
                lookup.teams.insert(team);
                self.repo.team_projects(team).await?
            }
            Gone::Project(project) => {
                lookup.projects.insert(project);
                vec![project]
            }
        };
        let found = self.repo.lookup(&lookup).await?;
        if !found.teams.is_empty() || !found.projects.is_empty() {
            return Ok(None);
        }
        let mut ids = Vec::new();
        for project in projects {
            let page = self
                .repo
                .list_project_vms(
                    project,
                    self.policy.max_candidates,
                    None,
                    &VmFilter::default(),
                )
                .await?;
            ids.extend(page.items.iter().map(|vm| vm.id));
        }
        Ok((!ids.is_empty()).then_some(ids))
    }

    /// Removes logins and cloud VMs of ours that no VM needs any more (older than the grace
    /// period). Listing failures are counted and left to the next run.
    async fn reconcile(&self, now: Timestamp, deadline: Instant, summary: &mut Summary) {
        let Some(provisioner) = &self.provisioner else {
            return;
        };
        let young = |created: Option<Timestamp>| {
            created.is_some_and(|t| t > ago(now, self.policy.orphan_grace))
        };
        if let Some(store) = provisioner.secrets() {
            match store.list_managed().await {
                Ok(secrets) => {
                    for secret in secrets {
                        if Instant::now() >= deadline {
                            summary.deferred += 1;
                            continue;
                        }
                        if young(secret.created_at)
                            || !self.owned(
                                secret.deployment.as_deref(),
                                &format!("login {}", secret.path),
                                summary,
                            )
                        {
                            continue;
                        }
                        match self.secret_is_orphan(&secret.path).await {
                            Ok(Some(why)) => {
                                self.remove_secret(store.as_ref(), &secret.path, &why, summary)
                                    .await
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::warn!(path = %secret.path, error = %ErrorChain(&e), "cleanup: could not judge a login; the next run retries");
                                summary.failed += 1;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %ErrorChain(&e), "cleanup: could not list the stored logins; the next run retries");
                    summary.failed += 1;
                }
            }
        }
        // One listing per distinct driver and region (the simulated driver may serve several
        // clouds).
        let mut seen: Vec<(usize, String)> = Vec::new();
        let mut handled: Vec<(VmId, Option<String>)> = Vec::new();
        for (cloud, region) in &self.policy.regions {
            let Some(driver) = provisioner.drivers().get(*cloud) else {
                continue;
            };
            let id = (Arc::as_ptr(driver) as *const () as usize, region.clone());
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let resources = match driver.list_managed(region).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(cloud = ?cloud, region = %region, error = %e, "cleanup: could not list the cloud's VMs; the next run retries");
                    summary.failed += 1;
                    continue;
                }
            };
            for resource in resources {
                // A cloud listed under several regions names a VM once per listing.
                let key = (resource.target.vm_id, resource.target.provider_id.clone());
                if handled.contains(&key) {
                    continue;
                }
                handled.push(key);
                if Instant::now() >= deadline {
                    summary.deferred += 1;
                    continue;
                }
                if young(resource.created_at)
                    || !self.owned(
                        resource.deployment.as_deref(),
                        &describe(*cloud, &resource),
                        summary,
                    )
                {
                    continue;
                }
                let id = resource.target.vm_id;
                let orphan = match self.repo.get_vm(id).await {
                    Ok(Some(vm)) => vm.status == VmStatus::Deleted,
                    Ok(None) => true,
                    Err(e) => {
                        tracing::warn!(vm = %id, error = %ErrorChain(&e), "cleanup: could not read a VM; the next run retries");
                        summary.failed += 1;
                        continue;
                    }
                };
                if orphan {
                    self.remove_cloud_vm(driver.as_ref(), *cloud, &resource, summary)
                        .await;
                }
            }
        }
    }

    /// Whether a listed login or resource is this deployment's (its deployment tag is ours).
    /// Untagged ones are counted and reported; other deployments' are passed over in silence.
    fn owned(&self, tag: Option<&str>, what: &str, summary: &mut Summary) -> bool {
        match self.policy.deployment.ownership(tag) {
            Ownership::Ours => true,
            Ownership::Foreign => false,
            Ownership::Untagged => {
                summary.untagged += 1;
                summary.actions.push(format!(
                    "{what}: left alone (no {} tag; `vmctl adopt` tags it if its VM is in this deployment's table)",
                    DeploymentId::TAG
                ));
                false
            }
        }
    }

    /// Why a stored login is not needed any more, or `None` when a VM still needs it.
    async fn secret_is_orphan(&self, path: &vmapi_models::SecretPath) -> Result<Option<String>> {
        match path.owner() {
            Some(SecretOwner::Vm { vm, .. }) => Ok(match self.repo.get_vm(vm).await? {
                Some(record) if record.status != VmStatus::Deleted => None,
                Some(_) => Some(format!("its VM {vm} is deleted")),
                None => Some(format!("its VM {vm} does not exist")),
            }),
            // A team login is shared by every VM of the team, and by every deployment that
            // found it in place: it goes only once the team itself is gone from this
            // deployment's table and has no VM left here.
            Some(SecretOwner::Team(team)) => {
                let mut lookup = Lookup::default();
                lookup.teams.insert(team);
                if !self.repo.lookup(&lookup).await?.teams.is_empty() {
                    return Ok(None);
                }
                for project in self.repo.team_projects(team).await? {
                    if !self
                        .repo
                        .list_project_vms(project, 1, None, &VmFilter::default())
                        .await?
                        .items
                        .is_empty()
                    {
                        return Ok(None);
                    }
                }
                Ok(Some(format!("team {team} is removed and has no VMs left")))
            }
            None => Ok(None),
        }
    }

    async fn remove_secret(
        &self,
        store: &dyn SecretStore,
        path: &vmapi_models::SecretPath,
        why: &str,
        summary: &mut Summary,
    ) {
        if self.policy.dry_run {
            summary.reconciled += 1;
            summary
                .actions
                .push(format!("login {path}: would remove ({why})"));
            return;
        }
        match store.delete(path).await {
            Ok(()) => {
                tracing::info!(path = %path, reason = %why, "cleanup removed an orphaned login");
                summary.reconciled += 1;
                summary
                    .actions
                    .push(format!("login {path}: removed ({why})"));
            }
            Err(e) => {
                tracing::warn!(path = %path, error = %ErrorChain(&e), "cleanup: could not remove an orphaned login; the next run retries");
                summary.failed += 1;
            }
        }
    }

    async fn remove_cloud_vm(
        &self,
        driver: &dyn CloudDriver,
        cloud: CloudKind,
        resource: &crate::cloud::ManagedResource,
        summary: &mut Summary,
    ) {
        let what = describe(cloud, resource);
        let why = "no VM record needs it";
        if self.policy.dry_run {
            summary.reconciled += 1;
            summary
                .actions
                .push(format!("{what}: would remove ({why})"));
            return;
        }
        match driver.delete(&resource.target).await {
            Ok(()) => {
                tracing::info!(resource = %what, "cleanup removed an orphaned cloud VM");
                summary.reconciled += 1;
                summary.actions.push(format!("{what}: removed ({why})"));
            }
            Err(e) => {
                tracing::warn!(resource = %what, error = %e, "cleanup: could not remove an orphaned cloud VM; the next run retries");
                summary.failed += 1;
            }
        }
    }

    /// Decides and (unless dry) carries out what one VM needs.
    async fn handle(&self, id: VmId, now: Timestamp) -> (Done, String) {
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
                next.status = VmStatus::Deleting;
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
    async fn verdict(&self, vm: &VmRecord, now: Timestamp) -> Result<Verdict> {
        let p = &self.policy;
        let older = |since: Timestamp, d: Duration| since < ago(now, d);
        let stale = StaleCategory::of(vm);
        if let Some((StaleCategory::Deleted, since)) = stale {
            return Ok(if older(since, p.deleted_retention) {
                Verdict::Purge
            } else {
                Verdict::Skip
            });
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

/// What a verdict means for `vm`, in a summary line; `None` when nothing is to be done.
fn verdict_action(verdict: &Verdict, vm: &VmRecord) -> Option<String> {
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

/// A cleanup candidate and what a run would do to it now.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The VM as stored.
    pub vm: VmRecord,
    /// Its stale-index category and the time its age counts from (`None` for a healthy VM of
    /// a removed team or project).
    pub stale: Option<(StaleCategory, Timestamp)>,
    /// The removed team or project it is a candidate through, if any.
    pub removed: Option<Gone>,
    /// What a run would do (`None`: nothing, it is healthy by now or not old enough).
    pub action: Option<String>,
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
        "Reconciled",
        "Untagged",
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
        ("Reconciled", summary.reconciled),
        ("Untagged", summary.untagged),
    ] {
        m.insert(name.into(), value.into());
    }
    m.insert("Duration".into(), summary.duration_ms.into());
    m.insert("actions".into(), summary.actions.clone().into());
    serde_json::Value::Object(m).to_string()
}
