//! Tests of the rule model: the three request shapes, validation, and what each cloud can
//! express.

use serde_json::json;

use crate::cloud::CloudKind;
use crate::ids::{UserId, VmId};
use crate::timestamp::Timestamp;

use super::fields::*;
use super::ports::*;
use super::request::*;
use super::rule::*;

fn parse(v: serde_json::Value) -> Result<NewRule, Vec<(String, String)>> {
    serde_json::from_value::<CreateRuleRequest>(v)
        .expect("body shape")
        .parse()
}

fn fields(v: serde_json::Value) -> Vec<String> {
    parse(v).unwrap_err().into_iter().map(|(f, _)| f).collect()
}

const VM: &str = "6549fc8570c99a149c79193f";

#[test]
fn the_platforms_aws_example_parses() {
    let r = parse(
        json!({ "protocol": "Tcp", "direction": "Inbound", "portRange": ["22"], "name": "SSH",
        "description": "", "source": "*", "cidrBlock": "0.0.0.0/0", "virtualMachine": VM }),
    )
    .unwrap();
    assert_eq!(r.protocol, Protocol::Tcp);
    assert_eq!(
        r.port_range,
        Ports::Ranges(vec![PortRange { from: 22, to: 22 }])
    );
    assert_eq!(r.cidr_block.to_string(), "0.0.0.0/0");
    assert_eq!(r.access, RuleAccess::Allow);
    assert_eq!(r.priority, None);
}

#[test]
fn the_platforms_azure_example_parses() {
    let r = parse(
        json!({ "source": "*", "sourcePortRange": "*", "sourceAddressPrefix": "*",
        "destination": "*", "destinationPortRange": "8080", "destinationAddressPrefix": "*",
        "protocol": "*", "access": "Allow", "priority": 100, "direction": "Inbound",
        "name": "Any", "description": "", "virtualMachine": "6549fc7a70c99a149c7918e8" }),
    )
    .unwrap();
    assert_eq!(r.protocol, Protocol::Any);
    assert_eq!(r.port_range.to_strings(), vec!["8080"]);
    assert_eq!(r.priority, Some(100));
    assert!(r.cidr_block.is_any());
}

#[test]
fn the_neutral_body_takes_ranges_and_case_insensitive_words() {
    let r = parse(
        json!({ "virtualMachine": VM, "name": "web", "protocol": "udp",
        "direction": "outbound", "access": "deny", "portRange": ["8000-8090", "53"],
        "cidrBlock": "2001:db8::/32", "priority": 4096 }),
    )
    .unwrap();
    assert_eq!(r.port_range.to_strings(), vec!["53", "8000-8090"]);
    assert_eq!(r.direction, Direction::Outbound);
    assert_eq!(r.access, RuleAccess::Deny);
    assert!(r.cidr_block.is_v6());
    let r = parse(json!({ "virtualMachine": VM, "name": "ping", "protocol": "Icmp" })).unwrap();
    assert!(r.port_range.is_any());
}

#[test]
fn every_bad_field_is_named() {
    assert_eq!(
        fields(json!({})),
        vec!["virtualMachine", "name", "protocol", "portRange"]
    );
    assert_eq!(
        fields(
            json!({ "virtualMachine": VM, "name": "-bad", "protocol": "gre", "portRange": "0",
            "cidrBlock": "10.0.0.1/8", "priority": 99, "direction": "in", "access": "maybe" })
        ),
        vec![
            "name",
            "direction",
            "protocol",
            "access",
            "portRange",
            "cidrBlock",
            "priority"
        ]
    );
    let base = json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp" });
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        if k != "portRange" {
            b["portRange"] = json!("22");
        }
        fields(b)
    };
    assert_eq!(with("portRange", json!("70000")), vec!["portRange"]);
    assert_eq!(with("portRange", json!("90-80")), vec!["portRange"]);
    assert_eq!(with("portRange", json!(["80", "70-90"])), vec!["portRange"]);
    assert_eq!(with("portRange", json!(["*", "22"])), vec!["portRange"]);
    assert_eq!(with("portRange", json!([])), vec!["portRange"]);
    assert_eq!(with("cidrBlock", json!("300.0.0.0/8")), vec!["cidrBlock"]);
    assert_eq!(with("cidrBlock", json!("10.0.0.0/33")), vec!["cidrBlock"]);
    assert_eq!(with("source", json!("10.0.0.1/8")), vec!["source"]);
    assert_eq!(
        fields(
            json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "22",
            "cidrBlock": "10.0.0.0/8", "source": "10.1.0.0/16" })
        ),
        vec!["source"]
    );
    assert_eq!(
        with("sourcePortRange", json!("1024")),
        vec!["sourcePortRange"]
    );
    assert_eq!(
        with("destinationAddressPrefix", json!("10.0.0.4")),
        vec!["destinationAddressPrefix"]
    );
    assert_eq!(
        with("destinationPortRange", json!("22")),
        vec!["destinationPortRange"]
    );
    assert_eq!(with("description", json!("é")), vec!["description"]);
    assert_eq!(
        with("description", json!("x".repeat(141))),
        vec!["description"]
    );
    assert_eq!(with("name", json!("x".repeat(81))), vec!["name"]);
    let mut icmp = base.clone();
    icmp["protocol"] = json!("Icmp");
    icmp["portRange"] = json!("22");
    assert_eq!(fields(icmp), vec!["portRange"]);
}

