//! Listing: every page of the resource group's VMs and NSGs, and which of them are this
//! driver's (for `CloudDriver::list_managed`).

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;
use vmapi_core::cloud::{CloudState, CloudTarget, DriverError, ManagedKind, ManagedResource};
use vmapi_models::{DeploymentId, Timestamp, VmId};

use super::config::{COMPUTE_API_VERSION, MANAGED_BY, NETWORK_API_VERSION};
use super::driver::AzureDriver;
use super::util::is_vm_resource_id;
use super::vm::map_state;

/// Most pages of a list followed through `nextLink`.
const MAX_LIST_PAGES: usize = 1000;

impl AzureDriver {
    /// The VMs of the resource group, every page.
    pub(super) async fn list_vms(&self) -> Result<Vec<Value>, DriverError> {
        let path = format!(
            "{}/providers/Microsoft.Compute/virtualMachines",
            self.group_path()
        );
        self.list_all(&path, COMPUTE_API_VERSION, "virtual machine")
            .await
    }

    /// The network security groups of the resource group, every page.
    pub(super) async fn list_nsgs(&self) -> Result<Vec<Value>, DriverError> {
        let path = format!(
            "{}/providers/Microsoft.Network/networkSecurityGroups",
            self.group_path()
        );
        self.list_all(&path, NETWORK_API_VERSION, "network security group")
            .await
    }

    /// Every item of an ARM list, page by page (`nextLink` is followed only on the
    /// management origin, and a list that does not end is an error).
    pub(super) async fn list_all(
        &self,
        path: &str,
        api_version: &str,
        what: &str,
    ) -> Result<Vec<Value>, DriverError> {
        let mut next = Some(self.url(path, api_version));
        let mut seen = HashSet::new();
        let mut items = Vec::new();
        while let Some(url) = next.take() {
            if seen.len() >= MAX_LIST_PAGES || !seen.insert(url.clone()) {
                return Err(DriverError::Provider {
                    code: "InvalidResponse".into(),
                    message: format!("the {what} list does not end"),
                });
            }
            let resp = self.call(Method::GET, &url, None).await?;
            if !resp.status.is_success() {
                return Err(resp.error());
            }
            let mut page = resp.json()?;
            if let Value::Array(page_items) = page["value"].take() {
                items.extend(page_items);
            }
            next = match page["nextLink"].as_str().map(str::trim) {
                None | Some("") => None,
                Some(link) if self.followable(link) => Some(link.to_string()),
                Some(_) => {
                    return Err(DriverError::Provider {
                        code: "InvalidResponse".into(),
                        message: format!(
                            "the {what} list's nextLink leaves the management endpoint"
                        ),
                    })
                }
            };
        }
        Ok(items)
    }
}

/// A listed resource's tag reader and location, when it carries our `managed-by` tag and is in
/// `region` (an empty region: every location of the resource group).
pub(super) fn ours_in<'a>(
    resource: &'a Value,
    region: &str,
) -> Option<(impl Fn(&str) -> Option<&'a str>, &'a str)> {
    let tags = resource["tags"].as_object()?;
    // ARM tag names are case-insensitive; values are not.
    let tag = move |key: &str| {
        tags.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v.as_str())
    };
    if tag("managed-by") != Some(MANAGED_BY) {
        return None;
    }
    let location = resource["location"].as_str().unwrap_or("");
    if !region.is_empty() && !same_region(location, region) {
        return None;
    }
    Some((tag, location))
}

/// A listed VM as a [`ManagedResource`], when it is ours (`managed-by` tag, a VM id from the
/// `vm-id` tag or else the name `vm-{vmId}`, both agreeing when both are there), in `region`,
/// has a usable resource id and is not being deleted.
pub(super) fn managed_resource(vm: &Value, region: &str) -> Option<ManagedResource> {
    let (tag, location) = ours_in(vm, region)?;
    let name = vm["name"].as_str().unwrap_or("");
    let from_name = name.strip_prefix("vm-").and_then(|id| VmId::parse(id).ok());
    let vm_id = match (tag("vm-id").map(|t| VmId::parse(t.trim())), from_name) {
        (Some(Ok(tagged)), Some(named)) if tagged != named => {
            tracing::warn!(
                vm = name,
                "Azure VM's vm-id tag and name disagree; not listed"
            );
            return None;
        }
        (Some(Ok(tagged)), _) => tagged,
        (None, Some(named)) => named,
        _ => {
            tracing::debug!(
                vm = name,
                "Azure VM tagged managed-by without a VM id; not listed"
            );
            return None;
        }
    };
    // Later calls must reach exactly this VM: only a usable resource id will do.
    let id = vm["id"].as_str().filter(|id| is_vm_resource_id(id))?;
    let (state, raw_state) = map_state(vm);
    if state == CloudState::Deleting {
        return None;
    }
    let created_at = vm
        .pointer("/properties/timeCreated")
        .and_then(Value::as_str)
        .and_then(|t| Timestamp::parse(t).ok());
    Some(ManagedResource {
        kind: ManagedKind::Vm,
        target: CloudTarget {
            vm_id,
            region: if region.is_empty() { location } else { region }.to_string(),
            provider_id: Some(id.to_string()),
        },
        created_at,
        raw_state,
        deployment: tag(DeploymentId::TAG).map(str::to_string),
    })
}

/// A listed NSG as a [`ManagedResource`] when it is ours (`managed-by` tag, named
/// `vm-{vmId}-nsg` after the `vm-id` tag), in `region`, and its VM is not among `vm_names`
/// (lower case).
pub(super) fn orphaned_nsg(
    nsg: &Value,
    region: &str,
    vm_names: &HashSet<String>,
) -> Option<ManagedResource> {
    let (tag, location) = ours_in(nsg, region)?;
    let vm_id = VmId::parse(tag("vm-id")?.trim()).ok()?;
    let vm_name = AzureDriver::vm_name(vm_id);
    let name = nsg["name"].as_str()?;
    if !name.eq_ignore_ascii_case(&format!("{vm_name}-nsg"))
        || vm_names.contains(&vm_name.to_ascii_lowercase())
    {
        return None;
    }
    let id = nsg["id"].as_str().unwrap_or(name).to_string();
    Some(ManagedResource {
        kind: ManagedKind::Firewall(id),
        target: CloudTarget {
            vm_id,
            region: if region.is_empty() { location } else { region }.to_string(),
            // No VM: delete finds none and removes the NSG.
            provider_id: None,
        },
        created_at: None,
        raw_state: nsg
            .pointer("/properties/provisioningState")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        deployment: tag(DeploymentId::TAG).map(str::to_string),
    })
}

/// Whether two Azure locations are the same (`westeurope`, `West Europe`).
pub(super) fn same_region(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect()
    };
    !a.trim().is_empty() && norm(a) == norm(b)
}
