//! Key layout of the single table.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use vmapi_core::Gone;
use vmapi_models::{
    CloudProviderId, HostName, ProjectId, ProviderId, StaleCategory, TeamId, Timestamp, VmId,
    VmRecord, VmStatus,
};

use crate::table::{GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK, GSI3_PK, GSI3_SK, PK, SK};

/// Kinds of item and their key prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Vm,
    Name,
    Team,
    Project,
    Cloud,
    Provider,
    Size,
    Price,
    /// A security rule's pointer to its VM.
    Rule,
    /// An admin key, by the hash of its text.
    AdminKey,
    /// An admin key's name claim.
    AdminKeyName,
}

impl Kind {
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            Kind::Vm => "VM",
            Kind::Name => "NAME",
            Kind::Team => "TEAM",
            Kind::Project => "PROJECT",
            Kind::Cloud => "CLOUD",
            Kind::Provider => "PROVIDER",
            Kind::Size => "SIZE",
            Kind::Price => "PRICE",
            Kind::Rule => "RULE",
            Kind::AdminKey => "ADMINKEY",
            Kind::AdminKeyName => "ADMINKEYNAME",
        }
    }

    /// Catalog kinds may be cached per container.
    pub(crate) fn is_catalog(self) -> bool {
        matches!(
            self,
            Kind::Cloud | Kind::Provider | Kind::Size | Kind::Price
        )
    }
}

pub(crate) type Key = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// `pk = KIND#id`, `sk = KIND`.
pub(crate) fn key(kind: Kind, id: &str) -> Key {
    HashMap::from([
        (PK.to_string(), s(format!("{}#{id}", kind.prefix()))),
        (SK.to_string(), s(kind.prefix())),
    ])
}

/// The note that a team used a project for VMs (in the team's partition), so the cleanup job
/// can find a removed team's VMs and tell whether a team still has any.
pub(crate) fn team_project_key(team: TeamId, project: ProjectId) -> Key {
    HashMap::from([
        (PK.to_string(), s(format!("{}#{team}", Kind::Team.prefix()))),
        (SK.to_string(), s(format!("{TEAM_PROJECT_PREFIX}{project}"))),
    ])
}

/// Sort-key prefix of [`team_project_key`].
pub(crate) const TEAM_PROJECT_PREFIX: &str = "USES#";

/// A team's quota usage (`activeVms`, `vcpus`), in the team's partition.
pub(crate) fn usage_key(team: TeamId) -> Key {
    HashMap::from([
        (PK.to_string(), s(format!("{}#{team}", Kind::Team.prefix()))),
        (SK.to_string(), s("USAGE")),
    ])
}

/// Partition of the tombstones of removed teams and projects.
pub(crate) const TOMBSTONES_PK: &str = "GONE";

/// A tombstone's key: `pk = GONE`, `sk = TEAM#id | PROJECT#id`.
pub(crate) fn tombstone_key(gone: Gone) -> Key {
    let sk = match gone {
        Gone::Team(t) => format!("{}#{t}", Kind::Team.prefix()),
        Gone::Project(p) => format!("{}#{p}", Kind::Project.prefix()),
    };
    HashMap::from([(PK.to_string(), s(TOMBSTONES_PK)), (SK.to_string(), s(sk))])
}

/// What a tombstone's sort key names.
pub(crate) fn parse_tombstone_sk(sk: &str) -> Option<Gone> {
    let (kind, id) = sk.split_once('#')?;
    match kind {
        "TEAM" => id.parse().ok().map(Gone::Team),
        "PROJECT" => id.parse().ok().map(Gone::Project),
        _ => None,
    }
}

/// The host-name claim of a project.
pub(crate) fn name_key(project: ProjectId, name: &HostName) -> Key {
    key(Kind::Name, &format!("{project}#{name}"))
}

/// An event in a VM's history: in the VM's partition, sorted by time (a random suffix keeps
/// two events of the same millisecond apart).
pub(crate) fn event_key(vm: VmId, at: &str) -> Key {
    let mut suffix = [0u8; 4];
    // Uniqueness only; a failure of the random source falls back to zeros and the
    // put's condition then refuses a duplicate instead of overwriting it.
    let _ = getrandom::fill(&mut suffix);
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    HashMap::from([
        (PK.to_string(), s(format!("{}#{vm}", Kind::Vm.prefix()))),
        (SK.to_string(), s(format!("EVENT#{at}#{suffix}"))),
    ])
}

/// Partition of the catalog in the list index (gsi1): every catalog item carries it, so the
/// catalog is read with one query, never a scan. Sort keys ([`catalog_sk`]): `CLOUD#{id}`,
/// `PROVIDER#{id}`, and a provider's sizes and prices right after it.
pub(crate) const CATALOG_PK: &str = "CATALOG";

