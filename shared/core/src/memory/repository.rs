//! The in-memory [`Repository`]: VMs, their names, events, rule pointers and tombstones,
//! and the catalog and teams they refer to, in maps behind one lock.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use vmapi_models::{
    CloudProvider, CloudProviderId, Price, Project, ProjectId, ProviderId, ProviderRecord,
    SecurityRuleId, Size, StaleCategory, Team, TeamId, Timestamp, VmEvent, VmId, VmRecord,
    VmStatus,
};

use crate::error::{ConflictCode, Error, Result};
use crate::ports::{
    EventPage, Found, Gone, Lookup, NameChange, PageKey, ProviderOffers, Repository, RuleChange,
    RuleOwner, TeamVmRef, TeamVms, Tombstone, VmFilter, VmPage,
};
use crate::quota::{QuotaLimits, Usage};

/// Everything in maps behind one lock.
#[derive(Default)]
pub struct MemoryRepository {
    pub(super) state: Mutex<State>,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) found: Found,
    pub(super) vms: BTreeMap<VmId, VmRecord>,
    pub(super) names: HashMap<(ProjectId, String), VmId>,
    pub(super) events: Vec<VmEvent>,
    pub(super) team_projects: BTreeMap<TeamId, std::collections::BTreeSet<ProjectId>>,
    pub(super) tombstones: BTreeMap<Gone, Timestamp>,
    pub(super) usage: HashMap<TeamId, Usage>,
    pub(super) rule_owners: HashMap<SecurityRuleId, RuleOwner>,
    pub(super) admin_keys: BTreeMap<String, vmapi_models::AdminKeyRecord>,
}

impl MemoryRepository {
    /// An empty repository.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a team.
    pub fn put_team(&self, t: Team) {
        self.state.lock().unwrap().found.teams.insert(t.id, t);
    }
    /// Adds a project.
    pub fn put_project(&self, p: Project) {
        self.state.lock().unwrap().found.projects.insert(p.id, p);
    }
    /// Removes a team as the platform would (its VMs stay until the cleanup job runs).
    pub fn remove_team(&self, id: TeamId) {
        self.state.lock().unwrap().found.teams.remove(&id);
    }
    /// Removes a project as the platform would.
    pub fn remove_project(&self, id: ProjectId) {
        self.state.lock().unwrap().found.projects.remove(&id);
    }
    /// Adds a cloud provider.
    pub fn put_cloud_provider(&self, c: CloudProvider) {
        self.state
            .lock()
            .unwrap()
            .found
            .cloud_providers
            .insert(c.id, c);
    }
    /// Adds a provider.
    pub fn put_provider(&self, p: ProviderRecord) {
        self.state.lock().unwrap().found.providers.insert(p.id, p);
    }
    /// Adds a size.
    pub fn put_size(&self, s: Size) {
        self.state.lock().unwrap().found.sizes.insert(s.id, s);
    }
    /// Adds a price.
    pub fn put_price(&self, p: Price) {
        self.state.lock().unwrap().found.prices.insert(p.id, p);
    }
    /// Stores a VM as is (seeding).
    pub fn put_vm(&self, vm: VmRecord) {
        let mut s = self.state.lock().unwrap();
        if vm.status.is_active() {
            s.names.insert((vm.project, vm.name.to_string()), vm.id);
        }
        for r in &vm.rules {
            s.rule_owners.insert(
                r.id,
                RuleOwner {
                    vm: vm.id,
                    team: vm.team,
                },
            );
        }
        s.vms.insert(vm.id, vm);
    }
    /// Number of security-rule pointers stored.
    pub fn rule_pointer_count(&self) -> usize {
        self.state.lock().unwrap().rule_owners.len()
    }
    /// A stored VM.
    pub fn vm(&self, id: VmId) -> Option<VmRecord> {
        self.state.lock().unwrap().vms.get(&id).cloned()
    }
    /// Every recorded event, oldest first.
    pub fn events(&self) -> Vec<VmEvent> {
        self.state.lock().unwrap().events.clone()
    }
    /// A team's quota usage.
    pub fn usage(&self, team: TeamId) -> Usage {
        self.state
            .lock()
            .unwrap()
            .usage
            .get(&team)
            .copied()
            .unwrap_or_default()
    }
    /// Number of VMs stored.
    pub fn vm_count(&self) -> usize {
        self.state.lock().unwrap().vms.len()
    }
}

