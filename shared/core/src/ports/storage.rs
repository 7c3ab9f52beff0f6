//! The storage, clock and metrics ports: what the use cases need from the table, time and
//! the metrics sink.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use vmapi_models::{
    AdminKeyName, AdminKeyRecord, Catalog, CloudProvider, CloudProviderId, HostName, Price,
    PriceId, Project, ProjectId, ProviderId, ProviderRecord, SecurityRuleId, Size, SizeId,
    StaleCategory, Tag, Team, TeamId, Timestamp, VmEvent, VmId, VmRecord, VmStatus,
};

use crate::error::Result;
use crate::quota::{QuotaLimits, Usage};

/// Items to fetch together in one round trip. Sets, so keys are never asked twice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    /// Teams.
    pub teams: BTreeSet<TeamId>,
    /// Projects.
    pub projects: BTreeSet<ProjectId>,
    /// Cloud providers.
    pub cloud_providers: BTreeSet<CloudProviderId>,
    /// Providers.
    pub providers: BTreeSet<ProviderId>,
    /// Sizes.
    pub sizes: BTreeSet<SizeId>,
    /// Prices.
    pub prices: BTreeSet<PriceId>,
}

impl Lookup {
    /// Adds the team, project and catalog entries a VM refers to.
    pub fn add_vm(&mut self, vm: &VmRecord) {
        self.teams.insert(vm.team);
        self.projects.insert(vm.project);
        self.add_catalog_of(vm);
    }

    /// Adds only the catalog entries a VM refers to.
    pub fn add_catalog_of(&mut self, vm: &VmRecord) {
        self.cloud_providers.insert(vm.cloud_provider);
        self.providers.insert(vm.provider);
        self.sizes.insert(vm.size);
        self.prices.insert(vm.price);
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.teams.len()
            + self.projects.len()
            + self.cloud_providers.len()
            + self.providers.len()
            + self.sizes.len()
            + self.prices.len()
    }

    /// Whether nothing is asked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a [`Lookup`] found; absent keys are simply missing.
#[derive(Clone, Debug, Default)]
pub struct Found {
    /// Teams.
    pub teams: HashMap<TeamId, Team>,
    /// Projects.
    pub projects: HashMap<ProjectId, Project>,
    /// Cloud providers.
    pub cloud_providers: HashMap<CloudProviderId, CloudProvider>,
    /// Providers.
    pub providers: HashMap<ProviderId, ProviderRecord>,
    /// Sizes.
    pub sizes: HashMap<SizeId, Size>,
    /// Prices.
    pub prices: HashMap<PriceId, Price>,
}

/// Position in a project's VM list: the last VM of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageKey {
    /// Its creation time.
    pub created_at: Timestamp,
    /// Its id.
    pub id: VmId,
}

impl PageKey {
    /// The key of a VM.
    pub fn of(vm: &VmRecord) -> Self {
        PageKey {
            created_at: vm.created_at,
            id: vm.id,
        }
    }
}

/// Which of a project's active VMs a list shows (all when empty). Applied by the store while it
/// reads the list index (a filter, never a scan), so a filtered page may hold fewer VMs than
/// asked for while more follow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmFilter {
    /// Any of these statuses (active ones only: the list index holds no other).
    pub statuses: Vec<VmStatus>,
    /// Carrying this tag.
    pub tag: Option<Tag>,
    /// Whose host name starts with this.
    pub name_prefix: Option<String>,
}

impl VmFilter {
    /// Whether it lets every VM through.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty() && self.tag.is_none() && self.name_prefix.is_none()
    }

    /// Whether `vm` passes (the in-memory twin of the store's filter expression).
    pub fn matches(&self, vm: &VmRecord) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&vm.status))
            && self
                .tag
                .as_ref()
                .is_none_or(|t| vm.tags.as_slice().contains(t))
            && self
                .name_prefix
                .as_ref()
                .is_none_or(|p| vm.name.as_str().starts_with(p.as_str()))
    }
}

/// One page of a project's active VMs, newest first.
#[derive(Clone, Debug, Default)]
pub struct VmPage {
    /// The VMs.
    pub items: Vec<VmRecord>,
    /// Where the next page starts, if there is one.
    pub next: Option<PageKey>,
}

