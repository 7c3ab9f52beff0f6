//! Events in a VM's history, kept beside the VM record.

use serde::{Deserialize, Serialize};

use crate::ids::VmId;
use crate::timestamp::Timestamp;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
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
}

/// One event of a VM's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VmEvent {
    /// The VM.
    pub vm_id: VmId,
    /// When.
    pub at: Timestamp,
    /// Who: a user id, or `system` for the service itself.
    pub actor: String,
    /// What.
    pub kind: EventKind,
    /// Why, when there is more to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
