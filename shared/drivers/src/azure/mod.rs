//! Azure Resource Manager driver: VMs through the Compute REST API (`2024-03-01`) with the NIC
//! and public IP declared inline in the VM (`networkInterfaceConfigurations`), addresses read
//! through the Network REST API (`2024-05-01`), and a client-credentials token from Microsoft
//! Entra ID.
//!
//! * Names are deterministic: VM `vm-{vmId}`, NIC `vm-{vmId}-nic`, public IP `vm-{vmId}-pip`,
//!   OS disk `vm-{vmId}-osdisk`, network security group `vm-{vmId}-nsg`. A create is a `PUT` by
//!   name, so retries never make a second VM. OS disk, NIC and public IP carry
//!   `deleteOption: Delete`: deleting the VM removes them; the NSG is deleted after the VM.
//! * The VM's NSG (on its NIC) holds exactly the VM's security rules: it is put before the VM and
//!   put again, whole, by [`CloudDriver::apply_rules`].
//! * Every resource is tagged `managed-by: vm-api`, `vm-id` and `team`. [`CloudDriver::list_managed`]
//!   lists the resource group's VMs (following `nextLink`) and keeps those tagged
//!   `managed-by: vm-api` in the region.
//! * Long-running operations (201/202, or 200 with a non-terminal `provisioningState`) are
//!   followed through `Azure-AsyncOperation` or else `Location`, honouring `Retry-After`, for a
//!   bounded time. Operation URLs are only followed (with the token) on the management origin.
//! * The client secret and the access token are [`Sensitive`]: never logged, redacted in `Debug`.
//!
//! Files by concern: `config` (configuration, API versions), `driver` (the driver, its paths),
//! `auth` (the token), `request` and `lro` (requests, long-running operations), `network` and
//! `nsg` (subnet, addresses, the VM's NSG), `vm` (the VM resource, its state), `resize` (a size
//! change, deallocating only when needed), `list` (listing
//! managed resources), `errors` (error mapping), `util` (small helpers), and `cloud`, the
//! [`CloudDriver`](vmapi_core::cloud::CloudDriver) implementation that joins them.

mod auth;
mod cloud;
mod config;
mod driver;
mod errors;
mod list;
mod lro;
mod network;
mod nsg;
mod request;
mod resize;
mod util;
mod vm;

pub use config::{
    AzureConfig, RegionNetwork, COMPUTE_API_VERSION, DEFAULT_LOGIN_BASE, DEFAULT_MANAGEMENT_BASE,
    MANAGED_BY, MANAGEMENT_SCOPE, NETWORK_API_VERSION, RESOURCES_API_VERSION,
    VM_NETWORK_API_VERSION,
};
pub use driver::AzureDriver;
pub use nsg::nsg_rules;

#[cfg(test)]
mod tests;
