//! The [`Repository`] port over DynamoDB: each method is carried out by the file of its concern.

use async_trait::async_trait;
use vmapi_core::QuotaLimits;
use vmapi_core::{
    EventPage, Found, Gone, Lookup, NameChange, PageKey, ProviderOffers, Repository, Result,
    RuleChange, RuleOwner, TeamVms, Tombstone, VmFilter, VmPage,
};
use vmapi_models::{
    CloudProvider, CloudProviderId, ProjectId, ProviderId, ProviderRecord, SecurityRuleId,
    StaleCategory, Timestamp, VmEvent, VmId, VmRecord,
};

use super::base::DynamoRepository;
use super::{catalog, discovery, events, rules, stale, team, vms};

#[async_trait]
impl Repository for DynamoRepository {
    async fn lookup(&self, lookup: &Lookup) -> Result<Found> {
        catalog::lookup(self, lookup).await
    }

    async fn get_vm(&self, id: VmId) -> Result<Option<VmRecord>> {
        vms::get_vm(self, id).await
    }

    async fn team_vms(
        &self,
        team: vmapi_models::TeamId,
        scope: TeamVms,
    ) -> Result<Vec<vmapi_core::TeamVmRef>> {
        team::team_vms(self, team, scope).await
    }

    async fn get_vms_with(&self, ids: &[VmId], lookup: &Lookup) -> Result<(Vec<VmRecord>, Found)> {
        team::get_vms_with(self, ids, lookup).await
    }

    async fn cloud_providers(&self) -> Result<Vec<CloudProvider>> {
        discovery::cloud_providers(self).await
    }

    async fn cloud_with_providers(
        &self,
        id: CloudProviderId,
    ) -> Result<Option<(CloudProvider, Vec<ProviderRecord>)>> {
        discovery::cloud_with_providers(self, id).await
    }

    async fn provider_offers(&self, id: ProviderId) -> Result<ProviderOffers> {
        discovery::provider_offers(self, id).await
    }

    async fn stale_vms(
        &self,
        category: StaleCategory,
        older_than: Timestamp,
        limit: usize,
    ) -> Result<Vec<VmId>> {
        stale::stale_vms(self, category, older_than, limit).await
    }

    async fn purge_vm(&self, id: VmId, expected_version: u64) -> Result<()> {
        stale::purge_vm(self, id, expected_version).await
    }

    async fn team_projects(&self, team: vmapi_models::TeamId) -> Result<Vec<ProjectId>> {
        stale::team_projects(self, team).await
    }

    async fn put_tombstone(&self, tombstone: &Tombstone) -> Result<()> {
        stale::put_tombstone(self, tombstone).await
    }

    async fn tombstones(&self, limit: usize) -> Result<Vec<Tombstone>> {
        stale::tombstones(self, limit).await
    }

    async fn clear_tombstone(&self, gone: Gone) -> Result<()> {
        stale::clear_tombstone(self, gone).await
    }

    async fn list_project_vms(
        &self,
        project: ProjectId,
        limit: usize,
        after: Option<&PageKey>,
        filter: &VmFilter,
    ) -> Result<VmPage> {
        vms::list_project_vms(self, project, limit, after, filter).await
    }

    async fn insert_vms(
        &self,
        vms: &[VmRecord],
        events: &[VmEvent],
        limits: &QuotaLimits,
    ) -> Result<()> {
        vms::insert_vms(self, vms, events, limits).await
    }

    async fn replace_vm(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        names: &NameChange,
        event: Option<&VmEvent>,
    ) -> Result<()> {
        vms::replace_vm(self, vm, expected_version, names, event).await
    }

    async fn replace_vm_rules(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        change: RuleChange,
        event: &VmEvent,
    ) -> Result<()> {
        rules::replace_vm_rules(self, vm, expected_version, change, event).await
    }

    async fn rule_owner(&self, rule: SecurityRuleId) -> Result<Option<RuleOwner>> {
        rules::rule_owner(self, rule).await
    }

    async fn get_vm_with(&self, id: VmId, lookup: &Lookup) -> Result<(Option<VmRecord>, Found)> {
        catalog::get_vm_with(self, id, lookup).await
    }

    async fn vm_events(&self, id: VmId, limit: usize, after: Option<&str>) -> Result<EventPage> {
        events::vm_events(self, id, limit, after).await
    }

    async fn record_event(&self, event: &VmEvent) -> Result<()> {
        events::record_event(self, event).await
    }
}
