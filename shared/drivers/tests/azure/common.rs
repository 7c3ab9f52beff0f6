//! What the Azure contract tests share: a VM spec, a driver against the test server, the
//! ARM path of a VM.

use vmapi_core::cloud::{LoginSpec, VmSpec};
use vmapi_drivers::azure::{AzureConfig, AzureDriver};
use vmapi_models::{CloudKind, SecurityRule, TeamId, Timestamp, VmId};

use crate::azure_arm::{RESOURCE_GROUP, SUBSCRIPTION};

pub const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0Fz4vS2Yq1l0h7u0m0Zq3pV1m9cJtY2r3WkZ7xQmF alice@laptop";

pub fn spec(region: &str) -> VmSpec {
    VmSpec {
        vm_id: VmId::new(),
        team: TeamId::new(),
        name: "web-1".into(),
        region: region.into(),
        size: "Standard_D2s_v5".into(),
        memory_gb: 8,
        vcpus: 2,
        disk_gb: 64,
        image: "Canonical:ubuntu-24_04-lts:server:latest".into(),
        login: LoginSpec {
            username: "azureuser".into(),
            public_keys: vec![KEY.into()],
            password_hash: None,
            password: None,
        },
        confidential: None,
        rules: vec![SecurityRule::default_for(
            Some(CloudKind::Azure),
            1,
            Timestamp::now(),
        )],
    }
}

pub fn driver(config: AzureConfig) -> AzureDriver {
    AzureDriver::new(config).expect("driver")
}

pub fn vm_path(spec: &VmSpec) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/vm-{}",
        spec.vm_id
    )
}

pub fn spec_with_id(id: VmId) -> VmSpec {
    let mut s = spec("westeurope");
    s.vm_id = id;
    s
}
