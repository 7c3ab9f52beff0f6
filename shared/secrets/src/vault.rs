//! HashiCorp Vault KV v2 backend (through `vaultrs`), with token, AWS IAM or Lambda-extension
//! authentication.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use tokio::sync::Mutex;
use vaultrs::api::kv2::requests::{SetSecretMetadataRequest, SetSecretRequestOptions};
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use vmapi_core::{Created, Error, ManagedSecret, Result, SecretLabels, SecretStore};
use vmapi_models::{DeploymentId, LoginSecret, SecretPath, Sensitive, TeamId, Timestamp};

use crate::config::{VaultAuth, VaultConfig};

/// How long a Vault call may take before the request answers 503.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A login token and when to stop using it.
struct Session {
    client: Arc<VaultClient>,
    renew_at: Option<Instant>,
}

/// Logins in Vault's KV v2 engine: `{mount}/data/{path}`.
pub struct VaultStore {
    config: VaultConfig,
    /// AWS settings for IAM login.
    sdk: Option<SdkConfig>,
    session: Mutex<Option<Session>>,
    deployment: DeploymentId,
}

impl VaultStore {
    /// A store; nothing is sent until the first call. `sdk` is needed for AWS IAM login.
    pub fn new(config: VaultConfig, sdk: Option<SdkConfig>, deployment: DeploymentId) -> Self {
        VaultStore {
            config,
            sdk,
            session: Mutex::new(None),
            deployment,
        }
    }

    fn client_with_token(&self, token: &str) -> Result<VaultClient> {
        let mut settings = VaultClientSettingsBuilder::default();
        settings
            .address(&self.config.address)
            .token(token)
            .timeout(Some(TIMEOUT));
        if let Some(ns) = &self.config.namespace {
            settings.namespace(Some(ns.clone()));
        }
        let settings = settings
            .build()
            .map_err(|e| Error::internal("Vault client settings", e))?;
        VaultClient::new(settings).map_err(|e| Error::internal("building the Vault client", e))
    }

    /// The client of the current session, logging in first if needed.
    async fn client(&self) -> Result<Arc<VaultClient>> {
        let mut session = self.session.lock().await;
        if let Some(s) = session.as_ref() {
            if s.renew_at.is_none_or(|at| Instant::now() < at) {
                return Ok(s.client.clone());
            }
        }
        let fresh = self.login().await?;
        let client = fresh.client.clone();
        *session = Some(fresh);
        Ok(client)
    }

    async fn forget_session(&self) {
        *self.session.lock().await = None;
    }

    async fn login(&self) -> Result<Session> {
        match &self.config.auth {
            VaultAuth::Token(token) => Ok(Session {
                client: Arc::new(self.client_with_token(token.expose())?),
                renew_at: None,
            }),
            // The extension's local proxy adds its own token.
            VaultAuth::LambdaExtension => Ok(Session {
                client: Arc::new(self.client_with_token("")?),
                renew_at: None,
            }),
            VaultAuth::AwsIam {
                role,
                mount,
                server_id,
                sts_region,
            } => {
                let request = self
                    .signed_sts_request(server_id.as_deref(), sts_region)
                    .await?;
                let anonymous = self.client_with_token("")?;
                let auth = vaultrs::auth::aws::iam_login(
                    &anonymous,
                    mount,
                    "POST",
                    &request.url,
                    &request.headers,
                    &request.body,
                    role.as_deref(),
                )
                .await
                .map_err(|e| map_vault("AWS IAM login", e))?;
                tracing::info!(
                    lease_seconds = auth.lease_duration,
                    "logged in to Vault with AWS IAM"
                );
                let lease = Duration::from_secs(auth.lease_duration);
                Ok(Session {
                    client: Arc::new(self.client_with_token(&auth.client_token)?),
                    // Renew by logging in again at 80% of the lease.
                    renew_at: (auth.lease_duration > 0).then(|| Instant::now() + lease * 4 / 5),
                })
            }
        }
    }