/// One page of a VM's history, newest first.
#[derive(Clone, Debug, Default)]
pub struct EventPage {
    /// The events.
    pub items: Vec<VmEvent>,
    /// Where the next page starts (an opaque position), if there is one.
    pub next: Option<String>,
}

/// A VM as the team index holds it: its id and the items a populated VM names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamVmRef {
    /// The VM.
    pub id: VmId,
    /// Its project.
    pub project: ProjectId,
    /// Its cloud provider.
    pub cloud_provider: CloudProviderId,
    /// Its provider.
    pub provider: ProviderId,
    /// Its size.
    pub size: SizeId,
    /// Its price.
    pub price: PriceId,
}

impl TeamVmRef {
    /// The reference of a VM record.
    pub fn of(vm: &VmRecord) -> Self {
        TeamVmRef {
            id: vm.id,
            project: vm.project,
            cloud_provider: vm.cloud_provider,
            provider: vm.provider,
            size: vm.size,
            price: vm.price,
        }
    }

    /// Adds the project and catalog entries it names.
    pub fn add_to(&self, lookup: &mut Lookup) {
        lookup.projects.insert(self.project);
        lookup.cloud_providers.insert(self.cloud_provider);
        lookup.providers.insert(self.provider);
        lookup.sizes.insert(self.size);
        lookup.prices.insert(self.price);
    }
}

/// Which of a team's VMs [`Repository::team_vms`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamVms {
    /// Every VM that is not deleted (status 8), newest first.
    NotDeleted,
    /// Every VM that is not deleted and those deleted at or after this time (what a cost
    /// estimate of the month since then bills), in no particular order.
    BilledSince(Timestamp),
}

/// Host-name claims (and quota usage) to change together with a VM write.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameChange {
    /// Release this name of the VM's project.
    pub release: Option<HostName>,
    /// Claim this name in the VM's project (fails with `HOST_NAME_TAKEN` if taken).
    pub claim: Option<HostName>,
    /// The VM leaves the active statuses with this write: take it (one VM and its `vcpus`)
    /// off its team's quota usage in the same atomic write. Set only on the one write that
    /// moves it from active to inactive (the version condition makes it happen once); VMs
    /// without `vcpus` were never counted and take nothing off.
    pub release_quota: bool,
    /// A resize changes the VM's vCPUs on its team's quota usage in the same atomic write.
    pub vcpus: Option<VcpuChange>,
}

/// vCPUs added to (or, negative, taken off) a team's quota usage with a VM write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VcpuChange {
    /// vCPUs to add.
    pub delta: i64,
    /// Only if the usage before is at most this (else `Conflict(QuotaExceeded)`); `None`:
    /// unconditional.
    pub room: Option<Usage>,
}

impl NameChange {
    /// What a VM that leaves the active statuses gives up: its name and its quota usage.
    pub fn leaving_active(vm: &VmRecord) -> Self {
        NameChange {
            release: Some(vm.name.clone()),
            claim: None,
            release_quota: true,
            vcpus: None,
        }
    }
}

/// The one security rule a rule-set write adds or removes (its pointer item, which finds the
/// rule's VM by the rule's id, changes in the same atomic write as the VM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleChange {
    /// The rule was added to the VM's `rules`.
    Added(SecurityRuleId),
    /// The rule was removed from the VM's `rules`.
    Removed(SecurityRuleId),
}

/// Where a security rule lives: its VM and the VM's team.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleOwner {
    /// The VM whose record holds the rule.
    pub vm: VmId,
    /// The VM's team.
    pub team: TeamId,
}

/// Storage of VMs, teams, projects and the catalog.
/// A provider with everything it offers: what the catalog lookups of one provider read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProviderOffers {
    /// The provider, with its locations and images.
    pub provider: Option<ProviderRecord>,
    /// Its sizes, in id order.
    pub sizes: Vec<Size>,
    /// Its prices, in id order.
    pub prices: Vec<Price>,
}