/// A VM record of the demo data's team and project (`data/demo.json`), running on Kraud.Cloud
/// with a new id: a starting point for tests that need stored VMs in other states.
pub fn sample_vm() -> VmRecord {
    let now = Timestamp::now().to_string();
    serde_json::from_value(serde_json::json!({
        "_id": VmId::new().to_string(),
        "name": "sample-vm",
        "region": {"datacenter": {"name": "berlin", "displayName": "Berlin"}, "physicalLocation": "Germany"},
        "image": {"version": {"name": "22_04-lts", "displayName": "22.04 LTS"}, "distribution": "Ubuntu"},
        "attestationId": "6f1c3b4e-8a1d-4c39-9d2e-2b6a4f7c9e10",
        "access": null,
        "authMethod": 1,
        "status": 3,
        "isBlocked": false,
        "tags": [],
        "subscription": null,
        "cloudProvider": "6548a383e2442d14b6bf9685",
        "provider": "6548a383e2442d14b6bf968b",
        "size": "6548a383e2442d14b6bf9745",
        "price": "6548a383e2442d14b6bf970b",
        "owner": "6548a41138406c14db33b606",
        "project": "6548a41f38406c14db33b62c",
        "team": "6548a41f38406c14db33b61e",
        "ipConfigurations": [],
        "createdAt": now,
        "updatedAt": now,
        "version": 1
    }))
    .expect("the sample VM record decodes")
}

fn pick<K: Ord + std::hash::Hash + Copy, V: Clone>(
    keys: &std::collections::BTreeSet<K>,
    from: &HashMap<K, V>,
) -> HashMap<K, V> {
    keys.iter()
        .filter_map(|k| from.get(k).map(|v| (*k, v.clone())))
        .collect()
}

#[async_trait]
impl Repository for MemoryRepository {
    async fn lookup(&self, l: &Lookup) -> Result<Found> {
        let s = self.state.lock().unwrap();
        let f = &s.found;
        Ok(Found {
            teams: pick(&l.teams, &f.teams),
            projects: pick(&l.projects, &f.projects),
            cloud_providers: pick(&l.cloud_providers, &f.cloud_providers),
            providers: pick(&l.providers, &f.providers),
            sizes: pick(&l.sizes, &f.sizes),
            prices: pick(&l.prices, &f.prices),
        })
    }

    async fn get_vm(&self, id: VmId) -> Result<Option<VmRecord>> {
        Ok(self.vm(id))
    }

    async fn team_vms(&self, team: TeamId, scope: TeamVms) -> Result<Vec<TeamVmRef>> {
        let s = self.state.lock().unwrap();
        let mut vms: Vec<&VmRecord> = s
            .vms
            .values()
            .filter(|vm| vm.team == team)
            .filter(|vm| match scope {
                TeamVms::NotDeleted => vm.status != VmStatus::Deleted,
                TeamVms::BilledSince(since) => {
                    vm.status != VmStatus::Deleted || vm.updated_at >= since
                }
            })
            .collect();
        vms.sort_by_key(|vm| std::cmp::Reverse((vm.created_at, vm.id)));
        Ok(vms.into_iter().map(TeamVmRef::of).collect())
    }

    async fn get_vms_with(&self, ids: &[VmId], lookup: &Lookup) -> Result<(Vec<VmRecord>, Found)> {
        let found = self.lookup(lookup).await?;
        let s = self.state.lock().unwrap();
        let vms = ids.iter().filter_map(|id| s.vms.get(id).cloned()).collect();
        Ok((vms, found))
    }

    async fn cloud_providers(&self) -> Result<Vec<CloudProvider>> {
        let s = self.state.lock().unwrap();
        let mut all: Vec<CloudProvider> = s.found.cloud_providers.values().cloned().collect();
        all.sort_by_key(|c| c.id);
        Ok(all)
    }

    async fn cloud_with_providers(
        &self,
        id: CloudProviderId,
    ) -> Result<Option<(CloudProvider, Vec<ProviderRecord>)>> {
        let s = self.state.lock().unwrap();
        let Some(cloud) = s.found.cloud_providers.get(&id).cloned() else {
            return Ok(None);
        };
        let mut providers: Vec<ProviderRecord> = s
            .found
            .providers
            .values()
            .filter(|p| p.cloud_provider == id)
            .cloned()
            .collect();
        providers.sort_by_key(|p| p.id);
        Ok(Some((cloud, providers)))
    }

