//! Virtual machines: the stored record, the wire form and action results.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::billing::Billing;
use crate::catalog::{Image, PriceRef, ProviderRef, Region, SizeRef};
use crate::credentials::{Login, SshPublicKey};
use crate::ids::{
    CloudProviderId, IpConfigId, PriceId, ProjectId, ProviderId, SizeId, SubscriptionId, TeamId,
    UserId, VmId,
};
use crate::names::{HostName, Tags};
use crate::reference::Ref;
use crate::status::{AuthMethod, VmStatus};
use crate::team::{ProjectRef, TeamRef};
use crate::timestamp::Timestamp;

/// The user's own login material (`access`); `null` means the service generates it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Access {
    /// An OpenSSH public key: Ed25519, or RSA of at least 3072 bits.
    pub ssh_public_key: SshPublicKey,
}

/// An IP address of a VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct IpConfiguration {
    /// Id.
    #[serde(rename = "_id")]
    pub id: IpConfigId,
    /// `public` or `private`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Dynamic` or `Static`.
    pub method: String,
    /// `IPv4` or `IPv6`.
    pub version: String,
    /// The address.
    pub address: String,
}

/// Cloud work the provisioner still has to do for a VM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Create the VM in its cloud.
    Create,
    /// Power it on.
    Start,
    /// Power it off.
    Stop,
    /// Restart it.
    Reboot,
    /// Tear it down.
    Delete,
    /// Make the cloud's firewall equal to the VM's security rules.
    #[serde(rename = "apply-rules")]
    ApplyRules,
    /// Change its size to the record's `resizeTo`.
    Resize,
}

impl OpKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::Start => "start",
            OpKind::Stop => "stop",
            OpKind::Reboot => "reboot",
            OpKind::Delete => "delete",
            OpKind::ApplyRules => "apply-rules",
            OpKind::Resize => "resize",
        }
    }
}

/// A pending operation (`pendingOp`), set by the API in the same write as the status change.
/// The table's stream is filtered on it, so every write that carries one wakes the provisioner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingOp {
    /// What to do.
    pub op: OpKind,
    /// When it was asked for (deadlines count from here).
    pub requested_at: Timestamp,
    /// How often the provisioner has looked at it (bumped to poll the cloud again).
    #[serde(default)]
    pub attempt: u32,
}

impl PendingOp {
    /// A new operation.
    pub fn new(op: OpKind, now: Timestamp) -> Self {
        PendingOp {
            op,
            requested_at: now,
            attempt: 0,
        }
    }
}

/// The size (and price) a resize moves a VM to, with what the provisioner and billing need
/// when the cloud confirms it (`resizeTo` on the record while the resize is pending).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResizeTarget {
    /// The new size.
    pub size: SizeId,
    /// Its name, which is the cloud's (e.g. `m6a.xlarge`, `Standard_D4s_v5`).
    pub size_name: String,
    /// Its vCPUs.
    pub vcpus: u32,
    /// The new price.
    pub price: PriceId,
    /// The new price's hourly amount.
    pub price_per_hour: crate::Money,
    /// Its currency.
    pub currency_code: String,
    /// The vCPUs of the size it moves from (what the VM counts again if the resize fails;
    /// meanwhile it counts the larger of the two).
    pub from_vcpus: u32,
}

/// Where a VM lives in its cloud.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudRef {
    /// Driver that made it (`aws`, `azure`, `kraud`, `simulated`).
    pub driver: String,
    /// The provider's id (instance id, resource name, namespace).
    pub id: String,
    /// Region or datacenter.
    pub region: String,
    /// The provider's last reported state.
    #[serde(default)]
    pub raw_state: String,
}

/// Why a VM may need the cleanup job, and since when (the index keys of the sparse stale index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StaleCategory {
    /// In a transitional status (0, 1, 2, 4, 5) or with a pending operation; since it was asked.
    Transitional,
    /// Failed (6); since it failed.
    Failed,
    /// Deleted (8); since it was deleted.
    Deleted,
    /// Active with a user-set expiry; at the expiry.
    Expiring,
}

impl StaleCategory {
    /// All categories.
    pub const ALL: [StaleCategory; 4] = [
        StaleCategory::Transitional,
        StaleCategory::Failed,
        StaleCategory::Deleted,
        StaleCategory::Expiring,
    ];

