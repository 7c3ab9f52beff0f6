//! The pods: their JSON (reading a pod's status moves it on), the native list and inspect, and
//! the k8s-shaped pod patch.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::gate::error;
use super::state::{Options, Patch, Phase, Shared, SimPod};

/// The pod as the API shows it; reading its status moves it on.
pub(super) fn pod_json(pod: &mut SimPod, with_status: bool, opts: &Options) -> Value {
    let (display, healthy) = match &pod.phase {
        Phase::Creating => ("Creating...".to_string(), false),
        Phase::Starting(_) => ("Starting...".to_string(), false),
        Phase::Running => ("Running".to_string(), true),
        Phase::Stopping(_) => ("Stopping...".to_string(), false),
        Phase::Stopped => ("Stopped".to_string(), false),
        Phase::Fixed(d, h) => (d.clone(), *h),
    };
    let running = pod.phase == Phase::Running;
    let overlays = if running {
        json!([{
            "AID": format!("o{:05}", pod.number),
            "IP4": format!("10.0.0.{}", pod.number % 250 + 1),
            "IP6": format!("2001:db8:4b::{:x}", pod.number),
        }])
    } else {
        json!([])
    };
    let mut v = json!({
        "ID": pod.id,
        "AID": pod.aid,
        "Name": "vm",
        "Namespace": pod.namespace,
        "Architecture": "amd64",
        "Cpu": pod.mem.trim_end_matches(['G', 'T']).to_string() + "GHz",
        "Mem": pod.mem,
        "Zone": pod.zone,
        "RestartPolicy": "always",
        "DeleteOnDeschedule": false,
        "Replicas": 1,
        "Res": pod.res,
        "Containers": [{
            "AID": format!("c{:05}", pod.number),
            "Name": "vm",
            "ImageName": pod.image,
            "Entrypoint": [],
            "Command": [],
            "Env": {},
            "Tty": false,
            "VolumeMounts": [{ "AID": format!("v{:05}", pod.number), "MountPath": "/" }],
        }],
        "Volumes": [],
        "Overlays": overlays,
    });
    if with_status {
        v["Status"] = json!({ "Display": display, "Healthy": healthy });
        pod.phase = match pod.phase.clone() {
            Phase::Creating if opts.boot_polls == 0 => Phase::Running,
            Phase::Creating => Phase::Starting(opts.boot_polls),
            Phase::Starting(n) if n <= 1 => Phase::Running,
            Phase::Starting(n) => Phase::Starting(n - 1),
            Phase::Stopping(n) if n <= 1 => Phase::Stopped,
            Phase::Stopping(n) => Phase::Stopping(n - 1),
            other => other,
        };
    }
    v
}

/// `PATCH /api/v1/namespaces/{namespace}/pods/{pod}`: a JSON merge patch (or strategic merge
/// patch) of a `k8s.Pod`; only `metadata.labels` `kr.network.policy` (`"open"` or `null`) is
/// understood, anything else in it is refused. Answers the pod in its k8s shape.
pub(super) async fn patch_pod(
    State(s): State<Shared>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !matches!(
        content_type.as_str(),
        "application/merge-patch+json" | "application/strategic-merge-patch+json"
    ) {
        return error(415, format!("unsupported patch type '{content_type}'"));
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&body) else {
        return error(400, "invalid JSON");
    };
    let Some(labels) = patch.pointer("/metadata/labels").and_then(Value::as_object) else {
        return error(400, "only metadata.labels can be patched");
    };
    if patch.as_object().map(|o| o.len()) != Some(1)
        || patch["metadata"].as_object().map(|o| o.len()) != Some(1)
        || labels.keys().any(|k| k != "kr.network.policy")
    {
        return error(400, "only the kr.network.policy label can be patched");
    }
    let open = match &labels["kr.network.policy"] {
        Value::Null => false,
        Value::String(v) if v == "open" => true,
        other => return error(400, format!("unknown kr.network.policy {other}")),
    };
    let mut st = s.lock().unwrap();
    let Some(pod) = st
        .pods
        .iter_mut()
        .find(|p| p.namespace == namespace && name == "vm")
    else {
        return error(
            404,
            format!("pod {name} not found in namespace {namespace}"),
        );
    };
    pod.open = open;
    st.patches.push(Patch {
        namespace: namespace.clone(),
        pod: name.clone(),
        content_type,
        body: patch,
    });
    let mut labels = json!({});
    if open {
        labels["kr.network.policy"] = json!("open");
    }
    Json(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace, "labels": labels },
        "spec": { "containers": [{ "name": "vm" }] },
    }))
    .into_response()
}

pub(super) async fn list_pods(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let with_status = q.get("status").map(String::as_str) == Some("true");
    let mut st = s.lock().unwrap();
    let opts = st.opts.clone();
    let mut items = Vec::new();
    for pod in st.pods.iter_mut() {
        if pod.hidden_reads > 0 {
            pod.hidden_reads -= 1;
            continue;
        }
        items.push(pod_json(pod, with_status, &opts));
    }
    Json(json!({ "items": items })).into_response()
}

pub(super) async fn inspect_pod(
    State(s): State<Shared>,
    Path(q): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let with_status = query.get("status").map(String::as_str) == Some("true");
    let mut st = s.lock().unwrap();
    let opts = st.opts.clone();
    match st
        .pods
        .iter_mut()
        .find(|p| (p.aid == q || p.id == q) && p.hidden_reads == 0)
    {
        Some(pod) => Json(pod_json(pod, with_status, &opts)).into_response(),
        None => error(404, format!("pod {q} not found")),
    }
}