    /// A SigV4-signed `sts:GetCallerIdentity` request, base64-encoded as Vault's AWS auth
    /// method expects (`iam_request_url`, `iam_request_headers`, `iam_request_body`).
    async fn signed_sts_request(
        &self,
        server_id: Option<&str>,
        region: &str,
    ) -> Result<EncodedRequest> {
        let sdk = self.sdk.as_ref().ok_or_else(|| Error::Internal {
            context: "Vault AWS IAM login needs AWS settings".into(),
            source: None,
        })?;
        let provider = sdk.credentials_provider().ok_or_else(|| Error::Internal {
            context: "Vault AWS IAM login: no AWS credentials provider".into(),
            source: None,
        })?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| Error::internal("loading AWS credentials for the Vault login", e))?;
        let identity = Identity::from(credentials);
        sign_sts_request(&identity, region, server_id, SystemTime::now())
    }

    async fn with_client<T, F, Fut>(&self, op: &str, call: F) -> Result<T>
    where
        F: Fn(Arc<VaultClient>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, ClientError>>,
    {
        let client = self.client().await?;
        match call(client).await {
            // An expired login: log in once more and retry.
            Err(ClientError::APIError { code: 403, .. })
                if matches!(self.config.auth, VaultAuth::AwsIam { .. }) =>
            {
                self.forget_session().await;
                let client = self.client().await?;
                call(client).await.map_err(|e| map_vault(op, e))
            }
            other => other.map_err(|e| map_vault(op, e)),
        }
    }
}

/// A request for Vault's `aws` login, each part base64-encoded.
#[derive(Debug)]
pub struct EncodedRequest {
    /// `iam_request_url`.
    pub url: String,
    /// `iam_request_headers`: a JSON object of header name to list of values.
    pub headers: String,
    /// `iam_request_body`.
    pub body: String,
}

/// Signs `sts:GetCallerIdentity` for `region` (the global endpoint for `us-east-1`).
pub fn sign_sts_request(
    identity: &Identity,
    region: &str,
    server_id: Option<&str>,
    time: SystemTime,
) -> Result<EncodedRequest> {
    let host = if region == "us-east-1" {
        "sts.amazonaws.com".to_string()
    } else {
        format!("sts.{region}.amazonaws.com")
    };
    let url = format!("https://{host}/");
    let body = "Action=GetCallerIdentity&Version=2011-06-15";
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
    ];
    if let Some(id) = server_id {
        headers.push(("x-vault-aws-iam-server-id".into(), id.to_string()));
    }
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| Error::internal("signing the Vault login", e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| Error::internal("signing the Vault login", e))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| Error::internal("signing the Vault login", e))?
        .into_parts();
    for (name, value) in instructions.headers() {
        headers.push((name.to_string(), value.to_string()));
    }
    let map: BTreeMap<String, Vec<String>> =
        headers.into_iter().map(|(k, v)| (k, vec![v])).collect();
    let headers_json =
        serde_json::to_string(&map).map_err(|e| Error::internal("encoding headers", e))?;
    Ok(EncodedRequest {
        url: B64.encode(url),
        headers: B64.encode(headers_json),
        body: B64.encode(body),
    })
}

