//! Reconciling the secret store and the clouds against the table: logins and cloud VMs of
//! this deployment with no VM left.

use std::sync::Arc;
use std::time::Instant;

use vmapi_models::{CloudKind, DeploymentId, Ownership, SecretOwner};
use vmapi_models::{Timestamp, VmId, VmStatus};

use super::base::{ago, Cleanup, Summary};
use crate::cloud::CloudDriver;
use crate::credentials::SecretStore;
use crate::error::{ErrorChain, Result};
use crate::ports::{Lookup, VmFilter};

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

impl Cleanup {
    /// Removes logins and cloud VMs of ours that no VM needs any more (older than the grace
    /// period). Listing failures are counted and left to the next run.
    pub(super) async fn reconcile(&self, now: Timestamp, deadline: Instant, summary: &mut Summary) {
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
}
