//! Answers built from the documents' own examples (azure-rest-api-specs `examples/`, vendored
//! beside the swagger files in `tests/specs/azure/swagger/.../examples/`) rather than by hand:
//! the example's body with the name, id, location, addresses and references of the resource
//! the server made. Whatever else the example carries (DDoS settings, IP tags, DNS settings, a
//! MAC address, a second IP configuration with a CIDR private address, ...) stays, so the driver
//! reads the shapes Azure documents, not only the fields it wants.

use serde_json::{json, Value};

const PUBLIC_IP_GET: &str = include_str!(
    "../specs/azure/swagger/network/resource-manager/Microsoft.Network/stable/2024-05-01/examples/PublicIpAddressGet.json"
);
const NETWORK_INTERFACE_GET: &str = include_str!(
    "../specs/azure/swagger/network/resource-manager/Microsoft.Network/stable/2024-05-01/examples/NetworkInterfaceGet.json"
);

fn body(example: &str) -> Value {
    let parsed: Value = serde_json::from_str(example).expect("vendored example is JSON");
    parsed["responses"]["200"]["body"].clone()
}

/// The public IP a VM's inline configuration made.
pub struct PublicIp<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub location: &'a str,
    pub address: &'a str,
    pub delete_option: &'a str,
    /// The NIC IP configuration it is bound to.
    pub ip_configuration_id: &'a str,
}

/// `PublicIpAddressGet.json`'s body for `ip` (Standard SKU, static, as the driver asks).
pub fn public_ip(ip: &PublicIp<'_>) -> Value {
    let mut b = body(PUBLIC_IP_GET);
    b["id"] = json!(ip.id);
    b["name"] = json!(ip.name);
    b["location"] = json!(ip.location);
    b["sku"] = json!({ "name": "Standard", "tier": "Regional" });
    let p = &mut b["properties"];
    p["ipAddress"] = json!(ip.address);
    p["publicIPAllocationMethod"] = json!("Static");
    p["deleteOption"] = json!(ip.delete_option);
    p["ipConfiguration"] = json!({ "id": ip.ip_configuration_id });
    b
}

/// The NIC a VM's inline configuration made.
pub struct Nic<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub location: &'a str,
    pub vm_id: &'a str,
    pub network_security_group: Option<Value>,
    /// The VM's IP configuration: name, private address, subnet, public IP id.
    pub ip_name: &'a str,
    pub private_ip: &'a str,
    pub subnet: Value,
    pub public_ip_id: Option<&'a str>,
    /// Puts the example's secondary configuration (CIDR private address) before the VM's.
    pub secondary_first: bool,
}

/// `NetworkInterfaceGet.json`'s body for `nic`: its first IP configuration becomes the VM's,
/// its second (not primary, a CIDR private address) stays, on the VM's subnet.
pub fn network_interface(nic: &Nic<'_>) -> Value {
    let mut b = body(NETWORK_INTERFACE_GET);
    b["id"] = json!(nic.id);
    b["name"] = json!(nic.name);
    b["location"] = json!(nic.location);
    let p = &mut b["properties"];
    p["virtualMachine"] = json!({ "id": nic.vm_id });
    match &nic.network_security_group {
        Some(nsg) => p["networkSecurityGroup"] = nsg.clone(),
        None => {
            p.as_object_mut().unwrap().remove("networkSecurityGroup");
        }
    }
    let configs = p["ipConfigurations"].as_array_mut().unwrap();
    let ours = &mut configs[0];
    ours["name"] = json!(nic.ip_name);
    ours["id"] = json!(format!("{}/ipConfigurations/{}", nic.id, nic.ip_name));
    let q = &mut ours["properties"];
    q["privateIPAddress"] = json!(nic.private_ip);
    q["subnet"] = nic.subnet.clone();
    match nic.public_ip_id {
        Some(id) => q["publicIPAddress"] = json!({ "id": id }),
        None => {
            q.as_object_mut().unwrap().remove("publicIPAddress");
        }
    }
    let second = &mut configs[1];
    let second_name = second["name"].as_str().unwrap().to_string();
    second["id"] = json!(format!("{}/ipConfigurations/{second_name}", nic.id));
    second["properties"]["subnet"] = nic.subnet.clone();
    if nic.secondary_first {
        configs.swap(0, 1);
    }
    b
}
