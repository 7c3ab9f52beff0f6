//! AWS EC2 driver (`aws-sdk-ec2`). Instances are found by their `vm-id` and deployment tags
//! (`vm-api-deployment`: a driver finds only its own deployment's), created with
//! `ClientToken` = the VM's idempotency key, and get their login through cloud-init user data
//! (public keys and a password hash only).
//!
//! Each VM has its own security group `vm-api-{vmId}` (tagged like the instance, in the default
//! VPC), made before the launch and removed after the instance is gone. Its ingress permissions
//! are kept equal to the VM's security rules; egress keeps the allow-all rule AWS creates.
//!
//! Files by concern: `driver` (the driver, its clients, finding instances, instance actions),
//! `group` (the security group and its permissions), `instance` (cloud-init, tags, the view of
//! an instance), `resize` (stop, change the type, start), `errors` (SDK error mapping), and `cloud`, the
//! [`CloudDriver`](vmapi_core::cloud::CloudDriver) implementation that joins them.

mod cloud;
mod driver;
mod errors;
mod group;
mod instance;
mod resize;

pub use driver::{AwsDriver, MANAGED_BY};
pub use errors::map_err;
pub use group::{group_name, permissions, Permission};
pub use instance::{cloud_init, view};

#[cfg(test)]
mod tests;
