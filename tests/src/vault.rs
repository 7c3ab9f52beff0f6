//! A Vault test server: the parts of HashiCorp Vault's HTTP API the service uses, written
//! from Vault's documentation (no Vault server can be installed on the test machines).
//!
//! - KV v2 (<https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2>):
//!   `GET|POST|PUT|DELETE /v1/{mount}/data/{path}` (read with `?version=`, write with
//!   `options.cas`, soft-delete the latest version) and `GET|DELETE /v1/{mount}/metadata/{path}`
//!   (all versions), `LIST /v1/{mount}/metadata/{folder}/` (or `GET ...?list=true`: the keys
//!   directly below, folders ending in `/`, 404 when empty), with Vault's response envelopes (`request_id`, `data.data`,
//!   `data.metadata.version`, ...).
//! - Errors as Vault sends them: `{"errors": [...]}` with 403 "permission denied" for a missing
//!   or unknown `X-Vault-Token`, 404 `{"errors": []}` for an absent secret, 400 for a failed
//!   check-and-set, 503 "Vault is sealed".
//! - AWS auth (<https://developer.hashicorp.com/vault/api-docs/auth/aws#login>):
//!   `POST /v1/auth/{mount}/login` with `iam_http_request_method`, base64 `iam_request_url`,
//!   `iam_request_headers` and `iam_request_body`; the request's shape is checked (a signed
//!   `sts:GetCallerIdentity`), the signature is not (that needs AWS), and a token is issued.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// One stored version.
#[derive(Clone, Debug)]
struct Version {
    data: Value,
    created: String,
    deleted: bool,
}

#[derive(Default)]
struct Inner {
    tokens: HashSet<String>,
    mount: String,
    aws_mount: String,
    /// path -> versions (index 0 is version 1).
    secrets: BTreeMap<String, Vec<Version>>,
    /// path -> `custom_metadata` (as the last metadata write set it).
    custom: BTreeMap<String, Value>,
    /// Answer metadata writes 403 (a policy without them).
    refuse_metadata_writes: bool,
    sealed: bool,
    /// `METHOD path` of every request, in order.
    requests: Vec<String>,
    /// Bodies of AWS logins, decoded.
    logins: Vec<Value>,
    lease_seconds: u64,
}

/// A running Vault test server.
pub struct VaultServer {
    /// `http://127.0.0.1:port`.
    pub address: String,
    /// The root token it accepts.
    pub token: String,
    inner: Arc<Mutex<Inner>>,
    shutdown: Option<oneshot::Sender<()>>,
}

fn now() -> String {
    vmapi_models::Timestamp::now().to_string()
}

fn envelope(data: Value) -> Value {
    json!({
        "request_id": uuid::Uuid::new_v4().to_string(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "mount_type": "kv"
    })
}

fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, Json(json!({ "errors": messages }))).into_response()
}

fn version_metadata(n: usize, v: &Version) -> Value {
    json!({
        "created_time": v.created,
        "custom_metadata": null,
        "deletion_time": if v.deleted { v.created.clone() } else { String::new() },
        "destroyed": false,
        "version": n
    })
}

impl VaultServer {
    /// Starts a server with KV v2 at `mount` and AWS auth at `auth/aws`.
    pub async fn start(mount: &str) -> VaultServer {
        let token = format!("hvs.root-{}", uuid::Uuid::new_v4().simple());
        let inner = Arc::new(Mutex::new(Inner {
            tokens: HashSet::from([token.clone()]),
            mount: mount.to_string(),
            aws_mount: "aws".into(),
            lease_seconds: 3600,
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/auth/{mount}/login", post(aws_login))
            .route("/v1/{mount}/{kind}/{*path}", any(kv))
            .route("/v1/{mount}/{kind}/", any(kv_root))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("vault test server runs");
        });
        VaultServer {
            address,
            token,
            inner,
            shutdown: Some(tx),
        }
    }

    /// Seals or unseals it (sealed: every call answers 503).
    pub fn set_sealed(&self, sealed: bool) {
        self.inner.lock().unwrap().sealed = sealed;
    }

    /// Revokes every token issued by logins (the root token stays).
    pub fn revoke_issued_tokens(&self) {
        let root = self.token.clone();
        self.inner.lock().unwrap().tokens.retain(|t| *t == root);
    }

    /// Lease of issued tokens.
    pub fn set_lease_seconds(&self, secs: u64) {
        self.inner.lock().unwrap().lease_seconds = secs;
    }

    /// The latest live version's data at `path`, if any.
    pub fn latest(&self, path: &str) -> Option<Value> {
        let inner = self.inner.lock().unwrap();
        inner
            .secrets
            .get(path)
            .and_then(|v| v.last())
            .filter(|v| !v.deleted)
            .map(|v| v.data.clone())
    }

    /// Paths with metadata (any versions).
    pub fn paths(&self) -> Vec<String> {
        self.inner.lock().unwrap().secrets.keys().cloned().collect()
    }

    /// Answers metadata writes 403 (as a policy without `metadata/` write would), or not.
    pub fn refuse_metadata_writes(&self, refuse: bool) {
        self.inner.lock().unwrap().refuse_metadata_writes = refuse;
    }

    /// The `custom_metadata` of a path, as last written.
    pub fn custom_metadata(&self, path: &str) -> Option<Value> {
        self.inner.lock().unwrap().custom.get(path).cloned()
    }

    /// Stores `data` at `path` with no metadata of its own, as a writer from before deployment
    /// ids did.
    pub fn insert_unmarked(&self, path: &str, data: Value) {
        let version = Version {
            data,
            created: now(),
            deleted: false,
        };
        let mut inner = self.inner.lock().unwrap();
        inner
            .secrets
            .entry(path.to_string())
            .or_default()
            .push(version);
    }

    /// Every request seen, as `METHOD path`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// Decoded AWS login requests.
    pub fn logins(&self) -> Vec<Value> {
        self.inner.lock().unwrap().logins.clone()
    }
}

impl Drop for VaultServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn authorized(inner: &Inner, headers: &HeaderMap) -> bool {
    let token = headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        });
    token.is_some_and(|t| inner.tokens.contains(t))
}

