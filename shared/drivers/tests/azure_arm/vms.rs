//! `Microsoft.Compute/virtualMachines`: list, get, create-or-update, power actions, delete.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::ids::{vm_id, COMPUTE};
use super::lifecycle::tick;
use super::operations::{async_url, location_url, new_op};
use super::reply::{arm_error, invalid, json_response, not_found, retry_header};
use super::state::{ActionStyle, Inner, OpKind, Vm};
use super::validate::validate_vm;

fn render_vm(inner: &Inner, vm: &Vm, expand: bool) -> Value {
    let mut model = vm.model.clone();
    model["id"] = json!(vm_id(&vm.name));
    model["name"] = json!(vm.name);
    model["type"] = json!("Microsoft.Compute/virtualMachines");
    let props = &mut model["properties"];
    props["provisioningState"] = json!(vm.provisioning);
    props["vmId"] = json!(format!("0f47b100-583c-48e3-a4c0-{:012x}", vm.number));
    props["timeCreated"] = json!(vm.created);
    if let Some(os) = props.get_mut("osProfile").and_then(Value::as_object_mut) {
        // ARM never returns the password.
        os.remove("adminPassword");
    }
    if let Some(nic) = &vm.nic {
        props["networkProfile"]["networkInterfaces"] =
            json!([{ "id": nic, "properties": { "primary": true, "deleteOption": "Delete" } }]);
    }
    if expand {
        let mut statuses = Vec::new();
        match (vm.provisioning.as_str(), &vm.failure) {
            ("Failed", Some((code, message))) => statuses.push(json!({
                "code": format!("ProvisioningState/failed/{code}"),
                "level": "Error",
                "displayStatus": "Provisioning failed",
                "message": message,
            })),
            (state, _) => statuses.push(json!({
                "code": format!("ProvisioningState/{}", state.to_ascii_lowercase()),
                "level": "Info",
                "displayStatus": format!("Provisioning {}", state.to_ascii_lowercase()),
            })),
        }
        if let Some(power) = &vm.power {
            statuses.push(json!({
                "code": format!("PowerState/{power}"),
                "level": "Info",
                "displayStatus": format!("VM {power}"),
            }));
        }
        let computer_name = props["osProfile"]["computerName"].clone();
        props["instanceView"] = json!({
            "computerName": computer_name,
            "statuses": statuses,
        });
    }
    let _ = inner;
    model
}

/// ARM's `timeCreated` form (seven fractional digits, `+00:00`).
pub(super) fn time_created(number: u32) -> String {
    format!(
        "2025-01-01T{:02}:{:02}:{:02}.1234567+00:00",
        number / 3600 % 24,
        number / 60 % 60,
        number % 60
    )
}

/// `GET .../virtualMachines`: one page of the resource group's VMs (model view), the next
/// page linked by `nextLink`. Listing is time passing too: pending operations advance.
pub(super) fn list_vms(
    inner: &mut Inner,
    path: &str,
    params: &BTreeMap<String, String>,
) -> Response {
    if params.contains_key("$expand") && !params.contains_key("$filter") {
        return invalid(
            "$expand",
            "The $expand=instanceView query option can only be specified when a valid $filter option is specified.",
        );
    }
    if params.contains_key("$filter") {
        return invalid(
            "$filter",
            "This test server does not implement $filter (ARM takes only 'virtualMachineScaleSet/id').",
        );
    }
    let skip = match params.get("$skiptoken") {
        None => 0,
        Some(token) => match token.strip_prefix("vmlist.").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return invalid("$skiptoken", "The skip token is invalid."),
        },
    };
    let pending: Vec<String> = inner
        .vms
        .values()
        .filter_map(|vm| vm.pending.clone())
        .collect();
    for op in pending {
        tick(inner, &op);
    }
    let size = inner.list_page_size;
    let value: Vec<Value> = inner
        .vms
        .values()
        .skip(skip)
        .take(size)
        .map(|vm| render_vm(inner, vm, false))
        .collect();
    let mut body = json!({ "value": value });
    if skip + size < inner.vms.len() {
        body["nextLink"] = json!(format!(
            "{}{path}?api-version={COMPUTE}&$skiptoken=vmlist.{}",
            inner.base,
            skip + size
        ));
    }
    json_response(200, vec![], Some(body))
}

pub(super) fn get_vm(inner: &mut Inner, name: &str, expand: Option<&str>) -> Response {
    let key = name.to_ascii_lowercase();
    let pending = match inner.vms.get(&key) {
        None => return not_found("Microsoft.Compute/virtualMachines", name),
        Some(vm) => vm.pending.clone(),
    };
    // Time passes: the VM's running operation advances.
    if let Some(op) = pending {
        tick(inner, &op);
    }
    match inner.vms.get(&key) {
        None => not_found("Microsoft.Compute/virtualMachines", name),
        Some(vm) => json_response(
            200,
            vec![],
            Some(render_vm(inner, vm, expand == Some("instanceView"))),
        ),
    }
}

