//! `vmctl adopt`: tags the logins and cloud resources made before deployment ids whose VM (or
//! team) is in this deployment's table, so that this deployment's cleanup and IAM conditions
//! reach them again. Untagged ones of other deployments stay untagged, and cleanup keeps
//! reporting them without touching them.

use std::sync::Arc;

use vmapi_models::{CloudKind, DeploymentId, Ownership, SecretOwner};

use crate::cloud::{CloudDriver, ManagedResource};
use crate::error::{ErrorChain, Result};
use crate::ports::{Lookup, Repository};
use crate::provisioner::Provisioner;

/// What a run did, one line per login or resource in `actions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptSummary {
    /// Tagged with this deployment (or, in a dry run, would be).
    pub adopted: u32,
    /// Untagged, but nothing of them is in this deployment's table: left alone.
    pub left: u32,
    /// Could not be judged or tagged (the next run retries).
    pub failed: u32,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// What was (or would be) done.
    pub actions: Vec<String>,
}

/// Tags this deployment's untagged logins and cloud resources (the clouds and regions of
/// `regions`, as the cleanup job lists them).
pub async fn adopt(
    repo: &Arc<dyn Repository>,
    provisioner: &Provisioner,
    regions: &[(CloudKind, String)],
    deployment: &DeploymentId,
    dry_run: bool,
) -> AdoptSummary {
    let mut summary = AdoptSummary {
        dry_run,
        ..AdoptSummary::default()
    };
    let verb = if dry_run { "would tag" } else { "tagged" };
    if let Some(store) = provisioner.secrets() {
        match store.list_managed().await {
            Ok(secrets) => {
                for secret in secrets {
                    if deployment.ownership(secret.deployment.as_deref()) != Ownership::Untagged {
                        continue;
                    }
                    let what = format!("login {}", secret.path);
                    let ours = match secret.path.owner() {
                        Some(SecretOwner::Vm { vm, .. }) => {
                            repo.get_vm(vm).await.map(|r| r.is_some())
                        }
                        Some(SecretOwner::Team(team)) => team_is_here(repo, team).await,
                        None => Ok(false),
                    };
                    let outcome = match ours {
                        Ok(false) => None,
                        Ok(true) if dry_run => Some(Ok(())),
                        Ok(true) => Some(store.adopt(&secret.path).await),
                        Err(e) => Some(Err(e)),
                    };
                    tally(
                        &mut summary,
                        &what,
                        verb,
                        outcome.map(|r| r.map_err(|e| ErrorChain(&e).to_string())),
                    );
                }
            }
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "adopt: could not list the stored logins");
                summary.failed += 1;
                summary
                    .actions
                    .push(format!("logins: not listed ({})", ErrorChain(&e)));
            }
        }
    }
    let mut seen: Vec<(usize, String)> = Vec::new();
    for (cloud, region) in regions {
        let Some(driver) = provisioner.drivers().get(*cloud) else {
            continue;
        };
        let key = (Arc::as_ptr(driver) as *const () as usize, region.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let resources = match driver.list_managed(region).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(cloud = ?cloud, region = %region, error = %e, "adopt: could not list the cloud's resources");
                summary.failed += 1;
                summary
                    .actions
                    .push(format!("{cloud:?} {region}: not listed ({e})").to_lowercase());
                continue;
            }
        };
        for resource in resources {
            if deployment.ownership(resource.deployment.as_deref()) != Ownership::Untagged {
                continue;
            }
            let what = crate::cleanup::describe(*cloud, &resource);
            let outcome = match repo.get_vm(resource.target.vm_id).await {
                Ok(None) => None,
                Ok(Some(_)) if dry_run => Some(Ok(())),
                Ok(Some(_)) => Some(tag(driver.as_ref(), &resource).await),
                Err(e) => Some(Err(ErrorChain(&e).to_string())),
            };
            tally(&mut summary, &what, verb, outcome);
        }
    }
    summary.actions.sort();
    summary
}

async fn tag(
    driver: &dyn CloudDriver,
    resource: &ManagedResource,
) -> std::result::Result<(), String> {
    driver.adopt(resource).await.map_err(|e| e.to_string())
}

/// Whether the team has a record in this deployment's table.
async fn team_is_here(repo: &Arc<dyn Repository>, team: vmapi_models::TeamId) -> Result<bool> {
    let mut lookup = Lookup::default();
    lookup.teams.insert(team);
    Ok(!repo.lookup(&lookup).await?.teams.is_empty())
}

/// Counts one outcome: `None` is not this deployment's.
fn tally(
    summary: &mut AdoptSummary,
    what: &str,
    verb: &str,
    outcome: Option<std::result::Result<(), String>>,
) {
    match outcome {
        None => {
            summary.left += 1;
            summary.actions.push(format!(
                "{what}: left untagged (nothing of it is in this deployment's table)"
            ));
        }
        Some(Ok(())) => {
            summary.adopted += 1;
            summary.actions.push(format!("{what}: {verb}"));
        }
        Some(Err(e)) => {
            tracing::warn!(resource = %what, error = %e, "adopt: could not tag");
            summary.failed += 1;
            summary.actions.push(format!("{what}: failed ({e})"));
        }
    }
}
