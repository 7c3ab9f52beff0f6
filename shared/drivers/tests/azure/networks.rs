//! Networks and security rules: managed networks once per region, the VM's NSG with its
//! rules put whole.

use std::time::Duration;

use vmapi_core::cloud::{CloudDriver, CloudState, DriverError, VmSpec};
use vmapi_models::{
    CloudKind, Direction, Ports, Protocol, RuleAccess, RuleName, SecurityRule, Timestamp,
};

use crate::azure_arm::ArmServer;
use crate::common::{driver, spec};

fn spec_in(region: &str) -> VmSpec {
    spec(region)
}

#[tokio::test]
async fn managed_networks_are_created_once_per_region() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("northeurope");
    azure.create(&spec).await.unwrap();
    assert_eq!(
        arm.vnet_names(),
        ["shared-westeurope", "vm-api-northeurope"]
    );
    // No region-wide NSG any more: the NIC carries the VM's own.
    assert_eq!(arm.nsg_names(), [format!("vm-{}-nsg", spec.vm_id)]);
    let body = &arm.vm_put_bodies()[0];
    let nic =
        &body["properties"]["networkProfile"]["networkInterfaceConfigurations"][0]["properties"];
    let group = arm.group_id();
    assert_eq!(
        nic["ipConfigurations"][0]["properties"]["subnet"]["id"],
        format!("{group}/providers/Microsoft.Network/virtualNetworks/vm-api-northeurope/subnets/default")
    );
    assert_eq!(
        nic["networkSecurityGroup"]["id"],
        format!(
            "{group}/providers/Microsoft.Network/networkSecurityGroups/vm-{}-nsg",
            spec.vm_id
        )
    );
    let network_puts = |arm: &ArmServer| {
        arm.requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.path.contains("/virtualNetworks/"))
            .count()
    };
    assert_eq!(network_puts(&arm), 1);

    // Same process: no network calls at all. New process: found by GET, not rewritten.
    azure.create(&spec_in("northeurope")).await.unwrap();
    let fresh = driver(arm.config());
    fresh.create(&spec_in("northeurope")).await.unwrap();
    assert_eq!(network_puts(&arm), 1);
    assert_eq!(arm.vm_count(), 3);

    // Without managed networks, an unconfigured region is refused.
    let mut config = arm.config();
    config.managed_networks = false;
    let strict = driver(config);
    assert!(matches!(
        strict.create(&spec_in("eastus2")).await,
        Err(DriverError::InvalidSpec(_))
    ));
}

fn rule(
    name: &str,
    direction: Direction,
    protocol: Protocol,
    ports: &[&str],
    cidr: &str,
    priority: u16,
    access: RuleAccess,
) -> SecurityRule {
    let mut r = SecurityRule::default_for(Some(CloudKind::Azure), 2, Timestamp::now());
    r.name = RuleName::parse(name).unwrap();
    r.description = String::new();
    r.direction = direction;
    r.protocol = protocol;
    r.port_range = Ports::parse(ports).unwrap();
    r.cidr_block = cidr.parse().unwrap();
    r.priority = priority;
    r.access = access;
    r
}

