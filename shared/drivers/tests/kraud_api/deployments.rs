//! Deployments (list, restart) and the Docker Engine container start/stop/restart.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::gate::error;
use super::pods::pod_json;
use super::state::{Phase, Shared};

pub(super) async fn list_deployments(State(s): State<Shared>) -> Response {
    let mut st = s.lock().unwrap();
    let opts = st.opts.clone();
    let deployments = st.deployments.clone();
    let mut items = Vec::new();
    for d in deployments {
        let pods: Vec<Value> = st
            .pods
            .iter_mut()
            .filter(|p| p.aid == d.pod_aid)
            .map(|p| pod_json(p, false, &opts))
            .collect();
        items.push(json!({
            "ID": d.id,
            "AID": d.aid,
            "Name": "vm",
            "Namespace": d.namespace,
            "App": { "ID": "app", "Config": "" },
            "Pods": pods,
        }));
    }
    Json(json!({ "items": items })).into_response()
}

pub(super) async fn restart_deployment(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Response {
    let mut st = s.lock().unwrap();
    let boot = st.opts.boot_polls;
    let Some(d) = st.deployments.iter().find(|d| d.id == id).cloned() else {
        return error(404, format!("deployment {id} not found"));
    };
    for pod in st.pods.iter_mut().filter(|p| p.aid == d.pod_aid) {
        pod.phase = if boot == 0 {
            Phase::Running
        } else {
            Phase::Starting(boot)
        };
    }
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn container_op(
    State(s): State<Shared>,
    Path((id, op)): Path<(String, String)>,
) -> Response {
    let mut st = s.lock().unwrap();
    let (boot, stop) = (st.opts.boot_polls, st.opts.stop_polls);
    let Some(pod) = st.pods.iter_mut().find(|p| p.aid == id || p.id == id) else {
        return error(404, format!("No such container: {id}"));
    };
    let starting = if boot == 0 {
        Phase::Running
    } else {
        Phase::Starting(boot)
    };
    match op.as_str() {
        "start" => match pod.phase {
            Phase::Creating | Phase::Starting(_) | Phase::Running => {
                StatusCode::NOT_MODIFIED.into_response()
            }
            _ => {
                pod.phase = starting;
                StatusCode::NO_CONTENT.into_response()
            }
        },
        "stop" => match pod.phase {
            Phase::Stopping(_) | Phase::Stopped => StatusCode::NOT_MODIFIED.into_response(),
            _ => {
                pod.phase = if stop == 0 {
                    Phase::Stopped
                } else {
                    Phase::Stopping(stop)
                };
                StatusCode::NO_CONTENT.into_response()
            }
        },
        "restart" => {
            pod.phase = starting;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(404, "page not found"),
    }
}
