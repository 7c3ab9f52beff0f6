//! What a test sets (the server's behaviour, injected faults, VMs made by someone else) and
//! reads back (requests, tokens, resources).

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::{json, Value};

use super::state::{ActionStyle, Injection, Recorded, Vm};
use super::vms::time_created;
use super::{ArmServer, Fault};

impl ArmServer {
    /// How many times an operation answers InProgress (or 202) before it ends.
    pub fn set_op_polls(&self, polls: u32) {
        self.inner().op_polls = polls;
    }

    /// `Retry-After` on accepted and running operations (`None`: no header).
    pub fn set_retry_after(&self, seconds: Option<u64>) {
        self.inner().retry_after = seconds;
    }

    /// `expires_in` of new tokens.
    pub fn set_token_expires_in(&self, seconds: u64) {
        self.inner().token_expires_in = seconds;
    }

    /// Invalidates every token issued so far (ARM answers 401 ExpiredAuthenticationToken).
    pub fn expire_tokens(&self) {
        self.inner().valid_tokens.clear();
    }

    /// The next VM create operation fails with this ARM error.
    pub fn fail_next_create(&self, code: &str, message: &str) {
        self.inner().fail_next_create = Some((code.into(), message.into()));
    }

    /// The next start/deallocate/restart operation fails with this ARM error.
    pub fn fail_next_action(&self, code: &str, message: &str) {
        self.inner().fail_next_action = Some((code.into(), message.into()));
    }

    /// How POST actions report their operation.
    pub fn set_action_style(&self, style: ActionStyle) {
        self.inner().action_style = style;
    }

    /// Creates VMs without the security profile they ask for.
    pub fn drop_security_profile(&self, drop: bool) {
        self.inner().drop_security_profile = drop;
    }

    /// Lists the NIC example's secondary IP configuration (not primary, a CIDR private
    /// address) before the VM's own in NICs made from now on.
    pub fn set_secondary_ip_config_first(&self, first: bool) {
        self.inner().secondary_ip_config_first = first;
    }

    /// Points operation URLs at another origin.
    pub fn set_operation_base(&self, base: Option<&str>) {
        self.inner().operation_base_override = base.map(str::to_string);
    }

    /// Most VMs on one page of the VM list.
    pub fn set_list_page_size(&self, size: usize) {
        self.inner().list_page_size = size.max(1);
    }

    /// Adds a running VM as if someone else had created it: no operation, no NIC; `tags` as
    /// given (e.g. `{}` for a VM that is not the service's).
    pub fn insert_vm(&self, name: &str, location: &str, tags: Value) {
        let mut inner = self.inner();
        inner.vm_counter += 1;
        let number = inner.vm_counter;
        inner.vms.insert(
            name.to_ascii_lowercase(),
            Vm {
                name: name.to_string(),
                model: json!({
                    "location": location,
                    "tags": tags,
                    "properties": {
                        "hardwareProfile": { "vmSize": "Standard_B1s" },
                        "storageProfile": { "imageReference": {
                            "publisher": "Canonical", "offer": "ubuntu-24_04-lts",
                            "sku": "server", "version": "latest"
                        } },
                        "osProfile": { "computerName": name, "adminUsername": "someone" },
                    }
                }),
                provisioning: "Succeeded".into(),
                failure: None,
                power: Some("running".into()),
                pending: None,
                nic: None,
                number,
                created: time_created(number),
            },
        );
    }

    /// The tags of a VM of this name.
    pub fn vm_tags(&self, name: &str) -> Option<Value> {
        self.inner()
            .vms
            .get(&name.to_ascii_lowercase())
            .map(|vm| vm.model["tags"].clone())
    }

    /// Whether a VM of this name exists (in any state).
    pub fn has_vm(&self, name: &str) -> bool {
        self.inner().vms.contains_key(&name.to_ascii_lowercase())
    }

    /// `properties.provisioningState` of a VM.
    pub fn provisioning_state(&self, name: &str) -> Option<String> {
        self.inner()
            .vms
            .get(&name.to_ascii_lowercase())
            .map(|vm| vm.provisioning.clone())
    }

    /// Answers the next requests with this method whose path contains `path_contains` with
    /// the fault.
    pub fn inject(&self, method: Method, path_contains: &str, fault: Fault) {
        self.inner().injections.push(Injection {
            method,
            path_contains: path_contains.to_string(),
            status: fault.status,
            code: fault.code,
            message: fault.message,
            retry_after: fault.retry_after,
            remaining: fault.times,
        });
    }

    // ----- observations -----

    pub fn token_requests(&self) -> u32 {
        self.inner().token_requests
    }

    pub fn token_forms(&self) -> Vec<BTreeMap<String, String>> {
        self.inner().token_forms.clone()
    }

    pub fn issued_tokens(&self) -> Vec<String> {
        self.inner().issued_tokens.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner().requests.clear();
    }

    pub fn vm_count(&self) -> usize {
        self.inner().vms.len()
    }

    pub fn vm_puts(&self) -> u32 {
        self.inner().vm_puts
    }

    /// Names of the NICs, public IPs and disks that exist.
    pub fn leftovers(&self) -> Vec<String> {
        let inner = self.inner();
        inner
            .nics
            .keys()
            .chain(inner.pips.keys())
            .chain(inner.disks.keys())
            .cloned()
            .collect()
    }

    pub fn vnet_names(&self) -> Vec<String> {
        self.inner().vnets.keys().cloned().collect()
    }

    pub fn nsg_names(&self) -> Vec<String> {
        self.inner().nsgs.keys().cloned().collect()
    }

    /// A network security group as stored (its last PUT, with name, id and state).
    pub fn nsg(&self, name: &str) -> Option<Value> {
        self.inner().nsgs.get(name).cloned()
    }

    /// The NSG id on a NIC, if the NIC exists and has one.
    pub fn nic_nsg(&self, nic: &str) -> Option<String> {
        self.inner()
            .nics
            .get(nic)
            .and_then(|n| n.body.pointer("/properties/networkSecurityGroup/id"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Bodies of the VM PUTs received, parsed.
    pub fn vm_put_bodies(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/virtualMachines/"))
            .map(|r| serde_json::from_str(&r.body).unwrap())
            .collect()
    }
}
