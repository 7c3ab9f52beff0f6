//! Time passing: an operation advances a step at a time and, when it ends, does what it
//! stands for (the VM made with its NIC, public IP and disk; removed with those that go with
//! it; powered on or off).

use serde_json::{json, Value};

use super::examples;
use super::ids::{network_id, vm_id};
use super::state::{Inner, OpKind, Resource};

/// Advances an operation by one step; applies its effects when it ends.
pub(super) fn tick(inner: &mut Inner, id: &str) {
    let Some(op) = inner.ops.get_mut(id) else {
        return;
    };
    if op.result.is_some() {
        return;
    }
    if op.remaining > 0 {
        op.remaining -= 1;
        return;
    }
    let result = match op.failure.take() {
        Some(failure) => Err(failure),
        None => Ok(()),
    };
    op.result = Some(result.clone());
    let (kind, vm_name, previous) = (op.kind, op.vm.clone(), op.previous_power.clone());
    if kind == OpKind::Network {
        return;
    }
    if let Some(vm) = inner.vms.get_mut(&vm_name) {
        vm.pending = None;
    }
    match (kind, result) {
        (OpKind::Create, Ok(())) => complete_create(inner, &vm_name),
        (OpKind::Create, Err(failure)) => {
            if let Some(vm) = inner.vms.get_mut(&vm_name) {
                vm.provisioning = "Failed".into();
                vm.failure = Some(failure);
            }
        }
        (OpKind::Delete, Ok(())) => remove_vm(inner, &vm_name),
        (OpKind::Update, _) => {
            if let Some(vm) = inner.vms.get_mut(&vm_name) {
                vm.provisioning = "Succeeded".into();
                vm.power = previous;
            }
        }
        (OpKind::Delete, Err(_)) => {
            if let Some(vm) = inner.vms.get_mut(&vm_name) {
                vm.provisioning = "Succeeded".into();
            }
        }
        (kind, outcome) => {
            if let Some(vm) = inner.vms.get_mut(&vm_name) {
                vm.power = Some(match outcome {
                    Err(_) => previous.unwrap_or_else(|| "running".into()),
                    Ok(()) => match kind {
                        OpKind::Deallocate => "deallocated".into(),
                        OpKind::PowerOff => "stopped".into(),
                        _ => "running".into(),
                    },
                });
            }
        }
    }
}

fn complete_create(inner: &mut Inner, vm_name: &str) {
    let Some(vm) = inner.vms.get_mut(vm_name) else {
        return;
    };
    vm.provisioning = "Succeeded".into();
    vm.power = Some("running".into());
    let number = vm.number;
    let model = vm.model.clone();
    let disk = &model["properties"]["storageProfile"]["osDisk"];
    let disk_name = disk["name"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{}_OsDisk_1", vm.name));
    let disk_delete = disk["deleteOption"].as_str() == Some("Delete");
    let mut nic_id = None;
    if let Some(config) = model
        .pointer("/properties/networkProfile/networkInterfaceConfigurations/0")
        .cloned()
    {
        let nic_name = config["name"].as_str().unwrap().to_string();
        let nic_delete = config
            .pointer("/properties/deleteOption")
            .and_then(Value::as_str)
            == Some("Delete");
        let ip = config
            .pointer("/properties/ipConfigurations/0")
            .cloned()
            .unwrap();
        let location = model["location"]
            .as_str()
            .unwrap_or("westeurope")
            .to_string();
        let id = network_id("networkInterfaces", &nic_name);
        let ip_name = ip["name"].as_str().unwrap_or("ipconfig1").to_string();
        let mut pip_id = None;
        if let Some(pip) = ip.pointer("/properties/publicIPAddressConfiguration") {
            let pip_name = pip["name"].as_str().unwrap().to_string();
            let pip_delete = pip
                .pointer("/properties/deleteOption")
                .and_then(Value::as_str)
                == Some("Delete");
            let this_pip = network_id("publicIPAddresses", &pip_name);
            let body = examples::public_ip(&examples::PublicIp {
                id: &this_pip,
                name: &pip_name,
                location: &location,
                address: &format!("20.50.0.{number}"),
                delete_option: if pip_delete { "Delete" } else { "Detach" },
                ip_configuration_id: &format!("{id}/ipConfigurations/{ip_name}"),
            });
            inner.pips.insert(
                pip_name.clone(),
                Resource {
                    body,
                    delete_with_vm: pip_delete,
                },
            );
            pip_id = Some(this_pip);
        }
        let body = examples::network_interface(&examples::Nic {
            id: &id,
            name: &nic_name,
            location: &location,
            vm_id: &vm_id(vm_name),
            network_security_group: config.pointer("/properties/networkSecurityGroup").cloned(),
            ip_name: &ip_name,
            private_ip: &format!("10.0.0.{}", 3 + number),
            subnet: ip.pointer("/properties/subnet").cloned().unwrap(),
            public_ip_id: pip_id.as_deref(),
            secondary_first: inner.secondary_ip_config_first,
        });
        inner.nics.insert(
            nic_name.clone(),
            Resource {
                body,
                delete_with_vm: nic_delete,
            },
        );
        nic_id = Some(id);
    }
    inner.disks.insert(
        disk_name,
        Resource {
            body: json!({}),
            delete_with_vm: disk_delete,
        },
    );
    if let Some(vm) = inner.vms.get_mut(vm_name) {
        vm.nic = nic_id;
    }
}

fn remove_vm(inner: &mut Inner, vm_name: &str) {
    let Some(vm) = inner.vms.remove(vm_name) else {
        return;
    };
    if let Some(nic_id) = vm.nic {
        let nic_name = nic_id.rsplit('/').next().unwrap().to_string();
        if let Some(nic) = inner.nics.get(&nic_name) {
            let pip_id = nic.body["properties"]["ipConfigurations"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|c| c.pointer("/properties/publicIPAddress/id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if nic.delete_with_vm {
                inner.nics.remove(&nic_name);
            }
            if let Some(pip_id) = pip_id {
                let pip_name = pip_id.rsplit('/').next().unwrap().to_string();
                if inner.pips.get(&pip_name).is_some_and(|p| p.delete_with_vm) {
                    inner.pips.remove(&pip_name);
                }
            }
        }
    }
    inner.disks.retain(|_, d| !d.delete_with_vm);
}
