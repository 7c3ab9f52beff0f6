//! A Kraud.Cloud API test server (axum on 127.0.0.1:0) shaped after the vendor's OpenAPI file
//! (`kraudcloud/cli` `api/openapi.yaml`) and the reference notes: bearer authentication with
//! `{"message"}` errors, the k8s-shaped namespace create/list/delete (`k8s.NamespaceList` with
//! `metadata.creationTimestamp` and `status.phase`), the compose launch
//! (multipart/form-data, parsed and checked here), the native pod and deployment lists, the
//! deployment restart, the Docker Engine container start/stop/restart, and the k8s-shaped pod
//! patch (`PATCH /api/v1/namespaces/{ns}/pods/{pod}`, JSON merge patch) as far as it sets or
//! removes the `kr.network.policy` label that opens the pod's address (the launch label sets
//! it first).
//!
//! Every exchange is checked against Kraud.Cloud's API description
//! (`tests/specs/kraud/openapi.yaml`, see `spec_check`): a request the document does not allow,
//! or an answer it does not allow, fails the test when the server is dropped.
//!
//! Pods move on each time their status is read: a launched pod shows `Creating...` once, then
//! `Starting...` for `boot_polls` reads, then `Running` with its overlay addresses; a stop shows
//! `Stopping...` for `stop_polls` reads, then `Stopped`. Faults (any status, with a message and
//! `Retry-After`) can be injected per method and path prefix.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::spec_check;

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// The only bearer token accepted.
    pub token: String,
    /// Status reads a pod shows `Starting...` for, after a launch, start or restart.
    pub boot_polls: u32,
    /// Status reads a pod shows `Stopping...` for after a stop.
    pub stop_polls: u32,
    /// Pod-list reads during which a freshly launched pod is not listed yet.
    pub appear_after: u32,
    /// Whether the `kr.res.snp` label is honoured (else the pod runs without SNP).
    pub honor_snp: bool,
    /// Makes every launch fail with this status and message.
    pub launch_error: Option<(u16, String)>,
    /// Answers launches with this streamed text log (the older, non-JSON answer) instead of
    /// `{"launch_id"}`; a log with an `Error: ` line launches nothing.
    pub launch_text: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: "test-token-kraud".into(),
            boot_polls: 2,
            stop_polls: 1,
            appear_after: 0,
            honor_snp: true,
            launch_error: None,
            launch_text: None,
        }
    }
}

/// One accepted launch, as received.
#[derive(Clone, Debug)]
pub struct Launch {
    /// `?namespace=`.
    pub namespace: String,
    /// The `docker-compose.yml` field, verbatim.
    pub compose: String,
    /// The `.env` field, verbatim.
    pub env: String,
    /// The service's labels after `.env` substitution.
    pub labels: Vec<String>,
    /// The service's image.
    pub image: String,
    /// The root volume's size after substitution.
    pub volume_size: String,
    /// The service's entrypoint list, unquoted.
    pub entrypoint: Vec<String>,
    /// The request's `Accept` header.
    pub accept: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Creating,
    Starting(u32),
    Running,
    Stopping(u32),
    Stopped,
    Fixed(String, bool),
}

#[derive(Clone, Debug)]
struct SimPod {
    id: String,
    aid: String,
    namespace: String,
    mem: String,
    zone: String,
    image: String,
    res: BTreeMap<String, String>,
    phase: Phase,
    hidden_reads: u32,
    number: u32,
    /// Whether the address is open (`kr.network.policy=open`).
    open: bool,
}

#[derive(Clone, Debug)]
struct SimNamespace {
    name: String,
    number: u32,
    created: String,
    /// Set once a deletion has begun (`deletionTimestamp`, phase `Terminating`).
    deleting: Option<String>,
    /// `metadata.labels`.
    labels: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug)]
struct SimDeployment {
    id: String,
    aid: String,
    namespace: String,
    pod_aid: String,
}

#[derive(Clone, Debug)]
struct Fault {
    method: Method,
    path_prefix: String,
    status: u16,
    message: String,
    retry_after: Option<u64>,
    remaining: u32,
}

