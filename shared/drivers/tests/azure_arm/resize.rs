//! Changing a VM's size: `GET .../vmSizes` (VirtualMachines_ListAvailableSizes) and `PATCH` of
//! the VM (VirtualMachines_Update). As on Azure, a running VM can move only to sizes its
//! hardware cluster offers; a deallocated one to any size of the region.

use axum::response::Response;
use serde_json::{json, Value};

use super::ids::vm_id;
use super::lifecycle::tick;
use super::operations::{async_url, new_op};
use super::reply::{arm_error, invalid, json_response, not_found, retry_header};
use super::state::{Inner, OpKind};

/// The region's sizes, by hardware cluster.
pub(super) const CLUSTERS: [&[&str]; 3] = [
    &["Standard_B1s", "Standard_B2s", "Standard_B2ms"],
    &["Standard_D2s_v5", "Standard_D4s_v5", "Standard_D8s_v5"],
    &["Standard_DC2as_v5", "Standard_DC4as_v5"],
];

fn size_entry(name: &str) -> Value {
    let cores: u32 = name
        .trim_start_matches("Standard_")
        .chars()
        .skip_while(|c| c.is_ascii_alphabetic())
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap_or(1);
    json!({
        "name": name,
        "numberOfCores": cores,
        "osDiskSizeInMB": 1_047_552,
        "resourceDiskSizeInMB": 0,
        "memoryInMB": cores * 4096,
        "maxDataDiskCount": cores * 2,
    })
}

/// The sizes the VM may move to without being deallocated first.
fn available(power: Option<&str>, current: &str) -> Vec<&'static str> {
    if power == Some("deallocated") {
        return CLUSTERS.iter().flat_map(|c| c.iter().copied()).collect();
    }
    CLUSTERS
        .iter()
        .find(|c| c.contains(&current))
        .map(|c| c.to_vec())
        .unwrap_or_default()
}

fn current_size(model: &Value) -> String {
    model
        .pointer("/properties/hardwareProfile/vmSize")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(super) fn list_sizes(inner: &mut Inner, name: &str) -> Response {
    let key = name.to_ascii_lowercase();
    if let Some(op) = inner.vms.get(&key).and_then(|vm| vm.pending.clone()) {
        tick(inner, &op);
    }
    let Some(vm) = inner.vms.get(&key) else {
        return not_found("Microsoft.Compute/virtualMachines", name);
    };
    let sizes: Vec<Value> = available(vm.power.as_deref(), &current_size(&vm.model))
        .into_iter()
        .map(size_entry)
        .collect();
    json_response(200, vec![], Some(json!({ "value": sizes })))
}

pub(super) fn patch_vm(inner: &mut Inner, name: &str, body: &str) -> Response {
    let key = name.to_ascii_lowercase();
    let Ok(patch) = serde_json::from_str::<Value>(body) else {
        return arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        );
    };
    let Some(size) = patch
        .pointer("/properties/hardwareProfile/vmSize")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return invalid(
            "properties.hardwareProfile.vmSize",
            "This test server takes only a size change.",
        );
    };
    let Some(vm) = inner.vms.get(&key) else {
        return not_found("Microsoft.Compute/virtualMachines", name);
    };
    if vm.pending.is_some() {
        return arm_error(
            409,
            "OperationNotAllowed",
            &format!("Operation 'Update' is not allowed since the VM '{name}' has another operation in progress."),
        );
    }
    if !CLUSTERS.iter().any(|c| c.contains(&size.as_str())) {
        return arm_error(
            409,
            "SkuNotAvailable",
            &format!("The requested VM size {size} is not available in the current region."),
        );
    }
    if !available(vm.power.as_deref(), &current_size(&vm.model)).contains(&size.as_str()) {
        return arm_error(
            409,
            "OperationNotAllowed",
            &format!("Unable to resize the VM '{name}' to {size}: the size is not available on the current hardware cluster. Deallocate the VM first."),
        );
    }
    let region = vm.model["location"]
        .as_str()
        .unwrap_or("westeurope")
        .to_string();
    let previous = vm.power.clone();
    let op = new_op(inner, OpKind::Update, &key, None, previous);
    let vm = inner.vms.get_mut(&key).unwrap();
    vm.model["properties"]["hardwareProfile"]["vmSize"] = json!(size);
    vm.provisioning = "Updating".into();
    vm.pending = Some(op.clone());
    let mut headers = vec![(
        "azure-asyncoperation",
        async_url(inner, "Microsoft.Compute", &region, &op),
    )];
    headers.extend(retry_header(inner));
    let vm = inner.vms.get(&key).unwrap();
    let mut model = vm.model.clone();
    model["id"] = json!(vm_id(&vm.name));
    model["name"] = json!(vm.name);
    model["type"] = json!("Microsoft.Compute/virtualMachines");
    model["properties"]["provisioningState"] = json!("Updating");
    if let Some(os) = model
        .pointer_mut("/properties/osProfile")
        .and_then(Value::as_object_mut)
    {
        os.remove("adminPassword");
    }
    json_response(200, headers, Some(model))
}