/// Maps a Vault client error. Unreachable, sealed or overloaded is 503 with a short
/// `Retry-After`. Refused (403: a revoked or expired token, or a policy without the path) and a
/// missing mount (404 naming no route, unlike an absent secret's empty 404) are configuration
/// faults: 503 with a longer `Retry-After`, since retrying cannot help until an operator acts.
/// Other answers are internal. The logs get the whole cause: Vault's status and error texts
/// (which never contain secret values), or the HTTP client's source chain (the connect, TLS or I/O
/// error under "Error sending HTTP request"). A stored secret that does not decode is described
/// without serde_json's message, which can quote the offending value, i.e. the secret.
fn map_vault(op: &str, e: ClientError) -> Error {
    let unavailable = |retry_after_secs: u32, source: String| Error::Unavailable {
        message: "the secret store is unavailable or busy; retry shortly".into(),
        retry_after_secs,
        source: Some(format!("Vault {op}: {source}").into()),
    };
    match e {
        ClientError::APIError { code, errors } if code == 429 || code >= 500 => unavailable(
            RETRY_TRANSIENT,
            format!("status {code}: {}", errors.join("; ")),
        ),
        ClientError::APIError { code: 403, errors } => unavailable(
            RETRY_CONFIGURATION,
            format!(
                "status 403, the token is revoked or expired or its policy lacks this path: {}",
                errors.join("; ")
            ),
        ),
        ClientError::APIError { code: 404, errors } if !errors.is_empty() => unavailable(
            RETRY_CONFIGURATION,
            format!(
                "status 404, the KV v2 mount is missing (a configuration error): {}",
                errors.join("; ")
            ),
        ),
        ClientError::APIError { code, errors } => Error::Internal {
            context: format!("Vault {op} answered {code}: {}", errors.join("; ")),
            source: None,
        },
        ClientError::RestClientError { source } => {
            unavailable(RETRY_TRANSIENT, vmapi_core::ErrorChain(&source).to_string())
        }
        ClientError::JsonParseError { source } => Error::Internal {
            context: format!(
                "Vault {op}: the stored value is {}",
                crate::json_problem(&source)
            ),
            source: None,
        },
        other => Error::internal(format!("Vault {op}"), other),
    }
}

/// `Retry-After` of a sealed, unreachable or busy Vault.
const RETRY_TRANSIENT: u32 = 2;
/// `Retry-After` of a refused token or a missing mount: an operator has to act first.
const RETRY_CONFIGURATION: u32 = 30;

/// KV v2's answer for a path with no secret: 404 with an empty `errors` list. A 404 that names
/// an error (`no handler for route ...`) means the mount itself is missing, which is not this.
fn is_absent(e: &ClientError) -> bool {
    matches!(e, ClientError::APIError { code: 404, errors } if errors.is_empty())
}