pub(super) fn put_vm(inner: &mut Inner, name: &str, headers: &HeaderMap, body: &str) -> Response {
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/json"))
    {
        return arm_error(
            415,
            "UnsupportedMediaType",
            "The content media type is not supported.",
        );
    }
    let Ok(mut model) = serde_json::from_str::<Value>(body) else {
        return arm_error(
            400,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        );
    };
    if let Err(response) = validate_vm(inner, &model) {
        return *response;
    }
    inner.vm_puts += 1;
    let key = name.to_ascii_lowercase();
    if inner.drop_security_profile {
        if let Some(props) = model["properties"].as_object_mut() {
            props.remove("securityProfile");
        }
        if let Some(disk) = model
            .pointer_mut("/properties/storageProfile/osDisk/managedDisk")
            .and_then(Value::as_object_mut)
        {
            disk.remove("securityProfile");
        }
    }
    if inner.vms.contains_key(&key) {
        // Create-or-update: an update of the same VM.
        let vm = inner.vms.get_mut(&key).unwrap();
        vm.model = model;
        let vm = inner.vms.get(&key).unwrap();
        return json_response(200, vec![], Some(render_vm(inner, vm, false)));
    }
    let region = model["location"]
        .as_str()
        .unwrap_or("westeurope")
        .to_string();
    inner.vm_counter += 1;
    let number = inner.vm_counter;
    let failure = inner.fail_next_create.take();
    let op = new_op(inner, OpKind::Create, &key, failure, None);
    inner.vms.insert(
        key.clone(),
        Vm {
            name: name.to_string(),
            model,
            provisioning: "Creating".into(),
            failure: None,
            power: None,
            pending: Some(op.clone()),
            nic: None,
            number,
            created: time_created(number),
        },
    );
    let mut headers = vec![(
        "azure-asyncoperation",
        async_url(inner, "Microsoft.Compute", &region, &op),
    )];
    headers.extend(retry_header(inner));
    let vm = inner.vms.get(&key).unwrap();
    json_response(201, headers, Some(render_vm(inner, vm, false)))
}

pub(super) fn vm_action(inner: &mut Inner, name: &str, action: &str) -> Response {
    let key = name.to_ascii_lowercase();
    let Some(vm) = inner.vms.get(&key) else {
        return not_found("Microsoft.Compute/virtualMachines", name);
    };
    if vm.pending.is_some() {
        return arm_error(
            409,
            "OperationNotAllowed",
            &format!("Operation '{action}' is not allowed since the VM '{name}' has another operation in progress."),
        );
    }
    let (kind, transitional) = match action {
        "start" => (OpKind::Start, "starting"),
        "deallocate" => (OpKind::Deallocate, "deallocating"),
        "poweroff" => (OpKind::PowerOff, "stopping"),
        "restart" => (OpKind::Restart, "starting"),
        _ => {
            return arm_error(
                404,
                "InvalidResourceType",
                &format!("unknown action {action}"),
            )
        }
    };
    if kind == OpKind::Restart && vm.power.as_deref() != Some("running") {
        return arm_error(
            409,
            "OperationNotAllowed",
            &format!(
                "Operation 'restart' is not allowed on VM '{name}' since the VM is not running."
            ),
        );
    }
    let region = vm.model["location"]
        .as_str()
        .unwrap_or("westeurope")
        .to_string();
    let previous = vm.power.clone();
    let failure = inner.fail_next_action.take();
    let op = new_op(inner, kind, &key, failure, previous);
    let vm = inner.vms.get_mut(&key).unwrap();
    vm.power = Some(transitional.into());
    vm.pending = Some(op.clone());
    let mut headers = match inner.action_style {
        ActionStyle::Location => vec![("location", location_url(inner, &region, &op))],
        ActionStyle::AsyncOperation => vec![(
            "azure-asyncoperation",
            async_url(inner, "Microsoft.Compute", &region, &op),
        )],
    };
    headers.extend(retry_header(inner));
    json_response(202, headers, None)
}

pub(super) fn delete_vm(inner: &mut Inner, name: &str) -> Response {
    let key = name.to_ascii_lowercase();
    let Some(vm) = inner.vms.get(&key) else {
        // ARM: deleting an absent resource succeeds with 204.
        return json_response(204, vec![], None);
    };
    let region = vm.model["location"]
        .as_str()
        .unwrap_or("westeurope")
        .to_string();
    let op = new_op(inner, OpKind::Delete, &key, None, None);
    let vm = inner.vms.get_mut(&key).unwrap();
    vm.provisioning = "Deleting".into();
    vm.pending = Some(op.clone());
    let mut headers = vec![("location", location_url(inner, &region, &op))];
    headers.extend(retry_header(inner));
    json_response(202, headers, None)
}
