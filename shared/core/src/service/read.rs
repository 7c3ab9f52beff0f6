//! Reads: a project's VM list, one VM, a VM's history; the wire form with references populated.

use vmapi_models::{ProjectId, Ref, Role, TeamId, UserId, VirtualMachine, VmId, VmRecord};

use super::base::Service;
use crate::authz::{authorize, Need};
use crate::error::{Error, NotFoundKind, Result};
use crate::ports::{EventPage, Found, Lookup, PageKey, VmFilter};

/// A page of populated VMs.
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The VMs, newest first.
    pub items: Vec<VirtualMachine>,
    /// Where the next page starts.
    pub next: Option<PageKey>,
}

/// The wire form of a VM with references populated from `found` (ids where absent). With
/// `for_caller` (get, update; not lists) `project` and `team` are populated too, the team's
/// `quotas` only for its owners and admins.
pub(super) fn populate(
    vm: &VmRecord,
    found: &Found,
    for_caller: Option<&UserId>,
) -> VirtualMachine {
    let mut wire = VirtualMachine::from_record(vm);
    if let Some(p) = found.providers.get(&vm.provider) {
        wire.provider = Ref::Populated(p.to_wire(found.cloud_providers.get(&p.cloud_provider)));
    }
    if let Some(s) = found.sizes.get(&vm.size) {
        wire.size = Ref::Populated(s.clone());
    }
    if let Some(p) = found.prices.get(&vm.price) {
        wire.price = Ref::Populated(p.clone());
    }
    if let Some(caller) = for_caller {
        if let Some(p) = found.projects.get(&vm.project) {
            wire.project = Ref::Populated(p.clone());
        }
        if let Some(t) = found.teams.get(&vm.team) {
            let mut team = t.clone();
            if !matches!(t.role_of(caller), Some(Role::Owner | Role::Admin)) {
                team.quotas = None;
            }
            wire.team = Ref::Populated(team);
        }
    }
    wire
}

impl Service {
    /// A project's active VMs, newest first, with provider, size and price populated.
    /// Two round trips whatever the page size.
    pub async fn list(
        &self,
        caller: &UserId,
        team: TeamId,
        project: ProjectId,
        limit: usize,
        after: Option<&PageKey>,
    ) -> Result<ListPage> {
        self.list_filtered(caller, team, project, limit, after, &VmFilter::default())
            .await
    }

    /// [`Service::list`] of the VMs that pass `filter` (status, tag, name prefix). Still two
    /// round trips: the store filters while it reads the list index, so a page may hold fewer
    /// than `limit` VMs while a next page follows.
    pub async fn list_filtered(
        &self,
        caller: &UserId,
        team: TeamId,
        project: ProjectId,
        limit: usize,
        after: Option<&PageKey>,
        filter: &VmFilter,
    ) -> Result<ListPage> {
        let page = self
            .repo
            .list_project_vms(project, limit, after, filter)
            .await?;
        let mut lookup = Lookup::default();
        lookup.teams.insert(team);
        lookup.projects.insert(project);
        for vm in &page.items {
            lookup.add_catalog_of(vm);
        }
        let found = self.repo.lookup(&lookup).await?;
        authorize(found.teams.get(&team), caller, Need::Read, || {
            Error::not_found(NotFoundKind::Team, team)
        })?;
        match found.projects.get(&project) {
            Some(p) if p.team == team => {}
            _ => return Err(Error::not_found(NotFoundKind::Project, project)),
        }
        let items = page
            .items
            .iter()
            .filter(|vm| vm.team == team && vm.status.is_active() && filter.matches(vm))
            .map(|vm| populate(vm, &found, None))
            .collect();
        Ok(ListPage {
            items,
            next: page.next,
        })
    }

    /// One VM with every reference populated. Two round trips.
    pub async fn get(&self, caller: &UserId, id: VmId) -> Result<VirtualMachine> {
        Ok(self.get_versioned(caller, id).await?.0)
    }

    /// A page of a VM's history, newest first: who did what, when, the status after and why.
    /// Everyone who may read the VM may read its history. Three round trips.
    pub async fn activity(
        &self,
        caller: &UserId,
        id: VmId,
        limit: usize,
        after: Option<&str>,
    ) -> Result<EventPage> {
        self.load_visible(caller, id, Need::Read).await?;
        self.repo.vm_events(id, limit, after).await
    }

    /// One VM and its stored version (the HTTP layer's `ETag`). Two round trips.
    pub async fn get_versioned(&self, caller: &UserId, id: VmId) -> Result<(VirtualMachine, u64)> {
        let (vm, found) = self.load_visible(caller, id, Need::Read).await?;
        Ok((populate(&vm, &found, Some(caller)), vm.version))
    }
}
