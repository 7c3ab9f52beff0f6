//! The provisioner: carries out a VM's `pendingOp` in its cloud, one conditional write per step.
//!
//! It always works from the VM as stored now (never from a stream image), so a redelivered or
//! duplicated stream record finds nothing to do or continues where the last run stopped. Every
//! write is conditional on the VM's `version`; losing a race means reading again.

mod base;
mod create;
mod records;
mod resize;
mod run;
mod step;

pub use base::{Drivers, Outcome, Provisioner, ProvisionerOptions, WorkItem};
pub use records::RULES_FAILED;
