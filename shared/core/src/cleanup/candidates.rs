//! Finding stale VMs: the sparse stale index (never a scan) and the tombstones of removed
//! teams and projects.

use vmapi_models::{StaleCategory, Timestamp, VmId, VmRecord};

use super::base::{ago, Cleanup};
use super::verdict::verdict_action;
use crate::error::Result;
use crate::ports::{Gone, Lookup, VmFilter};

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

impl Cleanup {
    /// The VMs the stale index names as past the policy's periods (never a scan), each once.
    pub(super) async fn index_candidates(&self, now: Timestamp) -> Result<Vec<VmId>> {
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
    pub(super) async fn tombstone_vms(&self, gone: Gone) -> Result<Option<Vec<VmId>>> {
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
}