    /// Short name (index key prefix, logs).
    pub fn name(self) -> &'static str {
        match self {
            StaleCategory::Transitional => "transitional",
            StaleCategory::Failed => "failed",
            StaleCategory::Deleted => "deleted",
            StaleCategory::Expiring => "expiring",
        }
    }

    /// The category a VM is in, and the time its age counts from; `None` for a healthy VM
    /// (running or stopped, nothing pending, no expiry): those never enter the index.
    pub fn of(vm: &VmRecord) -> Option<(StaleCategory, Timestamp)> {
        if let Some(p) = &vm.pending_op {
            return Some((StaleCategory::Transitional, p.requested_at));
        }
        match vm.status {
            VmStatus::Creating
            | VmStatus::Provisioning
            | VmStatus::Starting
            | VmStatus::Stopping
            | VmStatus::Deleting => Some((StaleCategory::Transitional, vm.updated_at)),
            VmStatus::Failed => Some((StaleCategory::Failed, vm.updated_at)),
            VmStatus::Deleted => Some((StaleCategory::Deleted, vm.updated_at)),
            VmStatus::Running | VmStatus::Stopped => {
                vm.expires_at.map(|at| (StaleCategory::Expiring, at))
            }
        }
    }
}

/// A VM as stored: ids only, plus bookkeeping that never goes on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmRecord {
    /// Id.
    #[serde(rename = "_id")]
    pub id: VmId,
    /// Host name, unique among the project's active VMs.
    pub name: HostName,
    /// Region.
    pub region: Region,
    /// Image.
    pub image: Image,
    /// Attestation id (UUID v4) set at creation.
    pub attestation_id: Uuid,
    /// The user's own public key, if given.
    pub access: Option<Access>,
    /// Login method.
    pub auth_method: AuthMethod,
    /// Lifecycle status.
    pub status: VmStatus,
    /// Blocked by an administrator.
    pub is_blocked: bool,
    /// Tags.
    pub tags: Tags,
    /// Subscription, if any.
    pub subscription: Option<SubscriptionId>,
    /// Cloud provider.
    pub cloud_provider: CloudProviderId,
    /// Provider offering.
    pub provider: ProviderId,
    /// Size.
    pub size: SizeId,
    /// Price.
    pub price: PriceId,
    /// Creator.
    pub owner: UserId,
    /// Project.
    pub project: ProjectId,
    /// Team.
    pub team: TeamId,
    /// Addresses.
    pub ip_configurations: Vec<IpConfiguration>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Where the VM's login lives; absent on records made before logins existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<Login>,
    /// Cloud work still to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_op: Option<PendingOp>,
    /// Why the VM failed, or why its last operation did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Where it lives in its cloud, once created there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudRef>,
    /// User-set expiry: the cleanup job deletes the VM after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// For deleted records: when the record itself goes (DynamoDB TTL attribute, Unix seconds).
    #[serde(
        default,
        rename = "expiresAtEpoch",
        skip_serializing_if = "Option::is_none"
    )]
    pub purge_after_epoch: Option<i64>,
    /// The vCPUs (its size's) this VM counts against its team's quota while active, set at
    /// create. Absent on VMs made before quotas existed: those are not counted, so their
    /// deletion takes nothing off the team's usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    /// The VM's security rules (desired state; at most `rules::MAX_RULES_PER_VM`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::rules::SecurityRule>,
    /// Bumped by every change to `rules`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rules_revision: u32,
    /// The `rules_revision` the cloud's firewall was last made equal to (by the provisioner).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rules_applied: u32,
    /// The size a pending resize moves it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_to: Option<ResizeTarget>,
    /// What its charge for the current month is computed from; absent on VMs made before
    /// billing existed (docs/costs.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<Billing>,
    /// Optimistic-locking version, incremented by every write.
    pub version: u64,
}

