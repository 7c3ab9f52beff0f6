//! The handler: records each exchange, checks the bearer token, answers injected faults, and
//! routes by path to the resource it names.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use serde_json::{json, Value};

use super::ids::{COMPUTE, NETWORK, RESOURCES, RESOURCE_GROUP, SUBSCRIPTION};
use super::network::{list_nsgs, network};
use super::operations::{poll_async, poll_location};
use super::reply::{arm_error, bad_api_version, invalid, json_response, not_found, parse_pairs};
use super::resize::{list_sizes, patch_vm};
use super::state::{Inner, Recorded, Shared};
use super::token::token;
use super::vms::{delete_vm, get_vm, list_vms, put_vm, vm_action};

pub(super) async fn handle(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&body).to_string();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut inner = state.lock().unwrap();
    let response = route(
        &mut inner,
        &method,
        &path,
        &query,
        &headers,
        &body,
        authorization.as_deref(),
    );
    inner.requests.push(Recorded {
        method: method.to_string(),
        path,
        query,
        body,
        authorization,
        status: response.status().as_u16(),
    });
    response
}

fn route(
    inner: &mut Inner,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &str,
    authorization: Option<&str>,
) -> Response {
    if let Some(rest) = path.strip_prefix("/login/") {
        return token(inner, method, rest, headers, body);
    }

    // Bearer token.
    let token = authorization.and_then(|a| a.strip_prefix("Bearer "));
    match token {
        None => {
            return arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
            )
        }
        Some(t) if !inner.valid_tokens.contains(t) => {
            let code = if inner.issued_tokens.iter().any(|i| i == t) {
                "ExpiredAuthenticationToken"
            } else {
                "InvalidAuthenticationToken"
            };
            let mut response = arm_error(401, code, "The access token is invalid or has expired.");
            response.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Bearer authorization_uri=\"https://login.windows.net/\", error=\"invalid_token\""),
            );
            return response;
        }
        Some(_) => {}
    }

    // Injected errors.
    if let Some(i) = inner
        .injections
        .iter_mut()
        .find(|i| i.remaining > 0 && i.method == *method && path.contains(&i.path_contains))
    {
        i.remaining -= 1;
        let mut response = arm_error(i.status, &i.code, &i.message);
        if let Some(s) = i.retry_after {
            response.headers_mut().insert(
                "retry-after",
                HeaderValue::from_str(&s.to_string()).unwrap(),
            );
        }
        return response;
    }

    let params = parse_pairs(query);
    let api_version = params.get("api-version").cloned().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();

    if lower.len() < 2 || lower[0] != "subscriptions" || segments[1] != SUBSCRIPTION {
        return arm_error(
            404,
            "SubscriptionNotFound",
            "The subscription could not be found.",
        );
    }

    // Operation status monitors and results.
    if let ["subscriptions", _, "providers", provider, "locations", _, kind, _] = lower.as_slice() {
        let expected = if *provider == "microsoft.network" {
            NETWORK
        } else {
            COMPUTE
        };
        if api_version != expected {
            return bad_api_version(&api_version);
        }
        let id = segments[7].to_string();
        return match *kind {
            "operations" => poll_async(inner, &id),
            "operationresults" => poll_location(inner, &id, path, query),
            _ => arm_error(404, "InvalidResourceType", "unknown operation resource"),
        };
    }

    let group_ok = lower.len() >= 4 && lower[2] == "resourcegroups";
    if !group_ok {
        return arm_error(404, "InvalidResourceType", "unknown resource");
    }
    if !segments[3].eq_ignore_ascii_case(RESOURCE_GROUP) {
        return arm_error(
            404,
            "ResourceGroupNotFound",
            &format!("Resource group '{}' could not be found.", segments[3]),
        );
    }
    if let [head @ .., "providers", "microsoft.resources", "tags", "default"] = &lower[4..] {
        if api_version != RESOURCES {
            return bad_api_version(&api_version);
        }
        if *method != Method::PATCH {
            return arm_error(405, "MethodNotAllowed", "method not allowed");
        }
        return merge_tags(inner, head, &segments, body);
    }
    match &lower[4..] {
        ["providers", "microsoft.compute", "virtualmachines"] => {
            if api_version != COMPUTE {
                return bad_api_version(&api_version);
            }
            if *method != Method::GET {
                return arm_error(405, "MethodNotAllowed", "method not allowed");
            }
            list_vms(inner, path, &params)
        }
        ["providers", "microsoft.compute", "virtualmachines", _, rest @ ..] => {
            if api_version != COMPUTE {
                return bad_api_version(&api_version);
            }
            let name = segments[7].to_string();
            match (method, rest) {
                (&Method::GET, []) => {
                    get_vm(inner, &name, params.get("$expand").map(String::as_str))
                }
                (&Method::PUT, []) => put_vm(inner, &name, headers, body),
                (&Method::PATCH, []) => patch_vm(inner, &name, body),
                (&Method::GET, [sizes]) if *sizes == "vmsizes" => list_sizes(inner, &name),
                (&Method::DELETE, []) => delete_vm(inner, &name),
                (&Method::POST, [action]) => {
                    if !headers.contains_key("content-length")
                        && !headers.contains_key("transfer-encoding")
                    {
                        return arm_error(411, "LengthRequired", "Length Required");
                    }
                    vm_action(inner, &name, action)
                }
                _ => arm_error(405, "MethodNotAllowed", "method not allowed"),
            }
        }
        ["providers", "microsoft.network", "networksecuritygroups"] => {
            if api_version != NETWORK {
                return bad_api_version(&api_version);
            }
            if *method != Method::GET {
                return arm_error(405, "MethodNotAllowed", "method not allowed");
            }
            list_nsgs(inner, path, &params)
        }
        ["providers", "microsoft.network", kind, _] => {
            if api_version != NETWORK {
                return bad_api_version(&api_version);
            }
            let name = segments[7].to_string();
            network(inner, method, kind, &name, body)
        }
        _ => arm_error(404, "InvalidResourceType", "unknown resource type"),
    }
}

/// `PATCH {resource}/providers/Microsoft.Resources/tags/default` (Tags - Update At Scope) with
/// `operation: Merge` on a VM or an NSG of the resource group.
fn merge_tags(inner: &mut Inner, head: &[&str], segments: &[&str], body: &str) -> Response {
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return invalid("body", "The request body is not JSON.");
    };
    if body["operation"].as_str() != Some("Merge") {
        return invalid("operation", "Only Merge is supported here.");
    }
    let Some(new) = body.pointer("/properties/tags").and_then(Value::as_object) else {
        return invalid("properties.tags", "Tags are required.");
    };
    let name = segments[7];
    let tags = match head {
        ["providers", "microsoft.compute", "virtualmachines", _] => {
            match inner.vms.get_mut(&name.to_ascii_lowercase()) {
                Some(vm) => &mut vm.model["tags"],
                None => return not_found("Microsoft.Compute/virtualMachines", name),
            }
        }
        ["providers", "microsoft.network", "networksecuritygroups", _] => {
            match inner.nsgs.get_mut(name) {
                Some(nsg) => &mut nsg["tags"],
                None => return not_found("Microsoft.Network/networkSecurityGroups", name),
            }
        }
        _ => return arm_error(404, "InvalidResourceType", "unknown resource type"),
    };
    if !tags.is_object() {
        *tags = json!({});
    }
    for (k, v) in new {
        tags[k] = v.clone();
    }
    let merged = tags.clone();
    json_response(
        200,
        vec![],
        Some(json!({ "name": "default", "properties": { "tags": merged } })),
    )
}
