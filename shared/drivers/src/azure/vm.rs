//! The VM resource: the body of its create, its actions (start, deallocate, restart), the spec
//! checks, and the driver's view of a VM and its state.

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};
use vmapi_core::cloud::{CloudState, CloudTarget, CloudVm, DriverError, VmSpec};
use vmapi_models::{ConfidentialTech, DeploymentId};

use super::config::{RegionNetwork, COMPUTE_API_VERSION, MANAGED_BY, VM_NETWORK_API_VERSION};
use super::driver::AzureDriver;
use super::lro::Outcome;
use super::util::{last_segment, parse_urn, safe_arm_id, truncate};

impl AzureDriver {
    pub(super) fn vm_body(
        &self,
        spec: &VmSpec,
        network: &RegionNetwork,
    ) -> Result<Value, DriverError> {
        let nsg = self.nsg_path(spec.vm_id);
        let image = check_spec(spec)?;
        let login = &spec.login;
        let password = login.password.as_ref().filter(|p| !p.expose().is_empty());
        let confidential = spec.confidential == Some(ConfidentialTech::SevSnp);
        let name = Self::vm_name(spec.vm_id);

        let mut linux = Map::new();
        linux.insert(
            "disablePasswordAuthentication".into(),
            json!(password.is_none()),
        );
        if !login.public_keys.is_empty() {
            let path = format!("/home/{}/.ssh/authorized_keys", login.username);
            let keys: Vec<Value> = login
                .public_keys
                .iter()
                .map(|k| json!({ "path": path, "keyData": k.trim() }))
                .collect();
            linux.insert("ssh".into(), json!({ "publicKeys": keys }));
        }
        let mut os_profile = json!({
            "computerName": spec.name,
            "adminUsername": login.username,
            "linuxConfiguration": linux,
        });
        if let Some(password) = password {
            os_profile["adminPassword"] = json!(password.expose());
        }

        let mut managed_disk = json!({ "storageAccountType": self.config.os_disk_type });
        if confidential {
            managed_disk["securityProfile"] =
                json!({ "securityEncryptionType": "VMGuestStateOnly" });
        }
        let mut os_disk = json!({
            "name": format!("{name}-osdisk"),
            "createOption": "FromImage",
            "caching": "ReadWrite",
            "deleteOption": "Delete",
            "managedDisk": managed_disk,
        });
        if spec.disk_gb > 0 {
            os_disk["diskSizeGB"] = json!(spec.disk_gb);
        }

        let mut nic = json!({
            "primary": true,
            "deleteOption": "Delete",
            "ipConfigurations": [{
                "name": "ipconfig1",
                "properties": {
                    "primary": true,
                    "subnet": { "id": network.subnet_id },
                    "publicIPAddressConfiguration": {
                        "name": format!("{name}-pip"),
                        "sku": { "name": "Standard" },
                        "properties": { "publicIPAllocationMethod": "Static", "deleteOption": "Delete" }
                    }
                }
            }]
        });
        nic["networkSecurityGroup"] = json!({ "id": nsg });

        let mut properties = json!({
            "hardwareProfile": { "vmSize": spec.size },
            "storageProfile": {
                "imageReference": {
                    "publisher": image[0], "offer": image[1], "sku": image[2], "version": image[3]
                },
                "osDisk": os_disk,
            },
            "osProfile": os_profile,
            "networkProfile": {
                "networkApiVersion": VM_NETWORK_API_VERSION,
                "networkInterfaceConfigurations": [{ "name": format!("{name}-nic"), "properties": nic }]
            },
        });
        if confidential {
            properties["securityProfile"] = json!({
                "securityType": "ConfidentialVM",
                "uefiSettings": { "secureBootEnabled": true, "vTpmEnabled": true }
            });
        }
        Ok(json!({
            "location": spec.region,
            "tags": resource_tags(spec, &self.config.deployment),
            "properties": properties,
        }))
    }

    /// Runs a VM action (`start`, `deallocate`, `restart`) and follows it briefly.
    pub(super) async fn action(
        &self,
        target: &CloudTarget,
        action: &str,
    ) -> Result<(), DriverError> {
        let path = format!("{}/{action}", self.vm_path(target));
        let resp = self
            .call(Method::POST, &self.url(&path, COMPUTE_API_VERSION), None)
            .await?;
        if resp.status == StatusCode::NOT_FOUND {
            return Err(DriverError::NotFound(format!(
                "virtual machine {}",
                last_segment(&self.vm_path(target))
            )));
        }
        if !resp.status.is_success() {
            return Err(resp.error());
        }
        if self.wait_for(&resp, self.config.operation_timeout).await? == Outcome::StillRunning {
            tracing::info!(vm = %target.vm_id, action, "Azure operation still running; state follows through get");
        }
        Ok(())
    }
}

