//! `Microsoft.Network`: NICs and public IPs (read), virtual networks and network security
//! groups (read, create-or-update; NSGs also listed and deleted).

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::{json, Value};

use super::ids::{network_id, NETWORK};
use super::operations::{async_url, new_op};
use super::reply::{arm_error, invalid, json_response, not_found, retry_header};
use super::state::{Inner, OpKind};
use super::validate::validate_security_rules;

/// `GET .../networkSecurityGroups` (Network Security Groups - List): one page of the resource
/// group's NSGs as stored, the next page linked by `nextLink`.
pub(super) fn list_nsgs(
    inner: &mut Inner,
    path: &str,
    params: &BTreeMap<String, String>,
) -> Response {
    let skip = match params.get("$skiptoken") {
        None => 0,
        Some(token) => match token.strip_prefix("nsglist.").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return invalid("$skiptoken", "The skip token is invalid."),
        },
    };
    let size = inner.list_page_size;
    let value: Vec<Value> = inner.nsgs.values().skip(skip).take(size).cloned().collect();
    let mut body = json!({ "value": value });
    if skip + size < inner.nsgs.len() {
        body["nextLink"] = json!(format!(
            "{}{path}?api-version={NETWORK}&$skiptoken=nsglist.{}",
            inner.base,
            skip + size
        ));
    }
    json_response(200, vec![], Some(body))
}

pub(super) fn network(
    inner: &mut Inner,
    method: &Method,
    kind: &str,
    name: &str,
    body: &str,
) -> Response {
    match (method, kind) {
        (&Method::GET, "networkinterfaces") => match inner.nics.get(name) {
            Some(nic) => json_response(200, vec![], Some(nic.body.clone())),
            None => not_found("Microsoft.Network/networkInterfaces", name),
        },
        (&Method::GET, "publicipaddresses") => match inner.pips.get(name) {
            Some(pip) => json_response(200, vec![], Some(pip.body.clone())),
            None => not_found("Microsoft.Network/publicIPAddresses", name),
        },
        (&Method::GET, "virtualnetworks") | (&Method::GET, "networksecuritygroups") => {
            let map = if kind == "virtualnetworks" {
                &inner.vnets
            } else {
                &inner.nsgs
            };
            match map.get(name) {
                Some(resource) => json_response(200, vec![], Some(resource.clone())),
                None => not_found(&format!("Microsoft.Network/{kind}"), name),
            }
        }
        (&Method::PUT, "virtualnetworks") | (&Method::PUT, "networksecuritygroups") => {
            let Ok(mut resource) = serde_json::from_str::<Value>(body) else {
                return arm_error(400, "InvalidRequestContent", "invalid JSON");
            };
            let region = resource["location"].as_str().unwrap_or("").to_string();
            if region.is_empty() {
                return invalid("location", "The resource location is required.");
            }
            if kind == "networksecuritygroups" {
                if let Err(response) = validate_security_rules(&resource) {
                    return *response;
                }
            }
            resource["name"] = json!(name);
            resource["id"] = json!(network_id(kind, name));
            resource["properties"]["provisioningState"] = json!("Succeeded");
            let created = if kind == "virtualnetworks" {
                inner
                    .vnets
                    .insert(name.to_string(), resource.clone())
                    .is_none()
            } else {
                inner
                    .nsgs
                    .insert(name.to_string(), resource.clone())
                    .is_none()
            };
            let op = new_op(inner, OpKind::Network, "", None, None);
            let mut headers = vec![(
                "azure-asyncoperation",
                async_url(inner, "Microsoft.Network", &region, &op),
            )];
            headers.extend(retry_header(inner));
            resource["properties"]["provisioningState"] = json!("Updating");
            json_response(if created { 201 } else { 200 }, headers, Some(resource))
        }
        (&Method::DELETE, "networksecuritygroups") => {
            if !inner.nsgs.contains_key(name) {
                return json_response(204, vec![], None);
            }
            let in_use = inner.nics.values().any(|nic| {
                nic.body
                    .pointer("/properties/networkSecurityGroup/id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.rsplit('/').next() == Some(name))
            });
            if in_use {
                return arm_error(
                    400,
                    "InUseNetworkSecurityGroupCannotBeDeleted",
                    &format!("Network security group {} cannot be deleted because it is in use by some resources.", network_id("networkSecurityGroups", name)),
                );
            }
            let region = inner.nsgs[name]["location"]
                .as_str()
                .unwrap_or("westeurope")
                .to_string();
            inner.nsgs.remove(name);
            let op = new_op(inner, OpKind::Network, "", None, None);
            let mut headers = vec![(
                "azure-asyncoperation",
                async_url(inner, "Microsoft.Network", &region, &op),
            )];
            headers.extend(retry_header(inner));
            json_response(202, headers, None)
        }
        _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
    }
}