#[tokio::test]
async fn security_rules_are_put_whole_on_the_vms_nsg_which_goes_after_the_vm() {
    let arm = ArmServer::start().await;
    let azure = driver(arm.config());
    let spec = spec("westeurope");
    let target = spec.target();
    let nsg_name = format!("vm-{}-nsg", spec.vm_id);
    azure.create(&spec).await.unwrap();
    while azure.get(&target).await.unwrap().unwrap().state != CloudState::Running {}
    let nsg_id = format!(
        "{}/providers/Microsoft.Network/networkSecurityGroups/{nsg_name}",
        arm.group_id()
    );
    assert_eq!(
        arm.nic_nsg(&format!("vm-{}-nic", spec.vm_id)).as_deref(),
        Some(nsg_id.as_str())
    );

    let rules = vec![
        rule(
            "Web",
            Direction::Inbound,
            Protocol::Tcp,
            &["80", "8000-8090"],
            "203.0.113.0/24",
            1010,
            RuleAccess::Allow,
        ),
        rule(
            "NoDns6",
            Direction::Outbound,
            Protocol::Udp,
            &["53"],
            "2001:db8::/32",
            1000,
            RuleAccess::Deny,
        ),
        rule(
            "Ping",
            Direction::Inbound,
            Protocol::Icmp,
            &["*"],
            "0.0.0.0/0",
            1000,
            RuleAccess::Allow,
        ),
        rule(
            "DenyRest",
            Direction::Inbound,
            Protocol::Any,
            &["*"],
            "0.0.0.0/0",
            4096,
            RuleAccess::Deny,
        ),
    ];
    arm.clear_requests();
    azure.apply_rules(&target, &rules).await.unwrap();
    let expected = serde_json::json!([
        { "name": "Ping", "properties": {
            "priority": 1000, "direction": "Inbound", "access": "Allow", "protocol": "Icmp",
            "sourceAddressPrefix": "0.0.0.0/0", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "*" } },
        { "name": "Web", "properties": {
            "priority": 1010, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
            "sourceAddressPrefix": "203.0.113.0/24", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRanges": ["80", "8000-8090"] } },
        { "name": "DenyRest", "properties": {
            "priority": 4096, "direction": "Inbound", "access": "Deny", "protocol": "*",
            "sourceAddressPrefix": "0.0.0.0/0", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "*" } },
        { "name": "NoDns6", "properties": {
            "priority": 1000, "direction": "Outbound", "access": "Deny", "protocol": "Udp",
            "sourceAddressPrefix": "*", "sourcePortRange": "*",
            "destinationAddressPrefix": "2001:db8::/32", "destinationPortRange": "53" } },
    ]);
    let put = arm
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("an NSG PUT");
    assert_eq!(put.path, nsg_id);
    assert!(
        put.query.contains("api-version=2024-05-01"),
        "{}",
        put.query
    );
    let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["properties"]["securityRules"], expected);
    // The NSG keeps its location and tags.
    assert_eq!(body["location"], "westeurope");
    assert_eq!(body["tags"]["team"], spec.team.to_string());
    let stored = arm.nsg(&nsg_name).unwrap();
    assert_eq!(stored["properties"]["securityRules"], expected);

    // Idempotent: the same set again is the same NSG.
    azure.apply_rules(&target, &rules).await.unwrap();
    assert_eq!(
        arm.nsg(&nsg_name).unwrap()["properties"]["securityRules"],
        expected
    );
    // Removing every rule empties the NSG (Azure's default rules then deny inbound).
    azure.apply_rules(&target, &[]).await.unwrap();
    assert_eq!(
        arm.nsg(&nsg_name).unwrap()["properties"]["securityRules"],
        serde_json::json!([])
    );
    // Two rules of one direction with one priority: refused before any call.
    let twice = vec![rules[0].clone(), {
        let mut r = rules[0].clone();
        r.name = RuleName::parse("Web2").unwrap();
        r
    }];
    assert!(matches!(
        azure.apply_rules(&target, &twice).await,
        Err(DriverError::InvalidSpec(_))
    ));

    // Delete: the VM (with NIC and public IP), then the NSG. A VM whose delete is not seen to
    // finish keeps its NSG until the next delete (the provisioner's call once the VM is gone).
    let mut slow = arm.config();
    slow.operation_timeout = Duration::from_millis(100);
    arm.set_op_polls(50);
    arm.set_retry_after(Some(0));
    driver(slow).delete(&target).await.unwrap();
    assert!(arm.nsg(&nsg_name).is_some());
    arm.set_op_polls(0);
    azure.delete(&target).await.unwrap();
    assert_eq!(arm.vm_count(), 0);
    assert!(arm.nsg(&nsg_name).is_none(), "{:?}", arm.nsg_names());
    // Repeating it (the VM and the NSG are gone) is fine.
    azure.delete(&target).await.unwrap();
    // Rules of a VM without its NSG: not found.
    assert!(matches!(
        azure.apply_rules(&target, &rules).await,
        Err(DriverError::NotFound(_))
    ));
}
