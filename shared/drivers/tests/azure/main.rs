//! Contract tests of the Azure driver against the ARM test server in `azure_arm`, a module per
//! concern.

#[path = "../azure_arm/mod.rs"]
mod azure_arm;
#[path = "../azure_spec/mod.rs"]
mod azure_spec;
#[path = "../spec_check/mod.rs"]
mod spec_check;

mod common;
mod credentials;
mod errors;
mod lifecycle;
mod listing;
mod networks;
mod resize;
mod vm_options;