/// A catalog item's sort key in [`CATALOG_PK`]: `KIND#id`, or for a size or price
/// `PROVIDER#{provider}#KIND#id`, so one query (`begins_with PROVIDER#{provider}`) reads a
/// provider with everything it offers.
pub(crate) fn catalog_sk(kind: Kind, id: &str, provider: Option<ProviderId>) -> String {
    match provider {
        Some(p) => format!("{}#{p}#{}#{id}", Kind::Provider.prefix(), kind.prefix()),
        None => format!("{}#{id}", kind.prefix()),
    }
}

/// A provider's copy in its cloud provider's partition (`pk = CLOUD#{cloud}`,
/// `sk = PROVIDER#{id}`), so one query of that partition reads a cloud provider with its
/// providers.
pub(crate) fn cloud_provider_copy_key(cloud: CloudProviderId, provider: ProviderId) -> Key {
    HashMap::from([
        (
            PK.to_string(),
            s(format!("{}#{cloud}", Kind::Cloud.prefix())),
        ),
        (
            SK.to_string(),
            s(format!("{}#{provider}", Kind::Provider.prefix())),
        ),
    ])
}

/// Partition of a project's active VMs in the GSI.
pub(crate) fn project_vms_pk(project: ProjectId) -> String {
    format!("PROJECT#{project}#VMS")
}

/// Sort key in the GSI: creation time, then id (newest first when read backwards).
pub(crate) fn project_vms_sk(created_at: Timestamp, id: VmId) -> String {
    format!("{created_at}#{id}")
}

/// The position a list-index sort key names.
pub(crate) fn parse_project_vms_sk(sk: &str) -> Option<vmapi_core::PageKey> {
    let (at, id) = sk.rsplit_once('#')?;
    Some(vmapi_core::PageKey {
        created_at: Timestamp::parse(at).ok()?,
        id: VmId::parse(id).ok()?,
    })
}

/// The full key of a VM in the GSI (table key plus index key), for `ExclusiveStartKey`.
pub(crate) fn gsi_start_key(project: ProjectId, created_at: Timestamp, id: VmId) -> Key {
    let mut k = key(Kind::Vm, &id.to_string());
    k.insert(GSI1_PK.to_string(), s(project_vms_pk(project)));
    k.insert(GSI1_SK.to_string(), s(project_vms_sk(created_at, id)));
    k
}

/// Partitions of the stale index (spreads its writes; a cleanup run queries each).
pub(crate) const STALE_SHARDS: u32 = 4;

/// The stale-index partition of a VM.
pub(crate) fn stale_pk(shard: u32) -> String {
    format!("STALE#{shard}")
}

fn stale_shard(id: VmId) -> u32 {
    let last = id.to_string().bytes().last().unwrap_or(b'0');
    (last as u32) % STALE_SHARDS
}

/// Sort-key range of a category up to (excluding) `older_than`.
pub(crate) fn stale_range(category: StaleCategory, older_than: Timestamp) -> (String, String) {
    (
        format!("{}#", category.name()),
        format!("{}#{older_than}", category.name()),
    )
}

/// The team-index partition of a team's VMs.
pub(crate) fn team_vms_pk(team: TeamId) -> String {
    format!("TEAM#{team}#VMS")
}

/// Team-index sort-key prefix of VMs that are not deleted (newest last).
pub(crate) const TEAM_LIVE_PREFIX: &str = "LIVE#";
/// Team-index sort-key prefix of deleted VMs (by deletion time; sorts before `LIVE#`).
pub(crate) const TEAM_DELETED_PREFIX: &str = "DELETED#";

/// Adds key attributes to a VM item. Only active VMs carry the list index keys; only VMs the
/// cleanup job may have to act on carry the stale index keys (both indexes are sparse); every
/// VM carries the team index keys, by creation while not deleted, by deletion once deleted.
pub(crate) fn vm_item_keys(vm: &VmRecord, item: &mut Key) {
    item.extend(key(Kind::Vm, &vm.id.to_string()));
    item.insert("entity".into(), s("vm"));
    if vm.status.is_active() {
        item.insert(GSI1_PK.into(), s(project_vms_pk(vm.project)));
        item.insert(GSI1_SK.into(), s(project_vms_sk(vm.created_at, vm.id)));
    }
    item.insert(GSI3_PK.into(), s(team_vms_pk(vm.team)));
    item.insert(
        GSI3_SK.into(),
        s(if vm.status == VmStatus::Deleted {
            format!("{TEAM_DELETED_PREFIX}{}#{}", vm.updated_at, vm.id)
        } else {
            format!("{TEAM_LIVE_PREFIX}{}#{}", vm.created_at, vm.id)
        }),
    );
    if let Some((category, since)) = StaleCategory::of(vm) {
        item.insert(GSI2_PK.into(), s(stale_pk(stale_shard(vm.id))));
        item.insert(
            GSI2_SK.into(),
            s(format!("{}#{since}#{}", category.name(), vm.id)),
        );
    }
}