#[test]
fn unknown_fields_are_refused_by_the_body_shape() {
    let e = serde_json::from_value::<CreateRuleRequest>(json!({ "name": "a", "fromPort": 22 }))
        .unwrap_err();
    assert!(e.to_string().contains("fromPort"), "{e}");
}

#[test]
fn source_may_repeat_the_network() {
    let r = parse(
        json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "22",
        "source": "203.0.113.0/24" }),
    )
    .unwrap();
    assert_eq!(r.cidr_block.to_string(), "203.0.113.0/24");
}

#[test]
fn clouds_refuse_what_they_cannot_express() {
    let rule = |v: serde_json::Value| parse(v).unwrap();
    let ssh =
        rule(json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "22" }));
    assert!(ssh
        .unsupported_on(Some(CloudKind::Kraud))
        .unwrap()
        .contains("Kraud.Cloud"));
    assert_eq!(ssh.unsupported_on(Some(CloudKind::Aws)), None);
    assert_eq!(ssh.unsupported_on(Some(CloudKind::Azure)), None);
    let open =
        rule(json!({ "virtualMachine": VM, "name": "a", "protocol": "*", "portRange": "*" }));
    assert_eq!(open.unsupported_on(Some(CloudKind::Kraud)), None);
    let deny = rule(
        json!({ "virtualMachine": VM, "name": "a", "protocol": "*", "portRange": "*", "access": "Deny" }),
    );
    assert_eq!(deny.unsupported_on(Some(CloudKind::Kraud)), None);
    assert!(deny
        .unsupported_on(Some(CloudKind::Aws))
        .unwrap()
        .contains("Deny"));
    let out = rule(
        json!({ "virtualMachine": VM, "name": "a", "protocol": "Tcp", "portRange": "443", "direction": "Outbound" }),
    );
    assert!(out
        .unsupported_on(Some(CloudKind::Aws))
        .unwrap()
        .contains("outbound"));
    assert_eq!(out.unsupported_on(Some(CloudKind::Azure)), None);
}

#[test]
fn priorities_are_handed_out_per_direction() {
    let now = Timestamp::now();
    let user = UserId::parse("u1").unwrap();
    let mut rules = vec![SecurityRule::default_for(Some(CloudKind::Aws), 1, now)];
    assert_eq!(next_priority(&rules, Direction::Inbound), Some(1010));
    assert_eq!(next_priority(&rules, Direction::Outbound), Some(1000));
    let r = parse(json!({ "virtualMachine": VM, "name": "b", "protocol": "Tcp", "portRange": "80", "priority": 4096 }))
        .unwrap()
        .into_rule(&rules, &user, 2, now)
        .unwrap();
    rules.push(r);
    // 4096 is taken and nothing fits above it: the lowest free number.
    assert_eq!(next_priority(&rules, Direction::Inbound), Some(100));
}

#[test]
fn stored_rules_round_trip_and_show_on_the_wire() {
    let now = Timestamp::now();
    let vm = VmId::parse(VM).unwrap();
    let rule = SecurityRule::default_for(None, 3, now);
    let back: SecurityRule = serde_json::from_value(serde_json::to_value(&rule).unwrap()).unwrap();
    assert_eq!(back, rule);
    let wire = serde_json::to_value(rule.to_wire(vm, 2)).unwrap();
    assert_eq!(wire["name"], "AllowAnySSHInbound");
    assert_eq!(wire["portRange"], json!(["22"]));
    assert_eq!(wire["protocol"], "Tcp");
    assert_eq!(wire["source"], "*");
    assert_eq!(wire["cidrBlock"], "0.0.0.0/0");
    assert_eq!(wire["rule"], wire["_id"]);
    assert_eq!(wire["virtualMachine"], VM);
    assert_eq!(wire["applied"], false);
    assert!(rule.to_wire(vm, 3).applied);
    let kraud = SecurityRule::default_for(Some(CloudKind::Kraud), 1, now);
    assert_eq!(kraud.to_wire(vm, 0).port_range, vec!["*"]);
    assert_eq!(kraud.protocol, Protocol::Any);
}
