//! ARM's validation of a VM body and of an NSG's security rules (what the driver sends).

use axum::response::Response;
use serde_json::Value;

use super::reply::{arm_error, invalid};
use super::state::Inner;

pub(super) fn validate_vm(inner: &Inner, body: &Value) -> Result<(), Box<Response>> {
    let props = &body["properties"];
    if body["location"].as_str().unwrap_or("").is_empty() {
        return Err(Box::new(invalid(
            "location",
            "The resource location is required.",
        )));
    }
    if props
        .pointer("/hardwareProfile/vmSize")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        return Err(Box::new(invalid(
            "hardwareProfile.vmSize",
            "The value of parameter vmSize is invalid.",
        )));
    }
    let image = &props["storageProfile"]["imageReference"];
    for field in ["publisher", "offer", "sku", "version"] {
        if image[field].as_str().unwrap_or("").is_empty() {
            return Err(Box::new(invalid(
                &format!("imageReference.{field}"),
                &format!("Required parameter '{field}' is missing (null)."),
            )));
        }
    }
    let os = &props["osProfile"];
    let user = os["adminUsername"].as_str().unwrap_or("");
    if user.is_empty() {
        return Err(Box::new(invalid(
            "adminUsername",
            "Required parameter 'adminUsername' is missing (null).",
        )));
    }
    if os["computerName"].as_str().unwrap_or("").is_empty() {
        return Err(Box::new(invalid(
            "computerName",
            "Required parameter 'computerName' is missing (null).",
        )));
    }
    let linux = &os["linuxConfiguration"];
    if linux["disablePasswordAuthentication"].as_bool() == Some(true) {
        let keys = linux
            .pointer("/ssh/publicKeys")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if keys.is_empty() {
            return Err(Box::new(invalid(
                "linuxConfiguration.ssh.publicKeys",
                "Authentication using either SSH or by user name and password must be enabled in Linux profile.",
            )));
        }
        let expected = format!("/home/{user}/.ssh/authorized_keys");
        for key in keys {
            if key["path"].as_str() != Some(expected.as_str()) {
                return Err(Box::new(invalid(
                    "linuxConfiguration.ssh.publicKeys.path",
                    &format!("Destination path for SSH public keys is currently limited to its default value {expected} due to a known issue in Linux provisioning agent."),
                )));
            }
            if key["keyData"].as_str().unwrap_or("").is_empty() {
                return Err(Box::new(invalid(
                    "linuxConfiguration.ssh.publicKeys.keyData",
                    "The value of parameter keyData is invalid.",
                )));
            }
        }
    } else if os["adminPassword"].as_str().unwrap_or("").is_empty() {
        return Err(Box::new(invalid(
            "adminPassword",
            "Required parameter 'adminPassword' is missing (null).",
        )));
    }
    let network = &props["networkProfile"];
    let configs = network["networkInterfaceConfigurations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if configs.is_empty()
        && network["networkInterfaces"]
            .as_array()
            .is_none_or(Vec::is_empty)
    {
        return Err(Box::new(invalid(
            "networkProfile",
            "The VM needs a network interface.",
        )));
    }
    if !configs.is_empty() && network["networkApiVersion"].as_str().is_none() {
        return Err(Box::new(invalid(
            "networkProfile.networkApiVersion",
            "networkApiVersion is required when networkInterfaceConfigurations are specified.",
        )));
    }
    for config in &configs {
        if let Some(nsg) = config
            .pointer("/properties/networkSecurityGroup/id")
            .and_then(Value::as_str)
        {
            let name = nsg.rsplit('/').next().unwrap_or("");
            if !inner.nsgs.contains_key(name) {
                return Err(Box::new(arm_error(
                    400,
                    "InvalidResourceReference",
                    &format!(
                        "Resource {nsg} referenced by resource {} was not found.",
                        config["name"]
                    ),
                )));
            }
        }
        for ip in config
            .pointer("/properties/ipConfigurations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            let subnet = ip
                .pointer("/properties/subnet/id")
                .and_then(Value::as_str)
                .unwrap_or("");
            let vnet = subnet
                .split('/')
                .collect::<Vec<_>>()
                .windows(2)
                .find(|w| w[0].eq_ignore_ascii_case("virtualNetworks"))
                .map(|w| w[1].to_string());
            if !vnet.is_some_and(|v| inner.vnets.contains_key(&v)) {
                return Err(Box::new(arm_error(
                    400,
                    "InvalidResourceReference",
                    &format!(
                        "Resource {subnet} referenced by resource {} was not found.",
                        config["name"]
                    ),
                )));
            }
        }
    }
    if props
        .pointer("/securityProfile/securityType")
        .and_then(Value::as_str)
        == Some("ConfidentialVM")
    {
        if props.pointer("/securityProfile/uefiSettings").is_none() {
            return Err(Box::new(invalid(
                "securityProfile.uefiSettings",
                "UefiSettings must be specified when SecurityType is ConfidentialVM.",
            )));
        }
        if props
            .pointer("/storageProfile/osDisk/managedDisk/securityProfile/securityEncryptionType")
            .is_none()
        {
            return Err(Box::new(invalid(
                "managedDisk.securityProfile.securityEncryptionType",
                "SecurityEncryptionType must be specified for ConfidentialVM.",
            )));
        }
    }
    Ok(())
}