#[derive(Default)]
struct Inner {
    opts: Options,
    namespaces: Vec<SimNamespace>,
    namespace_counter: u32,
    pods: Vec<SimPod>,
    deployments: Vec<SimDeployment>,
    launches: Vec<Launch>,
    faults: Vec<Fault>,
    requests: Vec<String>,
    authorizations: Vec<String>,
    counter: u32,
    patches: Vec<Patch>,
}

/// One accepted pod patch.
#[derive(Clone, Debug)]
pub struct Patch {
    /// Namespace of the path.
    pub namespace: String,
    /// Pod name of the path.
    pub pod: String,
    /// `Content-Type` sent.
    pub content_type: String,
    /// The body.
    pub body: Value,
}

type Shared = Arc<Mutex<Inner>>;

/// A running test server.
pub struct KraudApi {
    /// `http://127.0.0.1:{port}`.
    pub base_url: String,
    inner: Shared,
    task: tokio::task::JoinHandle<()>,
    violations: spec_check::Violations,
}

impl Drop for KraudApi {
    fn drop(&mut self) {
        self.task.abort();
        self.violations.assert_none();
    }
}

impl KraudApi {
    /// Starts a server with `opts`.
    pub async fn start(opts: Options) -> KraudApi {
        spec_check::ensure();
        let violations = spec_check::Violations::default();
        let spec = spec_check::Context {
            api: "kraud",
            violations: violations.clone(),
            skip: |_| false,
        };
        let inner: Shared = Arc::new(Mutex::new(Inner {
            opts,
            ..Inner::default()
        }));
        let app = Router::new()
            .route(
                "/api/v1/namespaces",
                post(create_namespace).get(list_namespaces),
            )
            .route(
                "/api/v1/namespaces/{name}",
                delete(delete_namespace).patch(patch_namespace),
            )
            .route(
                "/api/v1/namespaces/{namespace}/pods/{pod}",
                patch(patch_pod),
            )
            .route("/apis/kraudcloud.com/v1/launch", post(launch))
            .route("/apis/kraudcloud.com/v1/pods", get(list_pods))
            .route("/apis/kraudcloud.com/v1/pods/{q}", get(inspect_pod))
            .route("/apis/kraudcloud.com/v1/deployments", get(list_deployments))
            .route(
                "/apis/kr/v1/deployments/by-id/{id}/restart",
                post(restart_deployment),
            )
            .route("/v1.41/containers/{id}/{op}", post(container_op))
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(inner.clone(), gate))
            .layer(middleware::from_fn_with_state(spec, spec_check::layer))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        KraudApi {
            base_url: format!("http://{addr}"),
            inner,
            task,
            violations,
        }
    }

    /// What the API description check saw: the operations checked, and violations so far.
    pub fn spec(&self) -> &spec_check::Violations {
        &self.violations
    }

    /// The accepted token.
    pub fn token(&self) -> String {
        self.inner.lock().unwrap().opts.token.clone()
    }

    /// Launches received so far.
    pub fn launches(&self) -> Vec<Launch> {
        self.inner.lock().unwrap().launches.clone()
    }

    /// Requests received so far, as `METHOD /path?query` (authorized or not).
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// `Authorization` headers received so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.inner.lock().unwrap().authorizations.clone()
    }

    /// Namespaces that exist.
    pub fn namespaces(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .namespaces
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    /// Adds a namespace as if someone else had created it (no pod).
    pub fn add_namespace(&self, name: &str) {
        self.add_namespace_labelled(name, &[]);
    }

    /// Adds a namespace with `labels`, as if someone else had created it (no pod).
    pub fn add_namespace_labelled(&self, name: &str, labels: &[(&str, &str)]) {
        let mut st = self.inner.lock().unwrap();
        let mut ns = new_namespace(&mut st, name);
        for (k, v) in labels {
            ns.labels.insert(k.to_string(), json!(v));
        }
        st.namespaces.push(ns);
    }

    /// The labels of a namespace.
    pub fn namespace_labels(&self, name: &str) -> Option<serde_json::Map<String, Value>> {
        let st = self.inner.lock().unwrap();
        st.namespaces
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.labels.clone())
    }

    /// Adds a running pod (and its deployment) to an existing namespace, as if someone else
    /// had launched it.
    pub fn add_pod(&self, namespace: &str) {
        let mut st = self.inner.lock().unwrap();
        assert!(st.namespaces.iter().any(|n| n.name == namespace));
        st.counter += 1;
        let n = st.counter;
        let pod_aid = format!("p{n:05}");
        st.pods.push(SimPod {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            aid: pod_aid.clone(),
            namespace: namespace.into(),
            mem: "2G".into(),
            zone: "uca".into(),
            image: "nginx/nginx:latest".into(),
            res: BTreeMap::new(),
            phase: Phase::Running,
            hidden_reads: 0,
            number: n,
            open: true,
        });
        st.deployments.push(SimDeployment {
            id: format!("10000000-0000-4000-8000-{n:012}"),
            aid: format!("d{n:05}"),
            namespace: namespace.into(),
            pod_aid,
        });
    }

    /// Starts the deletion of a namespace without finishing it: it stays listed with
    /// `metadata.deletionTimestamp` and phase `Terminating`.
    pub fn set_terminating(&self, namespace: &str) {
        let mut st = self.inner.lock().unwrap();
        for ns in st.namespaces.iter_mut().filter(|n| n.name == namespace) {
            ns.deleting = Some("2025-01-02T00:00:00Z".into());
        }
    }

    /// Whether the address of the pod in `namespace` is open (`None`: no pod).
    pub fn address_open(&self, namespace: &str) -> Option<bool> {
        let st = self.inner.lock().unwrap();
        st.pods
            .iter()
            .find(|p| p.namespace == namespace)
            .map(|p| p.open)
    }

    /// Pod patches accepted so far.
    pub fn patches(&self) -> Vec<Patch> {
        self.inner.lock().unwrap().patches.clone()
    }

    /// Number of pods that exist.
    pub fn pod_count(&self) -> usize {
        self.inner.lock().unwrap().pods.len()
    }

    /// Changes the options (e.g. `honor_snp`, `launch_error`) for later requests.
    pub fn set_options(&self, change: impl FnOnce(&mut Options)) {
        change(&mut self.inner.lock().unwrap().opts);
    }

    /// Makes the pod of `namespace` show `display` (with `healthy`) from now on.
    pub fn set_display(&self, namespace: &str, display: &str, healthy: bool) {
        let mut s = self.inner.lock().unwrap();
        for pod in s.pods.iter_mut().filter(|p| p.namespace == namespace) {
            pod.phase = Phase::Fixed(display.into(), healthy);
        }
    }

    /// Forgets the deployments of `namespace` (its pods stay), as if the API did not list them.
    pub fn forget_deployments(&self, namespace: &str) {
        self.inner
            .lock()
            .unwrap()
            .deployments
            .retain(|d| d.namespace != namespace);
    }

    /// Makes already launched pods visible in the list right away.
    pub fn reveal_pods(&self) {
        for pod in self.inner.lock().unwrap().pods.iter_mut() {
            pod.hidden_reads = 0;
        }
    }

    /// Answers the next `times` requests whose method is `method` and whose path starts with
    /// `path_prefix` with `status` and `{"message": message}` (and `Retry-After` if given).
    pub fn inject(
        &self,
        method: Method,
        path_prefix: &str,
        status: u16,
        message: &str,
        retry_after: Option<u64>,
        times: u32,
    ) {
        self.inner.lock().unwrap().faults.push(Fault {
            method,
            path_prefix: path_prefix.into(),
            status,
            message: message.into(),
            retry_after,
            remaining: times,
        });
    }
}

fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap();
    (status, Json(json!({ "message": message.into() }))).into_response()
}

/// Records the request, checks the bearer token, and plays injected faults.
async fn gate(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let fault = {
        let mut st = s.lock().unwrap();
        let line = match req.uri().query() {
            Some(q) => format!("{} {}?{}", req.method(), req.uri().path(), q),
            None => format!("{} {}", req.method(), req.uri().path()),
        };
        st.requests.push(line);
        let auth = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        st.authorizations.push(auth.clone());
        if auth != format!("Bearer {}", st.opts.token) {
            return error(401, "unauthorized: invalid or expired access token");
        }
        let path = req.uri().path().to_string();
        let method = req.method().clone();
        let found = st
            .faults
            .iter_mut()
            .find(|f| f.remaining > 0 && f.method == method && path.starts_with(&f.path_prefix));
        found.map(|f| {
            f.remaining -= 1;
            f.clone()
        })
    };
    if let Some(f) = fault {
        let mut resp = error(f.status, f.message);
        if let Some(secs) = f.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        return resp;
    }
    next.run(req).await
}

async fn not_found() -> Response {
    error(404, "page not found")
}

fn valid_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

async fn create_namespace(State(s): State<Shared>, body: Bytes) -> Response {
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
async fn patch_namespace(
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

fn new_namespace(st: &mut Inner, name: &str) -> SimNamespace {
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
async fn list_namespaces(State(s): State<Shared>) -> Response {
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

async fn delete_namespace(
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

/// Splits a multipart/form-data body into (field name, content) pairs.
fn multipart_fields(content_type: &str, body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .ok_or("multipart body without boundary")?;
    if !content_type.trim_start().starts_with("multipart/form-data") {
        return Err(format!("expected multipart/form-data, got {content_type}"));
    }
    let body = String::from_utf8(body.to_vec()).map_err(|_| "body is not UTF-8")?;
    let delimiter = format!("--{boundary}");
    let mut fields = Vec::new();
    let mut parts = body.split(&delimiter);
    parts.next(); // preamble
    let mut closed = false;
    for part in parts {
        if part.starts_with("--") {
            closed = true;
            break;
        }
        let part = part.strip_prefix("\r\n").ok_or("part without CRLF")?;
        let (head, content) = part.split_once("\r\n\r\n").ok_or("part without headers")?;
        let content = content
            .strip_suffix("\r\n")
            .ok_or("part without final CRLF")?;
        let disposition = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .ok_or("part without Content-Disposition")?;
        let name = disposition
            .split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix("name="))
            .map(|n| n.trim_matches('"').to_string())
            .ok_or("part without name")?;
        fields.push((name, content.to_string()));
    }
    if !closed {
        return Err("multipart body without closing delimiter".into());
    }
    Ok(fields)
}

/// Compose-style interpolation: `${VAR}` from the .env, `$$` is a literal `$`.
fn interpolate(text: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let end = r.find('}').ok_or("unterminated ${")?;
            let var = &r[..end];
            let value = env
                .get(var)
                .ok_or_else(|| format!("variable {var} is not set"))?;
            out.push_str(value);
            rest = &r[end + 1..];
        } else {
            return Err(format!(
                "bare $ in template near '{}'",
                &after[..after.len().min(20)]
            ));
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.starts_with('"') {
        serde_json::from_str::<String>(v).unwrap_or_else(|_| v.to_string())
    } else {
        v.trim_matches('\'').to_string()
    }
}

/// The items of the block list under the first `key:` line (e.g. `labels:`).
fn list_under(yaml: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim() == format!("{key}:")) else {
        return Vec::new();
    };
    let indent = lines[start].len() - lines[start].trim_start().len();
    let mut items = Vec::new();
    for line in &lines[start + 1..] {
        let this = line.len() - line.trim_start().len();
        let t = line.trim();
        if this <= indent && !t.is_empty() {
            break;
        }
        if let Some(item) = t.strip_prefix("- ") {
            items.push(unquote(item));
        }
    }
    items
}

/// The value of the first `key: value` line.
fn value_of(yaml: &str, key: &str) -> Option<String> {
    yaml.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{key}:"))
            .map(unquote)
            .filter(|v| !v.is_empty())
    })
}

async fn launch(
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

/// The pod as the API shows it; reading its status moves it on.
fn pod_json(pod: &mut SimPod, with_status: bool, opts: &Options) -> Value {
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
async fn patch_pod(
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

async fn list_pods(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
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

async fn inspect_pod(
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

async fn list_deployments(State(s): State<Shared>) -> Response {
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

async fn restart_deployment(State(s): State<Shared>, Path(id): Path<String>) -> Response {
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

async fn container_op(State(s): State<Shared>, Path((id, op)): Path<(String, String)>) -> Response {
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
