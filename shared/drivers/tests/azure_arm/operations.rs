//! Long-running operations: made by the requests that start them, answered by their status
//! monitors (`Azure-AsyncOperation`) and result URLs (`Location`), each poll advancing them.

use axum::response::Response;
use serde_json::json;

use super::ids::{COMPUTE, NETWORK, SUBSCRIPTION};
use super::lifecycle::tick;
use super::reply::{arm_error, json_response, retry_header};
use super::state::{Inner, Op, OpKind};

pub(super) fn new_op(
    inner: &mut Inner,
    kind: OpKind,
    vm: &str,
    failure: Option<(String, String)>,
    previous_power: Option<String>,
) -> String {
    inner.counter += 1;
    let id = format!(
        "{:08x}-0000-4000-8000-{:012x}",
        inner.counter, inner.counter
    );
    inner.ops.insert(
        id.clone(),
        Op {
            kind,
            vm: vm.to_string(),
            remaining: inner.op_polls,
            failure,
            result: None,
            previous_power,
        },
    );
    id
}

fn op_base(inner: &Inner) -> String {
    inner
        .operation_base_override
        .clone()
        .unwrap_or_else(|| inner.base.clone())
}

pub(super) fn async_url(inner: &Inner, provider: &str, region: &str, id: &str) -> String {
    let version = if provider == "Microsoft.Network" {
        NETWORK
    } else {
        COMPUTE
    };
    format!(
        "{}/subscriptions/{SUBSCRIPTION}/providers/{provider}/locations/{region}/operations/{id}?p=571046f6-b640-41c1-86f7-f9f044b5adf9&api-version={version}",
        op_base(inner)
    )
}

pub(super) fn location_url(inner: &Inner, region: &str, id: &str) -> String {
    format!(
        "{}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Compute/locations/{region}/operationResults/{id}?p=571046f6-b640-41c1-86f7-f9f044b5adf9&api-version={COMPUTE}",
        op_base(inner)
    )
}

pub(super) fn poll_async(inner: &mut Inner, id: &str) -> Response {
    if !inner.ops.contains_key(id) {
        return arm_error(404, "NotFound", "The operation was not found.");
    }
    tick(inner, id);
    let op = &inner.ops[id];
    let body = match &op.result {
        None => {
            json!({ "name": id, "status": "InProgress", "startTime": "2025-01-01T00:00:00+00:00" })
        }
        Some(Ok(())) => json!({
            "name": id, "status": "Succeeded",
            "startTime": "2025-01-01T00:00:00+00:00", "endTime": "2025-01-01T00:00:05+00:00"
        }),
        Some(Err((code, message))) => json!({
            "name": id, "status": "Failed",
            "startTime": "2025-01-01T00:00:00+00:00", "endTime": "2025-01-01T00:00:05+00:00",
            "error": { "code": code, "message": message }
        }),
    };
    let headers = if op.result.is_none() {
        retry_header(inner)
    } else {
        vec![]
    };
    json_response(200, headers, Some(body))
}

pub(super) fn poll_location(inner: &mut Inner, id: &str, path: &str, query: &str) -> Response {
    if !inner.ops.contains_key(id) {
        return arm_error(404, "NotFound", "The operation was not found.");
    }
    tick(inner, id);
    match &inner.ops[id].result {
        None => {
            let mut headers = vec![("location", format!("{}{path}?{query}", op_base(inner)))];
            headers.extend(retry_header(inner));
            json_response(202, headers, None)
        }
        Some(Ok(())) => json_response(200, vec![], None),
        Some(Err((code, message))) => arm_error(500, code, message),
    }
}