/// Checks `properties.securityRules` of an NSG as ARM does (the fields the driver sends):
/// names, priorities 100-4096 unique per direction, direction, access, protocol, one address
/// prefix per side, port range or ranges (not both).
pub(super) fn validate_security_rules(nsg: &Value) -> Result<(), Box<Response>> {
    let rules = nsg
        .pointer("/properties/securityRules")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let bad = |code: &str, message: String| Err(Box::new(arm_error(400, code, &message)));
    let mut seen: Vec<(String, u64, String)> = Vec::new();
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("");
        if name.is_empty() {
            return bad(
                "InvalidRequestFormat",
                "A security rule has no name.".into(),
            );
        }
        let p = &rule["properties"];
        let priority = p["priority"].as_u64().unwrap_or(0);
        if !(100..=4096).contains(&priority) {
            return bad(
                "SecurityRuleInvalidPriority",
                format!("Security rule {name} has invalid priority {priority}."),
            );
        }
        let direction = p["direction"].as_str().unwrap_or("");
        if !["Inbound", "Outbound"].contains(&direction) {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name}: invalid direction '{direction}'."),
            );
        }
        if !["Allow", "Deny"].contains(&p["access"].as_str().unwrap_or("")) {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name}: invalid access."),
            );
        }
        if !["Tcp", "Udp", "Icmp", "Esp", "Ah", "*"].contains(&p["protocol"].as_str().unwrap_or(""))
        {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name}: invalid protocol."),
            );
        }
        for side in ["source", "destination"] {
            if !p[format!("{side}AddressPrefix")].is_string() {
                return bad(
                    "SecurityRuleParameterContainsUnsupportedValue",
                    format!("Security rule {name} needs {side}AddressPrefix."),
                );
            }
        }
        if !p["sourcePortRange"].is_string() {
            return bad(
                "InvalidRequestFormat",
                format!("Security rule {name} needs sourcePortRange."),
            );
        }
        match (
            p["destinationPortRange"].is_string(),
            p["destinationPortRanges"].as_array().is_some_and(|r| !r.is_empty()),
        ) {
            (true, false) | (false, true) => {}
            _ => {
                return bad(
                    "SecurityRuleInvalidPortRange",
                    format!("Security rule {name} needs exactly one of destinationPortRange and destinationPortRanges."),
                )
            }
        }
        if let Some(other) = seen
            .iter()
            .find(|(_, pr, d)| *pr == priority && d == direction)
        {
            return bad(
                "SecurityRuleConflict",
                format!("Security rule {name} conflicts with rule {}. Rules cannot have the same Priority and Direction.", other.0),
            );
        }
        seen.push((name.to_string(), priority, direction.to_string()));
    }
    Ok(())
}
