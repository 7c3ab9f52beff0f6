//! The k8s-shaped namespaces: create, patch (labels), list, delete.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::gate::error;
use super::state::{Inner, Shared, SimNamespace};

pub(super) fn valid_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

pub(super) async fn create_namespace(State(s): State<Shared>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "invalid json");
    };
    let Some(name) = v
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return error(400, "metadata.name is required");
    };
    if !valid_dns_label(&name) {
        return error(400, format!("invalid namespace name '{name}'"));
    }
    let mut st = s.lock().unwrap();
    if st.namespaces.iter().any(|n| n.name == name) {
        return error(409, format!("namespace {name} already exists"));
    }
    let mut ns = new_namespace(&mut st, &name);
    match v.pointer("/metadata/labels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) if labels.values().all(Value::is_string) => {
            ns.labels = labels.clone();
        }
        Some(_) => return error(400, "metadata.labels must map strings to strings"),
    }
    let body = namespace_json(&ns);
    st.namespaces.push(ns);
    Json(body).into_response()
}

/// `PATCH /api/v1/namespaces/{name}` (patchNamespace): a JSON merge patch of
/// `metadata.labels` (a `null` value removes a label); nothing else may be patched.
pub(super) async fn patch_namespace(
    State(s): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/merge-patch+json") {
        return error(415, format!("unsupported patch type '{content_type}'"));
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "invalid json");
    };
    let only_labels = patch
        .as_object()
        .is_some_and(|o| o.keys().all(|k| k == "metadata"))
        && patch["metadata"]
            .as_object()
            .is_some_and(|m| m.keys().all(|k| k == "labels"));
    let Some(labels) = patch.pointer("/metadata/labels").and_then(Value::as_object) else {
        return error(400, "only metadata.labels can be patched");
    };
    if !only_labels || !labels.values().all(|v| v.is_string() || v.is_null()) {
        return error(400, "only metadata.labels can be patched");
    }
    let mut st = s.lock().unwrap();
    let Some(ns) = st.namespaces.iter_mut().find(|n| n.name == name) else {
        return error(404, format!("namespace {name} not found"));
    };
    for (k, v) in labels {
        if v.is_null() {
            ns.labels.remove(k);
        } else {
            ns.labels.insert(k.clone(), v.clone());
        }
    }
    Json(namespace_json(ns)).into_response()
}

pub(super) fn new_namespace(st: &mut Inner, name: &str) -> SimNamespace {
    st.namespace_counter += 1;
    let n = st.namespace_counter;
    SimNamespace {
        name: name.into(),
        number: n,
        created: format!(
            "2025-01-01T{:02}:{:02}:{:02}Z",
            n / 3600 % 24,
            n / 60 % 60,
            n % 60
        ),
        deleting: None,
        labels: serde_json::Map::new(),
    }
}

/// A `k8s.Namespace`.
fn namespace_json(ns: &SimNamespace) -> Value {
    let mut metadata = json!({
        "name": ns.name,
        "uid": format!("30000000-0000-4000-8000-{:012}", ns.number),
        "creationTimestamp": ns.created,
    });
    if let Some(at) = &ns.deleting {
        metadata["deletionTimestamp"] = json!(at);
    }
    if !ns.labels.is_empty() {
        metadata["labels"] = Value::Object(ns.labels.clone());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata,
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": if ns.deleting.is_some() { "Terminating" } else { "Active" } },
    })
}

/// `GET /api/v1/namespaces`: a `k8s.NamespaceList`.
pub(super) async fn list_namespaces(State(s): State<Shared>) -> Response {
    let st = s.lock().unwrap();
    let items: Vec<Value> = st.namespaces.iter().map(namespace_json).collect();
    Json(json!({
        "apiVersion": "v1",
        "kind": "NamespaceList",
        "metadata": {},
        "items": items,
    }))
    .into_response()
}

pub(super) async fn delete_namespace(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = s.lock().unwrap();
    if !st.namespaces.iter().any(|n| n.name == name) {
        return error(404, format!("namespace {name} not found"));
    }
    let occupied = st.pods.iter().any(|p| p.namespace == name)
        || st.deployments.iter().any(|d| d.namespace == name);
    if occupied && q.get("recursive").map(String::as_str) != Some("true") {
        return error(409, format!("namespace {name} is not empty"));
    }
    st.namespaces.retain(|n| n.name != name);
    st.pods.retain(|p| p.namespace != name);
    st.deployments.retain(|d| d.namespace != name);
    StatusCode::NO_CONTENT.into_response()
}
