//! The fake's tenant, credentials, subscription and resource group, the api-versions it
//! answers, and the ids of its resources.

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "5a1c3f0e-7d2b-4c6a-9e8f-0123456789ab";
pub const CLIENT_SECRET: &str = "Q~client-secret-value-7Zx";
pub const SUBSCRIPTION: &str = "00000000-1111-2222-3333-444444444444";
pub const RESOURCE_GROUP: &str = "vm-api-test";
pub const COMPUTE: &str = "2024-03-01";
pub const NETWORK: &str = "2024-05-01";
pub const RESOURCES: &str = "2021-04-01";
/// The pre-existing network of region `westeurope`.
pub const SHARED_VNET: &str = "shared-westeurope";

pub(super) fn vm_id(name: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/{name}"
    )
}

pub(super) fn network_id(kind: &str, name: &str) -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/{kind}/{name}")
}
