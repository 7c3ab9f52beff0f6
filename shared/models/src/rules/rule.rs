//! A stored rule, its wire form, and the answer to a delete.

use serde::{Deserialize, Serialize};

use super::cidr::Cidr;
use super::fields::{Direction, Protocol, RuleAccess, RuleName};
use super::limits::DEFAULT_PRIORITY;
use super::ports::{PortRange, Ports};
use crate::cloud::CloudKind;
use crate::ids::{SecurityRuleId, VmId};
use crate::timestamp::Timestamp;

/// One security rule of a VM, as stored in the VM's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityRule {
    /// Id.
    #[serde(rename = "_id")]
    pub id: SecurityRuleId,
    /// Name, unique in the VM (ignoring case).
    pub name: RuleName,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Protocol.
    pub protocol: Protocol,
    /// Destination ports.
    pub port_range: Ports,
    /// Remote addresses.
    pub cidr_block: Cidr,
    /// Evaluation order (lower first), unique per direction in the VM.
    pub priority: u16,
    /// Allow or deny.
    pub access: RuleAccess,
    /// Who made it (`system` for the default rule).
    pub created_by: String,
    /// The VM's `rulesRevision` that added it: the rule is in the cloud once the VM's
    /// `rulesApplied` reaches it.
    pub revision: u32,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

impl SecurityRule {
    /// Name of the default inbound SSH rule made with each VM.
    pub const DEFAULT_SSH: &'static str = "AllowAnySSHInbound";
    /// Name of the default rule of Kraud.Cloud VMs (whose firewall can only open or close the
    /// VM's address, which covers SSH).
    pub const DEFAULT_OPEN: &'static str = "AllowAnyInbound";

    /// The default rule a new VM on `cloud` gets: inbound TCP 22 from anywhere, or on
    /// Kraud.Cloud the open address.
    pub fn default_for(cloud: Option<CloudKind>, revision: u32, now: Timestamp) -> Self {
        let address_only = cloud == Some(CloudKind::Kraud);
        SecurityRule {
            id: SecurityRuleId::new(),
            name: RuleName(
                if address_only {
                    Self::DEFAULT_OPEN
                } else {
                    Self::DEFAULT_SSH
                }
                .into(),
            ),
            description: "Created with the VM".into(),
            direction: Direction::Inbound,
            protocol: if address_only {
                Protocol::Any
            } else {
                Protocol::Tcp
            },
            port_range: if address_only {
                Ports::Any
            } else {
                Ports::Ranges(vec![PortRange { from: 22, to: 22 }])
            },
            cidr_block: Cidr::any_v4(),
            priority: DEFAULT_PRIORITY,
            access: RuleAccess::Allow,
            created_by: "system".into(),
            revision,
            created_at: now,
            updated_at: now,
        }
    }

    /// The wire form; `applied` says whether the cloud has it (`rules_applied >= revision`).
    pub fn to_wire(&self, vm: VmId, rules_applied: u32) -> SecurityRuleView {
        SecurityRuleView {
            id: self.id,
            rule: self.id,
            virtual_machine: vm,
            name: self.name.clone(),
            description: self.description.clone(),
            direction: self.direction,
            protocol: self.protocol,
            port_range: self.port_range.to_strings(),
            source: if self.cidr_block.is_any() {
                "*".into()
            } else {
                self.cidr_block.to_string()
            },
            cidr_block: self.cidr_block.to_string(),
            priority: self.priority,
            access: self.access,
            applied: rules_applied >= self.revision,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A security rule on the wire (201 of create, items of the list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SecurityRuleView {
    /// Id.
    #[serde(rename = "_id")]
    pub id: SecurityRuleId,
    /// The same id (the platform's `rule` field).
    pub rule: SecurityRuleId,
    /// The VM.
    pub virtual_machine: VmId,
    /// Name.
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 80))]
    pub name: RuleName,
    /// Free text.
    pub description: String,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Protocol.
    pub protocol: Protocol,
    /// Destination ports: `["*"]` or ranges such as `["22"]`, `["8000-8090"]`.
    pub port_range: Vec<String>,
    /// `*` for any address, else the CIDR.
    pub source: String,
    /// Remote addresses in CIDR notation.
    pub cidr_block: String,
    /// Evaluation order, lower first (100-4096).
    pub priority: u16,
    /// Allow or deny.
    pub access: RuleAccess,
    /// Whether the VM's cloud firewall has this rule yet.
    pub applied: bool,
    /// Created.
    pub created_at: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// Body of `DELETE /api/security-rules/{id}`'s 200.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RuleDeleted {
    /// `Security rule deleted`.
    pub message: String,
    /// The rule.
    pub rule_id: SecurityRuleId,
    /// Its VM.
    pub vm_id: VmId,
}
