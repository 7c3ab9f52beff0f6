//! Events in a VM's history, kept beside the VM record (`GET /api/virtual-machines/{id}/activity`).

use serde::{Deserialize, Serialize};

use crate::ids::VmId;
use crate::status::VmStatus;
use crate::timestamp::Timestamp;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventKind {
    /// A user created the VM.
    #[serde(rename = "vm.create")]
    Create,
    /// A user renamed or retagged the VM, or changed its expiry.
    #[serde(rename = "vm.update")]
    Update,
    /// A user asked to start the VM.
    #[serde(rename = "vm.start")]
    Start,
    /// A user asked to stop the VM.
    #[serde(rename = "vm.stop")]
    Stop,
    /// A user asked to reboot the VM.
    #[serde(rename = "vm.reboot")]
    Reboot,
    /// A user asked to delete the VM.
    #[serde(rename = "vm.delete")]
    Delete,
    /// The provisioner finished a cloud operation (the VM's status after it, and why if failed).
    #[serde(rename = "provisioning.done")]
    ProvisioningDone,
    /// Someone read the VM's login credentials.
    #[serde(rename = "credentials.read")]
    CredentialsRead,
    /// The cleanup job moved a stuck operation on (or re-armed it).
    #[serde(rename = "cleanup.repaired")]
    CleanupRepaired,
    /// The cleanup job deleted the VM: failed too long, past its expiry, or its team or
    /// project is gone.
    #[serde(rename = "cleanup.deleted")]
    CleanupDeleted,
    /// A user added a security rule to the VM (detail: the rule's name).
    #[serde(rename = "rule.create")]
    RuleCreate,
    /// A user removed a security rule from the VM (detail: the rule's name).
    #[serde(rename = "rule.delete")]
    RuleDelete,
    /// An administrator blocked the VM: only reading, stopping and deleting it remain.
    #[serde(rename = "vm.block")]
    Block,
    /// An administrator lifted the VM's block.
    #[serde(rename = "vm.unblock")]
    Unblock,
    /// An operator re-armed the VM's stuck operation (`vmctl vms retry`), so the provisioner
    /// takes it up again.
    #[serde(rename = "vm.retry")]
    Retry,
    /// A user asked for another size (and price); `detail` says from which to which.
    #[serde(rename = "vm.resize")]
    Resize,
}

/// One event of a VM's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VmEvent {
    /// The VM.
    pub vm_id: VmId,
    /// When.
    pub at: Timestamp,
    /// Who: a user id, or `system:provisioner` / `system:cleanup` for the service itself.
    pub actor: String,
    /// What.
    pub kind: EventKind,
    /// The VM's status right after (the result), when the event changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub status: Option<VmStatus>,
    /// Why, or what exactly, when there is more to say (e.g. the reason of a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub detail: Option<String>,
}

impl VmEvent {
    /// An event of `vm` now, by `actor`, with the VM's status after it.
    pub fn new(vm_id: VmId, at: Timestamp, actor: impl Into<String>, kind: EventKind) -> Self {
        VmEvent {
            vm_id,
            at,
            actor: actor.into(),
            kind,
            status: None,
            detail: None,
        }
    }

    /// With the status after the event.
    pub fn with_status(mut self, status: VmStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// With a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}