#[async_trait]
pub trait Repository: Send + Sync {
    /// Fetches every item named by `lookup` in one round trip (catalog entries may come from a cache).
    async fn lookup(&self, lookup: &Lookup) -> Result<Found>;

    /// Every cloud provider, in id order. One round trip.
    async fn cloud_providers(&self) -> Result<Vec<CloudProvider>>;

    /// A cloud provider with its providers (in id order); `None` if there is no such cloud
    /// provider. One round trip.
    async fn cloud_with_providers(
        &self,
        id: CloudProviderId,
    ) -> Result<Option<(CloudProvider, Vec<ProviderRecord>)>>;

    /// A provider with its sizes and prices (`provider` is `None` if there is no such
    /// provider). One round trip.
    async fn provider_offers(&self, id: ProviderId) -> Result<ProviderOffers>;

    /// A VM by id, in any status.
    async fn get_vm(&self, id: VmId) -> Result<Option<VmRecord>>;

    /// A team's VMs as the team index holds them (ids and references), in one round trip
    /// (`scope` says which, and in what order).
    async fn team_vms(&self, team: TeamId, scope: TeamVms) -> Result<Vec<TeamVmRef>>;

    /// VMs by id, in the order asked (absent and expired ones left out), together with the
    /// items `lookup` names: one round trip, in chunks of 100 sent together.
    async fn get_vms_with(&self, ids: &[VmId], lookup: &Lookup) -> Result<(Vec<VmRecord>, Found)>;

    /// Up to `limit` active VMs of a project that pass `filter`, newest first, after `after`.
    async fn list_project_vms(
        &self,
        project: ProjectId,
        limit: usize,
        after: Option<&PageKey>,
        filter: &VmFilter,
    ) -> Result<VmPage>;

    /// Writes new VMs and claims their host names, with `events` in their histories, and adds
    /// them to their team's quota usage ([`crate::Usage::of`]), all or nothing. A taken name
    /// fails with `Conflict(HostNameTaken)`; usage that would exceed `limits` with
    /// `Conflict(QuotaExceeded)` (checked in the same atomic write, so concurrent creates never
    /// exceed it). All VMs are of one team.
    async fn insert_vms(
        &self,
        vms: &[VmRecord],
        events: &[VmEvent],
        limits: &QuotaLimits,
    ) -> Result<()>;

    /// Replaces a VM if its stored version is `expected_version` (else `VersionConflict`),
    /// changing host-name claims and appending `event` to its history in the same atomic write.
    async fn replace_vm(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        names: &NameChange,
        event: Option<&VmEvent>,
    ) -> Result<()>;

    /// Replaces a VM whose security rules changed if its stored version is `expected_version`
    /// (else `VersionConflict`), writing or removing the changed rule's pointer and appending
    /// `event` to its history in the same atomic write.
    async fn replace_vm_rules(
        &self,
        vm: &VmRecord,
        expected_version: u64,
        change: RuleChange,
        event: &VmEvent,
    ) -> Result<()>;

    /// The VM (and team) a security rule belongs to, from the rule's pointer; `None` when no
    /// rule has this id. One round trip.
    async fn rule_owner(&self, rule: SecurityRuleId) -> Result<Option<RuleOwner>>;

    /// A VM by id (as [`Repository::get_vm`]) together with the items `lookup` names, in one
    /// round trip where the store can.
    async fn get_vm_with(&self, id: VmId, lookup: &Lookup) -> Result<(Option<VmRecord>, Found)> {
        let vm = self.get_vm(id).await?;
        Ok((vm, self.lookup(lookup).await?))
    }

    /// A page of a VM's history, newest first, after `after` (the position the previous page
    /// ended at).
    async fn vm_events(&self, id: VmId, limit: usize, after: Option<&str>) -> Result<EventPage>;

    /// Appends an event to a VM's history.
    async fn record_event(&self, event: &VmEvent) -> Result<()>;

    /// Ids of VMs in `category` whose age counts from before `older_than` (the sparse stale
    /// index; never a scan), oldest first, at most `limit`.
    async fn stale_vms(
        &self,
        category: StaleCategory,
        older_than: Timestamp,
        limit: usize,
    ) -> Result<Vec<VmId>>;

