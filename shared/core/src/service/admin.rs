//! The admin API's use cases: a team's VMs page by page, delete, block and unblock, for the
//! holder of a working admin key (docs/admin-api.md).

use vmapi_models::{AdminKeyName, AdminResult, AdminVmPage, Ref, TeamId, VmId};

use super::base::Service;
use super::read::populate;
use crate::error::{Error, Result};
use crate::lifecycle::Action;
use crate::ports::{Lookup, TeamVms};

/// Largest page an administrator may ask for.
pub const MAX_ADMIN_LIMIT: u64 = 100;

impl Service {
    /// The name of the working admin key `presented`; 401 otherwise.
    async fn admin(&self, presented: Option<&str>) -> Result<AdminKeyName> {
        match &self.admin_keys {
            Some(keys) => keys.verify(presented).await,
            None => Err(Error::Unauthorized(
                "this deployment has no admin keys".into(),
            )),
        }
    }

    /// Page `page` (from 1) of `limit` (1-100) of a team's VMs (every status but 8), newest
    /// first, populated as in GET of a VM. Two round trips: the key's check together with
    /// the team index (ids and references), then one batch read of the page's VMs with the
    /// team, projects and catalog entries they name.
    pub async fn admin_team_vms(
        &self,
        presented: Option<&str>,
        team: TeamId,
        page: u64,
        limit: u64,
    ) -> Result<AdminVmPage> {
        let (admin, refs) = futures_util::future::join(
            self.admin(presented),
            self.repo.team_vms(team, TeamVms::NotDeleted),
        )
        .await;
        let admin = admin?;
        let refs = refs?;
        tracing::info!(admin = %admin, team = %team, page, limit, "admin listed a team's virtual machines");
        let total = refs.len() as u64;
        let skip =
            usize::try_from(page.saturating_sub(1).saturating_mul(limit)).unwrap_or(usize::MAX);
        let slice: Vec<_> = refs.iter().skip(skip).take(limit as usize).collect();
        let mut lookup = Lookup::default();
        lookup.teams.insert(team);
        for r in &slice {
            r.add_to(&mut lookup);
        }
        let ids: Vec<VmId> = slice.iter().map(|r| r.id).collect();
        let (vms, found) = self.repo.get_vms_with(&ids, &lookup).await?;
        let docs = vms
            .iter()
            .filter(|vm| vm.team == team)
            .map(|vm| {
                let mut wire = populate(vm, &found, None);
                if let Some(p) = found.projects.get(&vm.project) {
                    wire.project = Ref::Populated(p.clone());
                }
                if let Some(t) = found.teams.get(&vm.team) {
                    wire.team = Ref::Populated(t.clone());
                }
                wire
            })
            .collect();
        let total_pages = total.div_ceil(limit).max(1);
        Ok(AdminVmPage {
            docs,
            total_docs: total,
            limit,
            page,
            total_pages,
            has_next_page: page < total_pages,
            has_prev_page: page > 1,
        })
    }

    /// Deletes a VM as its users' delete does (the provisioner tears it down), recorded as
    /// `admin:{key name}`.
    pub async fn admin_delete(&self, presented: Option<&str>, id: VmId) -> Result<AdminResult> {
        let admin = self.admin(presented).await?;
        self.act_as_admin(&admin.actor(), id, Action::Delete)
            .await?;
        Ok(AdminResult {
            message: "Virtual machine deleted".into(),
            vm_id: id,
        })
    }

    /// Blocks or unblocks a VM (docs/api.md, "Blocked VMs"), recorded as `admin:{key name}`.
    pub async fn admin_block(
        &self,
        presented: Option<&str>,
        id: VmId,
        blocked: bool,
    ) -> Result<AdminResult> {
        let admin = self.admin(presented).await?;
        self.set_blocked(id, blocked, &admin.actor()).await?;
        Ok(AdminResult {
            message: if blocked {
                "Virtual machine blocked"
            } else {
                "Virtual machine unblocked"
            }
            .into(),
            vm_id: id,
        })
    }
}
