//! Virtual machines: the stored record, the wire form and action results.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::catalog::{Image, Price, Provider, Region, Size};
use crate::credentials::{Login, SshPublicKey};
use crate::ids::{
    CloudProviderId, IpConfigId, PriceId, ProjectId, ProviderId, SizeId, SubscriptionId, TeamId,
    UserId, VmId,
};
use crate::names::{HostName, Tags};
use crate::status::{AuthMethod, VmStatus};
use crate::team::{Project, Team};
use crate::timestamp::Timestamp;

/// A reference: a bare id, or the object it names ("populated").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Ref<I, T> {
    /// Only the id.
    Id(I),
    /// The whole object.
    Populated(T),
}

/// The user's own login material (`access`); `null` means the service generates it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Access {
    /// An OpenSSH public key: Ed25519, or RSA of at least 3072 bits.
    pub ssh_public_key: SshPublicKey,
}

/// An IP address of a VM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Optimistic-locking version, incremented by every write.
    pub version: u64,
}

/// A VM on the wire. References are ids or populated objects, as each endpoint documents.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachine {
    /// Id.
    #[serde(rename = "_id")]
    pub id: VmId,
    /// Region.
    pub region: Region,
    /// Image.
    pub image: Image,
    /// Attestation id.
    pub attestation_id: Uuid,
    /// The user's own public key, or `null`.
    pub access: Option<Access>,
    /// Login method.
    pub auth_method: AuthMethod,
    /// Lifecycle status; `statusName` is written beside it.
    pub status: VmStatus,
    /// Why the VM failed or its last operation did not complete; absent otherwise.
    #[serde(default)]
    pub status_reason: Option<String>,
    /// Blocked by an administrator.
    pub is_blocked: bool,
    /// Tags.
    pub tags: Tags,
    /// Subscription, or `null`.
    pub subscription: Option<SubscriptionId>,
    /// Host name.
    pub name: HostName,
    /// Provider offering.
    pub provider: Ref<ProviderId, Provider>,
    /// Size.
    pub size: Ref<SizeId, Size>,
    /// Price.
    pub price: Ref<PriceId, Price>,
    /// Creator.
    pub owner: UserId,
    /// Project.
    pub project: Ref<ProjectId, Project>,
    /// Team.
    pub team: Ref<TeamId, Team>,
    /// Addresses.
    pub ip_configurations: Vec<IpConfiguration>,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
    /// Attestation report; `null` until attestation exists.
    #[serde(default)]
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
            created_at: r.created_at,
            updated_at: r.updated_at,
            attestation: None,
        }
    }
}

impl Serialize for VirtualMachine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("VirtualMachine", 24)?;
        s.serialize_field("_id", &self.id)?;
        s.serialize_field("region", &self.region)?;
        s.serialize_field("image", &self.image)?;
        s.serialize_field("attestationId", &self.attestation_id)?;
        s.serialize_field("access", &self.access)?;
        s.serialize_field("authMethod", &self.auth_method)?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("statusName", self.status.name())?;
        if let Some(reason) = &self.status_reason {
            s.serialize_field("statusReason", reason)?;
        }
        s.serialize_field("isBlocked", &self.is_blocked)?;
        s.serialize_field("tags", &self.tags)?;
        s.serialize_field("subscription", &self.subscription)?;
        s.serialize_field("name", &self.name)?;
        s.serialize_field("provider", &self.provider)?;
        s.serialize_field("size", &self.size)?;
        s.serialize_field("price", &self.price)?;
        s.serialize_field("owner", &self.owner)?;
        s.serialize_field("project", &self.project)?;
        s.serialize_field("team", &self.team)?;
        s.serialize_field("ipConfigurations", &self.ip_configurations)?;
        s.serialize_field("createdAt", &self.created_at)?;
        s.serialize_field("updatedAt", &self.updated_at)?;
        s.serialize_field("attestation", &self.attestation)?;
        s.end()
    }
}

/// The body of a start, stop or delete answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionResult {
    /// Human-readable, true to `status` ("Virtual machine is stopping").
    pub message: String,
    /// The VM.
    pub vm_id: VmId,
    /// Status after the request.
    pub status: VmStatus,
}

impl ActionResult {
    /// The answer for a VM now in `status`.
    pub fn new(vm_id: VmId, status: VmStatus) -> Self {
        ActionResult {
            message: format!("Virtual machine is {}", status.name()),
            vm_id,
            status,
        }
    }
}

impl Serialize for ActionResult {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ActionResult", 4)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("vmId", &self.vm_id)?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("statusName", self.status.name())?;
        s.end()
    }
}
