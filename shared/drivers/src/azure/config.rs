//! The Azure driver's configuration ([`AzureConfig`], [`RegionNetwork`]) and the API versions,
//! endpoints and tag value it uses.

use std::collections::BTreeMap;
use std::time::Duration;

use vmapi_models::{DeploymentId, Sensitive};

pub const COMPUTE_API_VERSION: &str = "2024-03-01";
/// Network API version of every `Microsoft.Network` call.
pub const NETWORK_API_VERSION: &str = "2024-05-01";
/// API version of the Tags API (`Microsoft.Resources/tags`), which `vmctl adopt` uses.
pub const RESOURCES_API_VERSION: &str = "2021-04-01";
/// `networkProfile.networkApiVersion` of VMs whose NIC and public IP are declared inline.
pub const VM_NETWORK_API_VERSION: &str = "2020-11-01";
/// Default Entra ID (login) base URL.
pub const DEFAULT_LOGIN_BASE: &str = "https://login.microsoftonline.com";
/// Default Resource Manager base URL.
pub const DEFAULT_MANAGEMENT_BASE: &str = "https://management.azure.com";
/// Token scope of Resource Manager.
pub const MANAGEMENT_SCOPE: &str = "https://management.azure.com/.default";
/// Tag value of `managed-by` on every resource the driver creates.
pub const MANAGED_BY: &str = "vm-api";

/// An existing subnet (and optionally a network security group) for the VMs of one region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionNetwork {
    /// ARM id of the subnet, `/subscriptions/…/virtualNetworks/{vnet}/subnets/{subnet}`.
    pub subnet_id: String,
    /// ARM id of a network security group meant for the region's NICs. No longer put on NICs:
    /// each VM's NIC carries the VM's own NSG (`vm-{vmId}-nsg`, its security rules), and a NIC
    /// takes one NSG; put an operator-wide NSG on the subnet instead.
    pub network_security_group_id: Option<String>,
}

/// Configuration of the Azure driver. `Debug` redacts the client secret.
#[derive(Clone, Debug)]
pub struct AzureConfig {
    /// Entra ID tenant (directory) id.
    pub tenant_id: String,
    /// Application (client) id of the service principal.
    pub client_id: String,
    /// Client secret of the service principal.
    pub client_secret: Sensitive,
    /// Subscription the VMs live in.
    pub subscription_id: String,
    /// Existing resource group of the VMs (and of the networks the driver creates).
    pub resource_group: String,
    /// Entra ID base URL (default [`DEFAULT_LOGIN_BASE`]).
    pub login_base: String,
    /// Resource Manager base URL (default [`DEFAULT_MANAGEMENT_BASE`]).
    pub management_base: String,
    /// Existing networks per region (`westeurope` → subnet). Regions not listed get a network
    /// the driver creates once when `managed_networks` is set.
    pub networks: BTreeMap<String, RegionNetwork>,
    /// For regions without an entry in `networks`, create (once, if absent) the virtual network
    /// `vm-api-{region}` (10.0.0.0/16, subnet `default` 10.0.0.0/24) in the resource group.
    /// Default `true`.
    pub managed_networks: bool,
    /// Storage type of OS disks (default `Premium_LRS`).
    pub os_disk_type: String,
    /// Timeout of each HTTP request (default 10 s).
    pub request_timeout: Duration,
    /// How long a create follows its operation before returning the VM as provisioning
    /// (default 5 s; zero returns as soon as the `PUT` is accepted).
    pub create_wait: Duration,
    /// How long start, stop, reboot, delete and network creation follow their operation before
    /// returning (default 30 s); the VM's state then shows the rest through `get`.
    pub operation_timeout: Duration,
    /// This deployment: every resource is tagged with it, and only VMs and NSGs that carry it
    /// are this deployment's (default `local`).
    pub deployment: DeploymentId,
}

impl AzureConfig {
    /// A configuration with the public Azure endpoints, managed networks and default timeouts.
    pub fn new(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: Sensitive,
        subscription_id: impl Into<String>,
        resource_group: impl Into<String>,
    ) -> Self {
        AzureConfig {
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            client_secret,
            subscription_id: subscription_id.into(),
            resource_group: resource_group.into(),
            login_base: DEFAULT_LOGIN_BASE.into(),
            management_base: DEFAULT_MANAGEMENT_BASE.into(),
            networks: BTreeMap::new(),
            managed_networks: true,
            os_disk_type: "Premium_LRS".into(),
            request_timeout: Duration::from_secs(10),
            deployment: DeploymentId::local(),
            create_wait: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30),
        }
    }
}
