//! Malformed security-rule requests.

use reqwest::Method;
use serde_json::{json, Value};

use super::case::{bad_ids, case, odd_values, raw_body_cases, Case, Payload, Want};

/// The security-rule routes.
const RULES: &str = "/api/security-rules";

/// Values of the odd ones that are valid for a security-rule field (optional fields; a short
/// name or description): those are not bad input.
fn valid_rule_variant(field: &str, value: &Value) -> bool {
    match field {
        "virtualMachine" | "protocol" | "portRange" | "name" => {
            field == "name" && *value == json!("x")
        }
        "description" => value.is_null() || *value == json!("") || *value == json!("x"),
        _ => value.is_null(),
    }
}

/// Malformed security-rule requests: mutations of a valid rule for `target` (a running
/// Kraud.Cloud VM), rules Kraud.Cloud cannot express, raw bodies, and bad ids on the rule routes.
pub(super) fn rule_cases(target: &str) -> Vec<Case> {
    let valid = json!({"virtualMachine": target, "name": "corpus-rule", "protocol": "*",
        "portRange": ["*"]});
    let invalid = Want::Code(400, "VALIDATION_FAILED");
    let post = |label: String, body: Value, want: Want| {
        case(label, Method::POST, RULES, Payload::Json(body), want)
    };
    let mut out = Vec::new();
    for field in [
        "virtualMachine",
        "name",
        "description",
        "direction",
        "protocol",
        "portRange",
        "cidrBlock",
        "source",
        "priority",
        "access",
        "destinationPortRange",
        "sourceAddressPrefix",
        "sourcePortRange",
        "destination",
        "destinationAddressPrefix",
    ] {
        for (what, value) in odd_values() {
            if valid_rule_variant(field, &value) {
                continue;
            }
            let mut body = valid.clone();
            body[field] = value;
            out.push(post(format!("rule: {field} {what}"), body, Want::Any));
        }
    }
    for field in ["virtualMachine", "name", "protocol", "portRange"] {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(field);
        out.push(post(format!("rule: without {field}"), body, invalid));
    }
    for field in [
        "fromPort",
        "ipProtocol",
        "rules",
        "_id",
        "createdAt",
        "applied",
    ] {
        let mut body = valid.clone();
        body[field] = json!(1);
        out.push(post(format!("rule: unknown field {field}"), body, invalid));
    }
    for (what, patch) in [
        ("port 22", json!({"protocol": "Tcp", "portRange": ["22"]})),
        ("udp", json!({"protocol": "Udp"})),
        ("outbound", json!({"direction": "Outbound"})),
        ("one network", json!({"cidrBlock": "203.0.113.0/24"})),
        ("IPv6", json!({"cidrBlock": "::/0"})),
    ] {
        let mut body = valid.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        out.push(post(
            format!("rule: Kraud.Cloud cannot filter by {what}"),
            body,
            Want::Code(422, "UNSUPPORTED_BY_PROVIDER"),
        ));
    }
    let mut missing = valid.clone();
    missing["virtualMachine"] = json!("654a11e60b23ef1b0f36d44e");
    out.push(post(
        "rule: a missing VM".into(),
        missing,
        Want::Code(404, "VM_NOT_FOUND"),
    ));
    out.push(post("rule: an array".into(), json!([valid]), invalid));
    out.extend(raw_body_cases(Method::POST, RULES, &valid));
    for (what, id, want) in bad_ids() {
        out.push(case(
            format!("list rules of {what}"),
            Method::GET,
            &format!("/api/virtual-machines/{id}/security-rules"),
            Payload::Empty,
            want,
        ));
        let want = match want {
            Want::Code(404, _) => Want::Code(404, "SECURITY_RULE_NOT_FOUND"),
            other => other,
        };
        out.push(case(
            format!("delete rule {what}"),
            Method::DELETE,
            &format!("{RULES}/{id}"),
            Payload::Empty,
            want,
        ));
    }
    out
}