    async fn provider_offers(&self, id: ProviderId) -> Result<ProviderOffers> {
        let s = self.state.lock().unwrap();
        let f = &s.found;
        let mut sizes: Vec<Size> = f
            .sizes
            .values()
            .filter(|z| z.provider == id)
            .cloned()
            .collect();
        sizes.sort_by_key(|z| z.id);
        let mut prices: Vec<Price> = f
            .prices
            .values()
            .filter(|p| p.provider == id)
            .cloned()
            .collect();
        prices.sort_by_key(|p| p.id);
        Ok(ProviderOffers {
            provider: f.providers.get(&id).cloned(),
            sizes,
            prices,
        })
    }

    async fn list_project_vms(
        &self,
        project: ProjectId,
        limit: usize,
        after: Option<&PageKey>,
        filter: &VmFilter,
    ) -> Result<VmPage> {
        let s = self.state.lock().unwrap();
        let mut all: Vec<&VmRecord> = s
            .vms
            .values()
            .filter(|v| v.project == project && v.status.is_active() && filter.matches(v))
            .collect();
        all.sort_by_key(|v| std::cmp::Reverse((v.created_at, v.id)));
        let start = match after {
            Some(k) => all
                .iter()
                .position(|v| (v.created_at, v.id) < (k.created_at, k.id))
                .unwrap_or(all.len()),
            None => 0,
        };
        let rest = &all[start..];
        let items: Vec<VmRecord> = rest.iter().take(limit).map(|v| (*v).clone()).collect();
        let next = (rest.len() > limit).then(|| PageKey::of(items.last().expect("limit > 0")));
        Ok(VmPage { items, next })
    }