/// `LIST /v1/{mount}/metadata/` (the mount's top level).
async fn kv_root(
    state: State<Arc<Mutex<Inner>>>,
    method: Method,
    Path((mount, kind)): Path<(String, String)>,
    query: Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    kv(
        state,
        method,
        Path((mount, kind, String::new())),
        query,
        headers,
        body,
    )
    .await
}

async fn kv(
    State(state): State<Arc<Mutex<Inner>>>,
    method: Method,
    Path((mount, kind, path)): Path<(String, String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut inner = state.lock().unwrap();
    inner
        .requests
        .push(format!("{method} /v1/{mount}/{kind}/{path}"));
    if inner.sealed {
        return errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    if !authorized(&inner, &headers) {
        return errors(StatusCode::FORBIDDEN, &["permission denied"]);
    }
    if mount != inner.mount {
        let route =
            format!("no handler for route \"{mount}/{kind}/{path}\". route entry not found.");
        return errors(StatusCode::NOT_FOUND, &[route.as_str()]);
    }
    let list = method.as_str() == "LIST"
        || (method == Method::GET && query.get("list").map(String::as_str) == Some("true"));
    if kind == "metadata" && list {
        // Keys directly below the folder; sub-folders end in `/`. An empty folder is a 404.
        let prefix = if path.is_empty() || path.ends_with('/') {
            path.clone()
        } else {
            format!("{path}/")
        };
        let mut keys: Vec<String> = inner
            .secrets
            .keys()
            .filter_map(|k| k.strip_prefix(prefix.as_str()))
            .map(|rest| match rest.split_once('/') {
                Some((dir, _)) => format!("{dir}/"),
                None => rest.to_string(),
            })
            .collect();
        keys.dedup();
        if keys.is_empty() {
            return errors(StatusCode::NOT_FOUND, &[]);
        }
        return (StatusCode::OK, Json(envelope(json!({ "keys": keys })))).into_response();
    }
    match (kind.as_str(), method.as_str()) {
        ("data", "GET") => {
            let Some(versions) = inner.secrets.get(&path) else {
                return errors(StatusCode::NOT_FOUND, &[]);
            };
            let wanted: usize = match query.get("version").map(|v| v.parse::<usize>()) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => return errors(StatusCode::BAD_REQUEST, &["invalid version"]),
            };
            let n = if wanted == 0 { versions.len() } else { wanted };
            match versions.get(n.wrapping_sub(1)) {
                Some(v) if !v.deleted => (
                    StatusCode::OK,
                    Json(envelope(
                        json!({ "data": v.data, "metadata": version_metadata(n, v) }),
                    )),
                )
                    .into_response(),
                // Vault answers 404 with the metadata of a deleted version and no data.
                Some(v) => (
                    StatusCode::NOT_FOUND,
                    Json(envelope(
                        json!({ "data": null, "metadata": version_metadata(n, v) }),
                    )),
                )
                    .into_response(),
                None => errors(StatusCode::NOT_FOUND, &[]),
            }
        }
        ("data", "POST" | "PUT") => {
            let Ok(req) = serde_json::from_slice::<Value>(&body) else {
                return errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"]);
            };
            let Some(data) = req.get("data").filter(|d| d.is_object()) else {
                return errors(StatusCode::BAD_REQUEST, &["no data provided"]);
            };
            let current = inner.secrets.get(&path).map_or(0, Vec::len);
            if let Some(cas) = req.pointer("/options/cas").and_then(Value::as_u64) {
                if cas as usize != current {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &["check-and-set parameter did not match the current version"],
                    );
                }
            }
            let version = Version {
                data: data.clone(),
                created: now(),
                deleted: false,
            };
            let meta = version_metadata(current + 1, &version);
            inner.secrets.entry(path).or_default().push(version);
            (StatusCode::OK, Json(envelope(meta))).into_response()
        }
        ("data", "DELETE") => {
            if let Some(v) = inner.secrets.get_mut(&path).and_then(|v| v.last_mut()) {
                v.deleted = true;
            }
            StatusCode::NO_CONTENT.into_response()
        }
        ("metadata", "GET") => {
            let Some(versions) = inner.secrets.get(&path) else {
                return errors(StatusCode::NOT_FOUND, &[]);
            };
            let map: serde_json::Map<String, Value> = versions
                .iter()
                .enumerate()
                .map(|(i, v)| ((i + 1).to_string(), version_metadata(i + 1, v)))
                .collect();
            let first = versions
                .first()
                .map(|v| v.created.clone())
                .unwrap_or_default();
            let last = versions
                .last()
                .map(|v| v.created.clone())
                .unwrap_or_default();
            (
                StatusCode::OK,
                Json(envelope(json!({
                    "cas_required": false,
                    "created_time": first,
                    "current_version": versions.len(),
                    "custom_metadata": inner.custom.get(&path).cloned().unwrap_or(Value::Null),
                    "delete_version_after": "0s",
                    "max_versions": 0,
                    "oldest_version": 0,
                    "updated_time": last,
                    "versions": map
                }))),
            )
                .into_response()
        }
        ("metadata", "DELETE") => {
            inner.secrets.remove(&path);
            inner.custom.remove(&path);
            StatusCode::NO_CONTENT.into_response()
        }
        // Create/Update Metadata: `custom_metadata` (string values) replaces the whole map.
        ("metadata", "POST") | ("metadata", "PUT") => {
            if inner.refuse_metadata_writes {
                return errors(StatusCode::FORBIDDEN, &["permission denied"]);
            }
            let req: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => return errors(StatusCode::BAD_REQUEST, &["invalid JSON"]),
            };
            match req.get("custom_metadata") {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) if m.values().all(Value::is_string) => {
                    inner.custom.insert(path, Value::Object(m.clone()));
                }
                Some(_) => {
                    return errors(
                        StatusCode::BAD_REQUEST,
                        &["custom_metadata must map strings to strings"],
                    )
                }
            }
            StatusCode::NO_CONTENT.into_response()
        }
        _ => errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"]),
    }
}

