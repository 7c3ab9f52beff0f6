//! Security (firewall) rules of a VM: one cloud-neutral model, the request body in its three
//! accepted shapes (neutral, Azure NSG style, AWS security-group style), validation, and what
//! each cloud can express.
//!
//! A rule set lives in its VM's record (`VmRecord::rules`); the provisioner makes the cloud's
//! firewall equal to it (`pendingOp` `apply-rules`).

mod cidr;
mod fields;
mod limits;
mod ports;
mod request;
mod rule;
#[cfg(test)]
mod tests;

pub use cidr::Cidr;
pub use fields::{parse_description, Direction, Protocol, RuleAccess, RuleName};
pub use limits::{
    DEFAULT_PRIORITY, MAX_DESCRIPTION, MAX_PORT_RANGES, MAX_PRIORITY, MAX_RULES_PER_VM,
    MIN_PRIORITY,
};
pub use ports::{PortRange, Ports};
pub use request::{next_priority, CreateRuleRequest, NewRule, PortRangeInput};
pub use rule::{RuleDeleted, SecurityRule, SecurityRuleView};