    async fn insert_vms(
        &self,
        vms: &[VmRecord],
        events: &[VmEvent],
        limits: &QuotaLimits,
    ) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        for vm in vms {
            if s.names.contains_key(&(vm.project, vm.name.to_string())) {
                return Err(Error::conflict(
                    ConflictCode::HostNameTaken,
                    format!("host name '{}' is taken", vm.name),
                ));
            }
        }
        let add = Usage::of(vms);
        if let Some(team) = vms.first().map(|vm| vm.team).filter(|_| !add.is_zero()) {
            let current = s.usage.get(&team).copied().unwrap_or_default();
            if !limits.admits(current, add) {
                return Err(limits.refusal(team, Some(current), add));
            }
            s.usage.insert(
                team,
                Usage {
                    active_vms: current.active_vms + add.active_vms,
                    vcpus: current.vcpus + add.vcpus,
                },
            );
        }
        for vm in vms {
            s.names.insert((vm.project, vm.name.to_string()), vm.id);
            for r in &vm.rules {
                s.rule_owners.insert(
                    r.id,
                    RuleOwner {
                        vm: vm.id,
                        team: vm.team,
                    },
                );
            }
            s.vms.insert(vm.id, vm.clone());
            s.team_projects
                .entry(vm.team)
                .or_default()
                .insert(vm.project);
        }
        s.events.extend(events.iter().cloned());
        Ok(())
    }

    async fn replace_vm(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        names: &NameChange,
        event: Option<&VmEvent>,
    ) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        match s.vms.get(&vm.id) {
            Some(old) if old.version == expected_version => {}
            _ => return Err(Error::VersionConflict),
        }
        if let Some(claim) = &names.claim {
            if s.names.contains_key(&(vm.project, claim.to_string())) {
                return Err(Error::conflict(
                    ConflictCode::HostNameTaken,
                    format!("host name '{claim}' is taken"),
                ));
            }
        }
        if let Some(change) = names.vcpus {
            let u = s.usage.entry(vm.team).or_default();
            if change.room.is_some_and(|room| u.vcpus > room.vcpus) {
                return Err(Error::conflict(
                    ConflictCode::QuotaExceeded,
                    format!(
                        "the team's vCPU quota has no room for {} more",
                        change.delta
                    ),
                ));
            }
            u.vcpus = u.vcpus.saturating_add_signed(change.delta);
        }
        if let Some(release) = &names.release {
            s.names.remove(&(vm.project, release.to_string()));
        }
        if let Some(claim) = &names.claim {
            s.names.insert((vm.project, claim.to_string()), vm.id);
        }
        if let (true, Some(vcpus)) = (names.release_quota, vm.vcpus) {
            let u = s.usage.entry(vm.team).or_default();
            u.active_vms = u.active_vms.saturating_sub(1);
            u.vcpus = u.vcpus.saturating_sub(u64::from(vcpus));
        }
        s.vms.insert(vm.id, vm.clone());
        s.events.extend(event.cloned());
        Ok(())
    }

    async fn replace_vm_rules(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        change: RuleChange,
        event: &VmEvent,
    ) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        match s.vms.get(&vm.id) {
            Some(old) if old.version == expected_version => {}
            _ => return Err(Error::VersionConflict),
        }
        match change {
            RuleChange::Added(rule) => {
                s.rule_owners.insert(
                    rule,
                    RuleOwner {
                        vm: vm.id,
                        team: vm.team,
                    },
                );
            }
            RuleChange::Removed(rule) => {
                s.rule_owners.remove(&rule);
            }
        }
        s.vms.insert(vm.id, vm.clone());
        s.events.push(event.clone());
        Ok(())
    }

    async fn rule_owner(&self, rule: SecurityRuleId) -> Result<Option<RuleOwner>> {
        Ok(self.state.lock().unwrap().rule_owners.get(&rule).copied())
    }

    async fn vm_events(&self, id: VmId, limit: usize, after: Option<&str>) -> Result<EventPage> {
        let s = self.state.lock().unwrap();
        // Positions are indexes into the VM's history, newest first.
        let mut all: Vec<&VmEvent> = s.events.iter().filter(|e| e.vm_id == id).collect();
        all.reverse();
        let start = after.and_then(|a| a.parse::<usize>().ok()).unwrap_or(0);
        let items: Vec<VmEvent> = all
            .iter()
            .skip(start)
            .take(limit)
            .map(|e| (*e).clone())
            .collect();
        let end = start + items.len();
        Ok(EventPage {
            next: (end < all.len()).then(|| end.to_string()),
            items,
        })
    }

    async fn record_event(&self, event: &VmEvent) -> Result<()> {
        self.state.lock().unwrap().events.push(event.clone());
        Ok(())
    }

    async fn stale_vms(
        &self,
        category: StaleCategory,
        older_than: Timestamp,
        limit: usize,
    ) -> Result<Vec<VmId>> {
        let s = self.state.lock().unwrap();
        let mut found: Vec<(Timestamp, VmId)> = s
            .vms
            .values()
            .filter_map(|vm| match StaleCategory::of(vm) {
                Some((c, since)) if c == category && since < older_than => Some((since, vm.id)),
                _ => None,
            })
            .collect();
        found.sort();
        Ok(found.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn purge_vm(&self, id: VmId, expected_version: u64) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        match s.vms.get(&id) {
            Some(vm) if vm.version == expected_version => {}
            _ => return Err(Error::VersionConflict),
        }
        s.vms.remove(&id);
        s.events.retain(|e| e.vm_id != id);
        s.rule_owners.retain(|_, o| o.vm != id);
        Ok(())
    }

    async fn team_projects(&self, team: TeamId) -> Result<Vec<ProjectId>> {
        let s = self.state.lock().unwrap();
        Ok(s.team_projects
            .get(&team)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default())
    }

    async fn put_tombstone(&self, t: &Tombstone) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        s.tombstones.entry(t.gone).or_insert(t.at);
        Ok(())
    }

    async fn tombstones(&self, limit: usize) -> Result<Vec<Tombstone>> {
        let s = self.state.lock().unwrap();
        let mut all: Vec<Tombstone> = s
            .tombstones
            .iter()
            .map(|(gone, at)| Tombstone {
                gone: *gone,
                at: *at,
            })
            .collect();
        all.sort_by_key(|t| (t.at, t.gone));
        all.truncate(limit);
        Ok(all)
    }

    async fn clear_tombstone(&self, gone: Gone) -> Result<()> {
        self.state.lock().unwrap().tombstones.remove(&gone);
        Ok(())
    }
}