fn decode(field: &Value) -> Option<String> {
    field
        .as_str()
        .and_then(|s| B64.decode(s).ok())
        .and_then(|b| String::from_utf8(b).ok())
}

async fn aws_login(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(mount): Path<String>,
    body: Bytes,
) -> Response {
    let mut inner = state.lock().unwrap();
    inner.requests.push(format!("POST /v1/auth/{mount}/login"));
    if inner.sealed {
        return errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]);
    }
    if mount != inner.aws_mount {
        return errors(StatusCode::FORBIDDEN, &["permission denied"]);
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return errors(StatusCode::BAD_REQUEST, &["failed to parse JSON input"]);
    };
    let method = req["iam_http_request_method"].as_str().unwrap_or("");
    let url = decode(&req["iam_request_url"]).unwrap_or_default();
    let sts_body = decode(&req["iam_request_body"]).unwrap_or_default();
    let headers: Value = decode(&req["iam_request_headers"])
        .and_then(|h| serde_json::from_str(&h).ok())
        .unwrap_or(Value::Null);
    let header = |name: &str| -> Option<String> {
        headers.as_object()?.iter().find_map(|(k, v)| {
            (k.eq_ignore_ascii_case(name)).then(|| v[0].as_str().unwrap_or("").to_string())
        })
    };
    let signed =
        header("authorization").is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 Credential="));
    let well_formed = method == "POST"
        && url.starts_with("https://sts.")
        && url.ends_with(".amazonaws.com/")
        && sts_body.contains("Action=GetCallerIdentity")
        && signed
        && header("x-amz-date").is_some();
    if !well_formed {
        return errors(
            StatusCode::BAD_REQUEST,
            &["error making upstream request: invalid or unsigned sts:GetCallerIdentity request"],
        );
    }
    inner.logins.push(json!({
        "method": method, "url": url, "body": sts_body, "headers": headers, "role": req["role"]
    }));
    let token = format!("hvs.aws-{}", uuid::Uuid::new_v4().simple());
    inner.tokens.insert(token.clone());
    let lease = inner.lease_seconds;
    (
        StatusCode::OK,
        Json(json!({
            "request_id": uuid::Uuid::new_v4().to_string(),
            "lease_id": "",
            "renewable": false,
            "lease_duration": 0,
            "data": null,
            "wrap_info": null,
            "warnings": null,
            "auth": {
                "client_token": token,
                "accessor": uuid::Uuid::new_v4().to_string(),
                "policies": ["default", "vm-api"],
                "token_policies": ["default", "vm-api"],
                "metadata": { "role": req["role"].as_str().unwrap_or("vm-api") },
                "lease_duration": lease,
                "renewable": true,
                "entity_id": uuid::Uuid::new_v4().to_string(),
                "token_type": "service",
                "orphan": true
            }
        })),
    )
        .into_response()
}
