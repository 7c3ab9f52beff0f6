//! The limits of a VM's rule set: how many rules and port ranges, which priorities, how long
//! a description.

/// Most rules one VM may have (AWS allows 60 inbound rules per security group by default).
pub const MAX_RULES_PER_VM: usize = 50;

/// Most port ranges in one rule.
pub const MAX_PORT_RANGES: usize = 16;

/// Lowest priority number (evaluated first), as on Azure.
pub const MIN_PRIORITY: u16 = 100;

/// Highest priority number, as on Azure.
pub const MAX_PRIORITY: u16 = 4096;

/// Priority of the default rule and the first priority handed out when none is given.
pub const DEFAULT_PRIORITY: u16 = 1000;

/// Longest description (Azure's limit).
pub const MAX_DESCRIPTION: usize = 140;