#[async_trait]
impl SecretStore for VaultStore {
    async fn read(&self, path: &SecretPath) -> Result<Option<LoginSecret>> {
        let mount = self.config.mount.as_str();
        let result = self
            .with_client("read", |c| async move {
                match vaultrs::kv2::read::<LoginSecret>(c.as_ref(), mount, path.as_str()).await {
                    Err(e) if is_absent(&e) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await;
        result
    }

    async fn create(
        &self,
        path: &SecretPath,
        secret: &LoginSecret,
        _labels: SecretLabels,
    ) -> Result<Created> {
        let mount = self.config.mount.as_str();
        let created = self
            .with_client("write", |c| async move {
                // cas = 0: write only if nothing is at the path.
                match vaultrs::kv2::set_with_options(
                    c.as_ref(),
                    mount,
                    path.as_str(),
                    secret,
                    SetSecretRequestOptions { cas: 0 },
                )
                .await
                {
                    Ok(_) => Ok(Created::Created),
                    Err(ClientError::APIError { code: 400, errors })
                        if errors.iter().any(|m| m.contains("check-and-set")) =>
                    {
                        Ok(Created::AlreadyExists)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        if created == Created::AlreadyExists {
            return Ok(created);
        }
        // The deployment's mark in the secret's custom_metadata. Without it the login would be
        // nobody's, so a failure takes the new secret back out.
        if let Err(e) = self.mark(path, None).await {
            if let Err(undo) = self.delete(path).await {
                tracing::warn!(secret = %path, error = %vmapi_core::ErrorChain(&undo), "a login without its deployment mark could not be removed; it is reported by cleanup as untagged");
            }
            return Err(e);
        }
        Ok(created)
    }

    async fn delete(&self, path: &SecretPath) -> Result<()> {
        let mount = self.config.mount.as_str();
        self.with_client("delete", |c| async move {
            // Deleting the metadata removes every version.
            match vaultrs::kv2::delete_metadata(c.as_ref(), mount, path.as_str()).await {
                Err(e) if is_absent(&e) => Ok(()),
                other => other,
            }
        })
        .await
    }

    async fn read_document(&self, path: &SecretPath) -> Result<Option<Sensitive>> {
        let mount = self.config.mount.as_str();
        let value = self
            .with_client("read", |c| async move {
                match vaultrs::kv2::read::<serde_json::Value>(c.as_ref(), mount, path.as_str())
                    .await
                {
                    Err(e) if is_absent(&e) => Ok(None),
                    other => other.map(Some),
                }
            })
            .await?;
        Ok(value.map(|v| Sensitive::new(v.to_string())))
    }

    async fn list_managed(&self) -> Result<Vec<ManagedSecret>> {
        let mount = self.config.mount.as_str();
        // Walks only the two shapes the service writes: `{team}/user/root` and
        // `{team}/vm/{vm}/root`; anything else under the mount is not ours.
        let mut paths = Vec::new();
        for team in self.list_dir(mount, "").await? {
            let Some(team) = team.strip_suffix('/') else {
                continue;
            };
            if team.parse::<TeamId>().is_err() {
                continue;
            }
            for entry in self.list_dir(mount, &format!("{team}/")).await? {
                if entry == "user/" {
                    let keys = self.list_dir(mount, &format!("{team}/user/")).await?;
                    if keys.iter().any(|k| k == "root") {
                        paths.push(format!("{team}/user/root"));
                    }
                } else if entry == "vm/" {
                    for vm in self.list_dir(mount, &format!("{team}/vm/")).await? {
                        paths.push(format!("{team}/vm/{vm}root"));
                    }
                }
            }
        }
        let mut found = Vec::new();
        for path in paths {
            let path = SecretPath::from_text(&path);
            if path.owner().is_none() {
                continue;
            }
            let meta = self
                .with_client("read metadata", |c| {
                    let path = path.clone();
                    async move {
                        match vaultrs::kv2::read_metadata(c.as_ref(), mount, path.as_str()).await {
                            Err(e) if is_absent(&e) => Ok(None),
                            other => other.map(Some),
                        }
                    }
                })
                .await?;
            if let Some(meta) = meta {
                found.push(ManagedSecret {
                    created_at: Timestamp::parse(&meta.created_time).ok(),
                    deployment: meta
                        .custom_metadata
                        .as_ref()
                        .and_then(|m| m.get(DeploymentId::TAG).cloned()),
                    path,
                });
            }
        }
        Ok(found)
    }

    async fn adopt(&self, path: &SecretPath) -> Result<()> {
        let mount = self.config.mount.as_str();
        let meta = self
            .with_client("read metadata", |c| async move {
                vaultrs::kv2::read_metadata(c.as_ref(), mount, path.as_str()).await
            })
            .await?;
        self.mark(path, meta.custom_metadata).await
    }

    fn backend(&self) -> &'static str {
        "vault"
    }
}

impl VaultStore {
    /// Writes the secret's `custom_metadata` as `existing` (its current entries, kept) plus
    /// `managed-by` and this deployment's [`DeploymentId::TAG`].
    async fn mark(
        &self,
        path: &SecretPath,
        existing: Option<std::collections::HashMap<String, String>>,
    ) -> Result<()> {
        let mount = self.config.mount.as_str();
        let mut custom = existing.unwrap_or_default();
        custom.insert("managed-by".into(), "vm-api".into());
        custom.insert(DeploymentId::TAG.into(), self.deployment.to_string());
        let custom = &custom;
        self.with_client("write metadata", |c| async move {
            vaultrs::kv2::set_metadata(
                c.as_ref(),
                mount,
                path.as_str(),
                Some(SetSecretMetadataRequest::builder().custom_metadata(custom.clone())),
            )
            .await
        })
        .await
    }

    /// The keys below `dir` (folders end in `/`); an absent folder is empty.
    async fn list_dir(&self, mount: &str, dir: &str) -> Result<Vec<String>> {
        self.with_client("list", |c| async move {
            match vaultrs::kv2::list(c.as_ref(), mount, dir).await {
                Err(e) if is_absent(&e) => Ok(Vec::new()),
                other => other,
            }
        })
        .await
    }
}

#[cfg(test)]
#[path = "vault_tests.rs"]
mod tests;
