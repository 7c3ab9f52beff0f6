//! Vault's AWS IAM login in front of OpenBao. OpenBao ships without the `aws` auth method (it is
//! an external plugin, `openbao-plugin-auth-aws`, built with Go modules this machine cannot
//! download), so this proxy answers `POST /v1/auth/{mount}/login` itself and forwards every
//! other request to OpenBao unchanged.
//!
//! A login is checked the way the `aws` method reads it
//! (<https://openbao.org/api-docs/auth/aws/#login>): `iam_http_request_method`, base64
//! `iam_request_url`, `iam_request_headers` (JSON, name to values) and `iam_request_body` must
//! make a SigV4-signed `sts:GetCallerIdentity`. Like the method with its `sts_endpoint` set, the
//! proxy then sends that request, as decoded, to STS, here moto's (`AWS_ENDPOINT_URL_EC2`, the
//! same moto server), and records the caller's ARN from the answer; moto does not verify the
//! signature (that needs AWS). The token it answers with is a real OpenBao token with a policy
//! over the test's mount and the given lease, so renewal, expiry and revocation are OpenBao's own.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::OpenBao;

struct Inner {
    bao_address: String,
    root_token: String,
    policy: String,
    lease: String,
    /// Decoded login requests.
    logins: Vec<Value>,
    /// Tokens issued by logins.
    issued: Vec<String>,
}

/// The login proxy; its address is what the service under test uses as `VAULT_ADDR`.
pub struct AwsLoginProxy {
    /// `http://127.0.0.1:port`.
    pub address: String,
    inner: Arc<Mutex<Inner>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl AwsLoginProxy {
    /// Starts the proxy in front of `bao`; logins get tokens over `bao`'s mount that live
    /// `lease` (e.g. `"1h"`).
    pub async fn start(bao: &OpenBao, lease: &str) -> AwsLoginProxy {
        let policy = format!("{}-aws-login", bao.mount);
        let hcl = format!(
            "path \"{m}/*\" {{ capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"] }}",
            m = bao.mount
        );
        bao.ok(
            Method::PUT,
            &format!("sys/policies/acl/{policy}"),
            json!({ "policy": hcl }),
        )
        .await;
        let inner = Arc::new(Mutex::new(Inner {
            bao_address: bao.address.clone(),
            root_token: bao.token.clone(),
            policy,
            lease: lease.into(),
            logins: Vec::new(),
            issued: Vec::new(),
        }));
        let app = Router::new()
            .route("/v1/auth/{mount}/login", post(login))
            .fallback(forward)
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
                .expect("the login proxy runs");
        });
        AwsLoginProxy {
            address,
            inner,
            shutdown: Some(tx),
        }
    }

    /// The decoded login requests, in order.
    pub fn logins(&self) -> Vec<Value> {
        self.inner.lock().unwrap().logins.clone()
    }

    /// Revokes every token a login issued, in OpenBao.
    pub async fn revoke_issued_tokens(&self, bao: &OpenBao) {
        let issued = std::mem::take(&mut self.inner.lock().unwrap().issued);
        for token in issued {
            bao.revoke(&token).await;
        }
    }
}

impl Drop for AwsLoginProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn decode(v: &Value) -> Option<String> {
    B64.decode(v.as_str()?)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "errors": [message] }))).into_response()
}

async fn login(
    State(state): State<Arc<Mutex<Inner>>>,
    Path(mount): Path<String>,
    body: Bytes,
) -> Response {
    if mount != "aws" {
        return error(StatusCode::FORBIDDEN, "permission denied");
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "failed to parse JSON input");
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
        return error(
            StatusCode::BAD_REQUEST,
            "error making upstream request: invalid or unsigned sts:GetCallerIdentity request",
        );
    }
    let caller = match get_caller_identity(&headers, &sts_body).await {
        Ok(arn) => arn,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("error making upstream request: {e}"),
            )
        }
    };
    let (address, root, policy, lease) = {
        let mut inner = state.lock().unwrap();
        inner.logins.push(json!({
            "method": method, "url": url, "body": sts_body, "headers": headers, "role": req["role"],
            "caller_arn": caller,
        }));
        (
            inner.bao_address.clone(),
            inner.root_token.clone(),
            inner.policy.clone(),
            inner.lease.clone(),
        )
    };
    // A real token, created in OpenBao the way the `aws` method's login would issue one.
    let created = reqwest::Client::new()
        .post(format!("{address}/v1/auth/token/create"))
        .header("x-vault-token", root)
        .json(&json!({
            "policies": [policy],
            "no_default_policy": true,
            "ttl": lease,
            "meta": { "role": req["role"] },
        }))
        .send()
        .await
        .expect("OpenBao answers");
    let status = StatusCode::from_u16(created.status().as_u16()).unwrap();
    let answer: Value = created.json().await.unwrap_or(Value::Null);
    if let Some(token) = answer["auth"]["client_token"].as_str() {
        state.lock().unwrap().issued.push(token.to_string());
    }
    (status, Json(answer)).into_response()
}

/// Sends the login's `sts:GetCallerIdentity`, headers and body as signed, to moto's STS and
/// returns the caller's ARN.
async fn get_caller_identity(headers: &Value, body: &str) -> Result<String, String> {
    let sts = std::env::var("AWS_ENDPOINT_URL_EC2")
        .map_err(|_| "no STS endpoint: AWS_ENDPOINT_URL_EC2 (moto) is not set".to_string())?;
    let mut req = reqwest::Client::new().post(format!("{sts}/"));
    for (name, values) in headers.as_object().into_iter().flatten() {
        if let Some(value) = values[0].as_str() {
            req = req.header(name.as_str(), value);
        }
    }
    let resp = req
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let arn = text
        .split_once("<Arn>")
        .and_then(|(_, rest)| rest.split_once("</Arn>"))
        .map(|(arn, _)| arn.to_string());
    match arn {
        Some(arn) if status.is_success() => Ok(arn),
        _ => Err(format!("STS answered {status}: {text}")),
    }
}

/// Any other request, passed to OpenBao as it came.
async fn forward(
    State(state): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let address = state.lock().unwrap().bao_address.clone();
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = reqwest::Client::new().request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
        format!("{address}{path}"),
    );
    for (name, value) in &headers {
        if name != "host" {
            req = req.header(name.as_str(), value.as_bytes());
        }
    }
    let resp = req.body(body).send().await.expect("OpenBao answers");
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.as_bytes().to_vec());
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut out = Response::builder().status(status);
    if let Some(ct) = content_type {
        out = out.header("content-type", ct);
    }
    out.body(Body::from(bytes)).unwrap()
}