impl VmRecord {
    /// Moves the VM to `status` at `at`, bringing its billing up to date.
    pub fn set_status(&mut self, status: VmStatus, at: Timestamp) {
        self.status = status;
        if let Some(billing) = &mut self.billing {
            billing.status_changed(status, at);
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A virtual machine. `provider`, `size`, `price`, `project` and `team` are ids or the
/// objects they name ("populated"), as each endpoint documents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachine {
    /// Id.
    #[serde(rename = "_id")]
    pub id: VmId,
    /// Region.
    pub region: Region,
    /// Image.
    pub image: Image,
    /// Attestation id (UUID v4) set at creation
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = "uuid"))]
    pub attestation_id: Uuid,
    /// The user's own public key, or `null` (the service generated the login).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub access: Option<Access>,
    /// Login method.
    pub auth_method: AuthMethod,
    /// Lifecycle status.
    pub status: VmStatus,
    /// `status` again, written by name (the constructor sets both).
    #[serde(with = "status_name")]
    #[cfg_attr(feature = "openapi", schema(schema_with = status_name::schema))]
    pub status_name: VmStatus,
    /// Why the VM failed (status 6) or its teardown did not complete (status 5); absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub status_reason: Option<String>,
    /// Blocked by an administrator.
    pub is_blocked: bool,
    /// Tags.
    pub tags: Tags,
    /// Subscription, or `null`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub subscription: Option<SubscriptionId>,
    /// Host name, unique among the project's active VMs.
    pub name: HostName,
    /// Provider offering.
    pub provider: ProviderRef,
    /// Size.
    pub size: SizeRef,
    /// Price.
    pub price: PriceRef,
    /// Creator (the `sub` of the token that created it).
    pub owner: UserId,
    /// Project.
    pub project: ProjectRef,
    /// Team.
    pub team: TeamRef,
    /// Addresses (empty until the cloud has given it some).
    pub ip_configurations: Vec<IpConfiguration>,
    /// User-set expiry, if any: the cleanup job deletes the VM after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub expires_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Attestation report; `null` until attestation exists.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub attestation: Option<serde_json::Value>,
}

impl VirtualMachine {
    /// The wire form of a record with every reference as a bare id.
    pub fn from_record(r: &VmRecord) -> Self {
        VirtualMachine {
            id: r.id,
            region: r.region.clone(),
            image: r.image.clone(),
            attestation_id: r.attestation_id,
            access: r.access.clone(),
            auth_method: r.auth_method,
            status: r.status,
            status_name: r.status,
            status_reason: r.status_reason.clone(),
            is_blocked: r.is_blocked,
            tags: r.tags.clone(),
            subscription: r.subscription,
            name: r.name.clone(),
            provider: Ref::Id(r.provider),
            size: Ref::Id(r.size),
            price: Ref::Id(r.price),
            owner: r.owner.clone(),
            project: Ref::Id(r.project),
            team: Ref::Id(r.team),
            ip_configurations: r.ip_configurations.clone(),
            expires_at: r.expires_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            attestation: None,
        }
    }
}

/// The answer of start, stop and delete: the VM's status after the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ActionResult {
    /// Human-readable, true to `status` ("Virtual machine is stopping").
    pub message: String,
    /// The VM.
    pub vm_id: VmId,
    /// Status after the request.
    pub status: VmStatus,
    /// `status` again, written by name (the constructor sets both).
    #[serde(with = "status_name")]
    #[cfg_attr(feature = "openapi", schema(schema_with = status_name::schema))]
    pub status_name: VmStatus,
}

impl ActionResult {
    /// The answer to a resize of a VM in `status` (which it keeps).
    pub fn resizing(vm_id: VmId, status: VmStatus) -> Self {
        ActionResult {
            message: "Virtual machine is being resized".into(),
            ..Self::new(vm_id, status)
        }
    }

    /// The answer for a VM now in `status`.
    pub fn new(vm_id: VmId, status: VmStatus) -> Self {
        ActionResult {
            message: format!("Virtual machine is {}", status.name()),
            vm_id,
            status,
            status_name: status,
        }
    }
}

/// `statusName`: a [`VmStatus`] written by its name, beside `status` (its code).
mod status_name {
    use std::borrow::Cow;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::status::VmStatus;

    pub(super) fn serialize<S: Serializer>(status: &VmStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.name())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VmStatus, D::Error> {
        let name = <Cow<'de, str>>::deserialize(d)?;
        VmStatus::from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("'{name}' is not a VmStatus name")))
    }

    /// The schema: a string, one of the status names.
    #[cfg(feature = "openapi")]
    pub(super) fn schema() -> utoipa::openapi::schema::ObjectBuilder {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(VmStatus::ALL.iter().map(|s| s.name())))
            .description(Some("The name of `status`"))
    }
}