/// Tags of every resource made for a VM.
pub(super) fn resource_tags(spec: &VmSpec, deployment: &DeploymentId) -> Value {
    json!({
        "managed-by": MANAGED_BY,
        DeploymentId::TAG: deployment.as_str(),
        "vm-id": spec.vm_id.to_string(),
        "team": spec.team.to_string(),
    })
}

/// Refuses specs Azure cannot take, before any request; returns the image URN's parts.
pub(super) fn check_spec(spec: &VmSpec) -> Result<[String; 4], DriverError> {
    if spec.region.is_empty() || !spec.region.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(DriverError::InvalidSpec(format!(
            "'{}' is not an Azure region name",
            truncate(&spec.region)
        )));
    }
    let image = parse_urn(&spec.image)?;
    if spec.size.trim().is_empty() {
        return Err(DriverError::InvalidSpec("the VM size is empty".into()));
    }
    let login = &spec.login;
    if login.username.is_empty() {
        return Err(DriverError::InvalidSpec(
            "the login has no user name".into(),
        ));
    }
    let has_password = login
        .password
        .as_ref()
        .is_some_and(|p| !p.expose().is_empty());
    if !has_password && login.public_keys.is_empty() {
        return Err(DriverError::InvalidSpec(
            "an Azure Linux VM needs an SSH public key or a password".into(),
        ));
    }
    match spec.confidential {
        None | Some(ConfidentialTech::SevSnp) => Ok(image),
        Some(other) => Err(DriverError::InvalidSpec(format!(
            "the Azure driver does not request {} VMs",
            other.name()
        ))),
    }
}

/// The driver's view of a VM resource (without addresses).
pub(super) fn map_vm(vm: &Value, fallback_id: &str) -> CloudVm {
    let (state, raw_state) = map_state(vm);
    let confidential = vm
        .pointer("/properties/securityProfile/securityType")
        .and_then(Value::as_str)
        .filter(|t| t.eq_ignore_ascii_case("ConfidentialVM"))
        .map(|_| ConfidentialTech::SevSnp);
    CloudVm {
        provider_id: vm["id"]
            .as_str()
            .filter(|id| safe_arm_id(id))
            .unwrap_or(fallback_id)
            .to_string(),
        state,
        raw_state,
        public_ipv4: None,
        public_ipv6: None,
        private_ipv4: None,
        confidential,
    }
}

/// Normalized state and raw status code from the instance view (or, without one, from
/// `properties.provisioningState`).
pub(super) fn map_state(vm: &Value) -> (CloudState, String) {
    let mut provisioning: Option<(String, String)> = None;
    let mut power: Option<String> = None;
    if let Some(statuses) = vm
        .pointer("/properties/instanceView/statuses")
        .and_then(Value::as_array)
    {
        for status in statuses {
            let code = status["code"].as_str().unwrap_or("");
            if code.len() > "ProvisioningState/".len()
                && code[.."ProvisioningState/".len()].eq_ignore_ascii_case("ProvisioningState/")
            {
                let message = status["message"]
                    .as_str()
                    .or_else(|| status["displayStatus"].as_str())
                    .unwrap_or("")
                    .to_string();
                provisioning = Some((code.to_string(), message));
            } else if code.len() > "PowerState/".len()
                && code[.."PowerState/".len()].eq_ignore_ascii_case("PowerState/")
            {
                power = Some(code.to_string());
            }
        }
    }
    if provisioning.is_none() {
        if let Some(state) = vm
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
        {
            provisioning = Some((
                format!("ProvisioningState/{}", state.to_ascii_lowercase()),
                String::new(),
            ));
        }
    }
    if let Some((code, message)) = &provisioning {
        let detail = code["ProvisioningState/".len()..].to_ascii_lowercase();
        if detail == "failed" || detail.starts_with("failed/") {
            let reason = code["ProvisioningState/".len()..]
                .split_once('/')
                .map(|(_, reason)| reason)
                .unwrap_or("ProvisioningFailed");
            let text = if message.is_empty() {
                reason.to_string()
            } else {
                format!("{reason}: {message}")
            };
            return (CloudState::Failed(truncate(&text)), code.clone());
        }
        if detail == "deleting" {
            return (CloudState::Deleting, code.clone());
        }
        if detail == "creating" {
            return (CloudState::Provisioning, code.clone());
        }
    }
    match power {
        Some(code) => {
            let state = match code["PowerState/".len()..].to_ascii_lowercase().as_str() {
                "starting" => CloudState::Starting,
                "running" => CloudState::Running,
                "stopping" | "deallocating" => CloudState::Stopping,
                "stopped" | "deallocated" => CloudState::Stopped,
                _ => CloudState::Unknown,
            };
            (state, code)
        }
        None => (
            CloudState::Provisioning,
            provisioning.map(|(code, _)| code).unwrap_or_default(),
        ),
    }
}