    /// Removes a VM record, its history and its security rules' pointers for good, if its
    /// version is still `expected_version`.
    async fn purge_vm(&self, id: VmId, expected_version: u64) -> Result<()>;

    /// The projects a team has ever created VMs in (recorded with each create).
    async fn team_projects(&self, team: TeamId) -> Result<Vec<ProjectId>>;

    /// Notes that a team or project was removed from the platform, so the cleanup job deletes
    /// its VMs (also the healthy ones, which the stale index does not name). Idempotent.
    async fn put_tombstone(&self, tombstone: &Tombstone) -> Result<()>;

    /// Up to `limit` tombstones, oldest first.
    async fn tombstones(&self, limit: usize) -> Result<Vec<Tombstone>>;

    /// Forgets a tombstone once nothing of it is left.
    async fn clear_tombstone(&self, gone: Gone) -> Result<()>;
}

/// Storage of the records an operator makes when onboarding an account: teams, projects and
/// the catalog (reads go through [`Repository::lookup`]).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores a new team; an existing id is `Invalid` (nothing is overwritten).
    async fn insert_team(&self, team: &Team) -> Result<()>;

    /// Replaces a team if its stored `updatedAt` is still `expected_updated_at` (else
    /// `VersionConflict`; a missing team is `NotFound`).
    async fn replace_team(&self, team: &Team, expected_updated_at: Timestamp) -> Result<()>;

    /// Stores a new project if its team exists (else `NotFound(Team)`), in one atomic write; an
    /// existing id is `Invalid`.
    async fn insert_project(&self, project: &Project) -> Result<()>;

    /// Writes every catalog entry (overwriting entries with the same ids); returns how many.
    async fn put_catalog(&self, catalog: &Catalog) -> Result<usize>;

    /// The whole catalog as stored (from the catalog's own index; never a scan), each list in
    /// id order.
    async fn catalog(&self) -> Result<Catalog>;
}

/// Storage of admin keys (as hashes; docs/admin-api.md).
#[async_trait]
pub trait AdminKeyStore: Send + Sync {
    /// Stores a new key; a name or hash already stored is `Invalid` (nothing is written).
    async fn insert_admin_key(&self, key: &AdminKeyRecord) -> Result<()>;

    /// The key with this hash, revoked or not. One round trip.
    async fn admin_key_by_hash(&self, key_hash: &str) -> Result<Option<AdminKeyRecord>>;

    /// Every key, revoked ones too, by name. One round trip.
    async fn admin_keys(&self) -> Result<Vec<AdminKeyRecord>>;

    /// Marks the named key revoked at `at`; whether it was stored and not yet revoked.
    async fn revoke_admin_key(&self, name: &AdminKeyName, at: Timestamp) -> Result<bool>;
}

/// A team or project removed from the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Gone {
    /// A team (with every project it had).
    Team(TeamId),
    /// One project.
    Project(ProjectId),
}

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Gone::Team(t) => write!(f, "team {t}"),
            Gone::Project(p) => write!(f, "project {p}"),
        }
    }
}

/// The note that a team or project is gone, and since when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tombstone {
    /// What is gone.
    pub gone: Gone,
    /// When its removal was seen.
    pub at: Timestamp,
}

/// The current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A cloud operation the provisioner finished, as a measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedOp {
    /// The driver that carried it out (`aws`, `azure`, `kraud`, `simulated`), or `none` when
    /// the VM never reached a cloud.
    pub cloud: String,
    /// The operation.
    pub op: vmapi_models::OpKind,
    /// Whether it reached its goal (a failed VM or a reason recorded means it did not).
    pub succeeded: bool,
    /// From the request to the write that finished it.
    pub duration: std::time::Duration,
}

/// Where the provisioner reports its operations (CloudWatch metrics in Lambda; nowhere by
/// default).
pub trait Metrics: Send + Sync {
    /// One finished operation.
    fn operation_finished(&self, op: &FinishedOp);
}

/// Measurements go nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn operation_finished(&self, _: &FinishedOp) {}
}
