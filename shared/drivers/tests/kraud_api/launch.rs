//! The compose launch (`POST /apis/kraudcloud.com/v1/launch`): parsed and checked, then a
//! namespace, pod and deployment made (or the launch log answered).

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::compose::{interpolate, list_under, multipart_fields, value_of};
use super::gate::error;
use super::state::{Launch, Phase, Shared, SimDeployment, SimPod};

pub(super) async fn launch(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let Some(namespace) = q.get("namespace").cloned() else {
        return error(400, "namespace is required");
    };
    let fields = match multipart_fields(&content_type, &body) {
        Ok(f) => f,
        Err(e) => return error(400, e),
    };
    let Some(compose) = fields
        .iter()
        .find(|(n, _)| n == "docker-compose.yml" || n == "docker-compose.yaml")
        .map(|(_, c)| c.clone())
    else {
        return error(400, "missing form field docker-compose.yml");
    };
    let env_text = fields
        .iter()
        .find(|(n, _)| n == ".env")
        .map(|(_, c)| c.clone())
        .unwrap_or_default();
    let env: HashMap<String, String> = env_text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let expanded = match interpolate(&compose, &env) {
        Ok(e) => e,
        Err(e) => return error(400, format!("compose: {e}")),
    };

    let mut st = s.lock().unwrap();
    if let Some((status, message)) = st.opts.launch_error.clone() {
        return error(status, message);
    }
    if !st.namespaces.iter().any(|n| n.name == namespace) {
        return error(404, format!("namespace {namespace} not found"));
    }
    let labels = list_under(&expanded, "labels");
    let label = |k: &str| {
        labels
            .iter()
            .find_map(|l| l.strip_prefix(&format!("{k}=")).map(str::to_string))
    };
    let mem = label("kr.res.mem").unwrap_or_default();
    let mem_ok = mem.len() > 1
        && mem[..mem.len() - 1].chars().all(|c| c.is_ascii_digit())
        && (mem.ends_with('G') || mem.ends_with('T'));
    if !mem_ok {
        return error(400, format!("invalid kr.res.mem '{mem}'"));
    }
    let zone = label("kr.zone").unwrap_or_default();
    if !["uca", "yca", "lmu"].contains(&zone.as_str()) {
        return error(400, format!("unknown zone '{zone}'"));
    }
    let open = match label("kr.network.policy").as_deref() {
        None => false,
        Some("open") => true,
        Some(other) => return error(400, format!("unknown kr.network.policy '{other}'")),
    };
    let image = value_of(&expanded, "image").unwrap_or_default();
    if image.is_empty() || !image.contains('/') {
        return error(400, format!("invalid image '{image}'"));
    }
    let volume_size = value_of(&expanded, "size").unwrap_or_default();
    if !volume_size.ends_with('G') || volume_size.len() < 2 {
        return error(400, format!("invalid volume size '{volume_size}'"));
    }
    let entrypoint = list_under(&expanded, "entrypoint");
    let text = st.opts.launch_text.clone();
    if let Some(text) = text.as_ref().filter(|t| t.contains("Error: ")) {
        return ([(header::CONTENT_TYPE, "text/plain")], text.clone()).into_response();
    }

    let mut res = BTreeMap::new();
    for l in &labels {
        if let Some((k, v)) = l.strip_prefix("kr.res.").and_then(|r| r.split_once('=')) {
            res.insert(k.to_string(), v.to_string());
        }
    }
    if !st.opts.honor_snp {
        res.remove("snp");
    }
    st.counter += 1;
    let n = st.counter;
    let pod_aid = format!("p{n:05}");
    let pod = SimPod {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        aid: pod_aid.clone(),
        namespace: namespace.clone(),
        mem: mem.clone(),
        zone: zone.clone(),
        image: image.clone(),
        res,
        phase: Phase::Creating,
        hidden_reads: st.opts.appear_after,
        number: n,
        open,
    };
    st.pods.push(pod);
    st.deployments.push(SimDeployment {
        id: format!("10000000-0000-4000-8000-{n:012}"),
        aid: format!("d{n:05}"),
        namespace: namespace.clone(),
        pod_aid,
    });
    st.launches.push(Launch {
        namespace,
        compose,
        env: env_text,
        labels,
        image,
        volume_size,
        entrypoint,
        accept: accept.clone(),
    });
    if let Some(text) = text {
        ([(header::CONTENT_TYPE, "text/plain")], text).into_response()
    } else if accept.contains("application/json") {
        Json(json!({ "launch_id": format!("20000000-0000-4000-8000-{n:012}") })).into_response()
    } else {
        "OK. Launch in progress".into_response()
    }
}
