//! Kraud.Cloud driver over its REST API (reqwest, rustls).
//!
//! Kraud.Cloud has no "VM" resource: a VM is a *PVM*, a pod (micro-VM) running a full-OS image
//! with systemd as init. Each of our VMs gets its own namespace, `vm-{vmId}`, so that one
//! recursive namespace delete removes everything the VM had. The driver:
//!
//! * creates the namespace (`POST /api/v1/namespaces`; "already exists" is fine), then — unless
//!   the namespace already holds a pod or a deployment (check-then-launch: the cloud has no
//!   idempotency key) — launches a docker-compose template into it
//!   (`POST /apis/kraudcloud.com/v1/launch?namespace=…`, multipart/form-data);
//! * reads the VM back from the pod list (`GET /apis/kraudcloud.com/v1/pods?status=true`), maps
//!   the first word of `Status.Display` to [`CloudState`], takes addresses from `Overlays[]` and
//!   the confidential technology from the pod's `Res` as reported (never from what was asked);
//! * starts and stops the pod through Kraud's Docker Engine API (`/v1.41/containers/{id}/…`),
//!   restarts its deployment (`/apis/kr/v1/deployments/by-id/{id}/restart`), and deletes the
//!   namespace recursively;
//! * lists the service's VMs as the namespaces named `vm-{vmId}` (`GET /api/v1/namespaces`),
//!   leaving out those being deleted;
//! * has no port filter: a pod's public address is firewalled unless the pod carries the label
//!   `kr.network.policy=open`. The security rules open it (an inbound allow rule and no deny
//!   rule) or close it: as a launch label at create, and later through the k8s-shaped pod patch
//!   (`PATCH /api/v1/namespaces/{ns}/pods/{pod}`, the label set or removed).
//!
//! The login (public keys, a SHA-512 crypt password hash; never a plaintext password) is
//! installed on first boot by a small shell entrypoint in the compose that then `exec`s
//! `/sbin/init`. Everything here that the vendor does not document is listed in
//! `docs/providers.md`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use vmapi_core::cloud::{
    Capabilities, CloudDriver, CloudState, CloudTarget, CloudVm, DriverError, DriverKind,
    LoginSpec, ManagedKind, ManagedResource, VmSpec,
};
use vmapi_core::ErrorChain;
use vmapi_models::{
    ConfidentialTech, DeploymentId, Direction, Protocol, RuleAccess, SecurityRule, Sensitive,
    Timestamp, VmId,
};

/// Label on every namespace the service creates (beside its deployment's
/// [`DeploymentId::TAG`]).
pub const MANAGED_BY: (&str, &str) = ("managed-by", "vm-api");

/// The public API endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.kraudcloud.com";

/// Zone used when the VM's region names no Kraud zone (`uca`, Berlin).
pub const DEFAULT_ZONE: &str = "uca";

/// Zones the driver knows by name. Regions outside this list (and its aliases) go to
/// [`DEFAULT_ZONE`].
pub const KNOWN_ZONES: &[&str] = &["uca", "yca", "lmu"];

/// Docker Engine API version prefix Kraud serves.
const DOCKER_API: &str = "v1.41";

/// Timeout of one HTTP request (and of connecting).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds a Docker stop waits for a clean shutdown before the cloud kills the pod.
const STOP_GRACE_SECS: u64 = 20;

/// How long `create` waits for the launched pod to show up, and how often it looks.
const LAUNCH_WAIT: Duration = Duration::from_secs(8);
const LAUNCH_POLL: Duration = Duration::from_secs(1);

/// Longest provider text kept in an error message.
const MAX_MESSAGE: usize = 300;

/// Configuration of the Kraud.Cloud driver.
#[derive(Clone, Debug)]
pub struct KraudConfig {
    /// API token (sent as `Authorization: Bearer …`; never logged).
    pub token: Sensitive,
    /// API base URL, normally [`DEFAULT_BASE_URL`] (tests point it at a local server).
    pub base_url: String,
    /// This deployment: namespaces are labelled with it, and only those that carry it are this
    /// deployment's (default `local`).
    pub deployment: DeploymentId,
}

impl KraudConfig {
    /// A configuration for the public endpoint.
    pub fn new(token: Sensitive) -> Self {
        KraudConfig {
            token,
            base_url: DEFAULT_BASE_URL.to_string(),
            deployment: DeploymentId::local(),
        }
    }
}

/// The Kraud.Cloud driver: one HTTP client for all calls. `Debug` shows the base URL only.
pub struct KraudDriver {
    client: Client,
    base: Url,
    deployment: DeploymentId,
    launch_wait: Duration,
    launch_poll: Duration,
}

impl std::fmt::Debug for KraudDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KraudDriver")
            .field("base_url", &self.base.as_str())
            .field("launch_wait", &self.launch_wait)
            .finish_non_exhaustive()
    }
}

impl KraudDriver {
    /// What this driver can do, known before it is built (credentials are read lazily).
    pub fn static_capabilities() -> Capabilities {
        Capabilities {
            confidential: vec![ConfidentialTech::SevSnp],
            native_idempotency: false,
            password_login: false,
        }
    }

    /// Builds the driver: checks the base URL and the token, and makes the HTTP client
    /// (rustls, 10 s connect and request timeouts, the token as a sensitive default header).
    pub fn new(config: KraudConfig) -> Result<Self, DriverError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| DriverError::InvalidSpec(format!("Kraud base URL: {e}")))?;
        if !matches!(base.scheme(), "https" | "http") || base.cannot_be_a_base() {
            return Err(DriverError::InvalidSpec(
                "Kraud base URL must be an http(s) URL".into(),
            ));
        }
        let token = config.token.expose().trim();
        if token.is_empty() {
            return Err(DriverError::Unauthorized(
                "the Kraud API token is empty".into(),
            ));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            DriverError::Unauthorized("the Kraud API token is not a valid header value".into())
        })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let client = Client::builder()
            .default_headers(headers)
            .connect_timeout(REQUEST_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("vmapi-drivers/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DriverError::Unreachable(format!("HTTP client: {}", ErrorChain(&e))))?;
        Ok(KraudDriver {
            client,
            base,
            deployment: config.deployment,
            launch_wait: LAUNCH_WAIT,
            launch_poll: LAUNCH_POLL,
        })
    }

    /// Changes how long `create` waits for a launched pod to appear (default 8 s) and how
    /// often it looks (default 1 s).
    pub fn with_launch_wait(mut self, wait: Duration, poll: Duration) -> Self {
        self.launch_wait = wait;
        self.launch_poll = poll.max(Duration::from_millis(1));
        self
    }

    /// The namespace of a VM: `vm-{vmId}` (27 characters, a valid DNS label).
    pub fn namespace_of(vm: VmId) -> String {
        format!("vm-{vm}")
    }

    // ----- HTTP plumbing -------------------------------------------------------------------

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn request(&self, method: Method, segments: &[&str], query: &[(&str, &str)]) -> RequestBuilder {
        self.client.request(method, self.url(segments, query))
    }

    /// Sends a request; transport failures become [`DriverError::Unreachable`].
    async fn send(&self, req: RequestBuilder, what: &str) -> Result<Response, DriverError> {
        tracing::debug!(call = what, "kraud request");
        req.send().await.map_err(|e| transport_error(what, e))
    }

    /// Sends a request and maps any status above 299 to a [`DriverError`].
    async fn call(&self, req: RequestBuilder, what: &str) -> Result<Response, DriverError> {
        let resp = self.send(req, what).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(error_from_response(what, resp).await)
        }
    }

    async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        req: RequestBuilder,
        what: &str,
    ) -> Result<T, DriverError> {
        let resp = self.call(req, what).await?;
        let bytes = resp.bytes().await.map_err(|e| transport_error(what, e))?;
        serde_json::from_slice(&bytes).map_err(|e| DriverError::Provider {
            code: "invalid_response".into(),
            message: format!("{what}: unexpected answer: {e}"),
        })
    }

    // ----- Kraud resources -----------------------------------------------------------------

    /// Creates the namespace; one that exists already is fine. The body is a whole
    /// `k8s.Namespace`: the API description requires `spec` and `status` (with `phase`) in the
    /// create body too, so both are sent with the values of a new namespace.
    async fn ensure_namespace(&self, ns: &str) -> Result<(), DriverError> {
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    MANAGED_BY.0: MANAGED_BY.1,
                    DeploymentId::TAG: self.deployment.as_str(),
                },
            },
            "spec": {},
            "status": { "phase": "Active" },
        });
        let req = self
            .request(Method::POST, &["api", "v1", "namespaces"], &[])
            .json(&body);
        match self.call(req, "create namespace").await {
            Ok(_) => Ok(()),
            Err(DriverError::Conflict(_)) => Ok(()),
            Err(DriverError::InvalidSpec(m) | DriverError::Provider { message: m, .. })
                if m.to_ascii_lowercase().contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The VM id of one of our namespaces: `vm-{vmId}` exactly as [`Self::namespace_of`] writes it.
    fn vm_of_namespace(ns: &str) -> Option<VmId> {
        let vm = VmId::parse(ns.strip_prefix("vm-")?).ok()?;
        (Self::namespace_of(vm) == ns).then_some(vm)
    }

    /// Every pod (with its status), sorted by name.
    async fn list_pods(&self) -> Result<Vec<Pod>, DriverError> {
        let list: ItemList<Pod> = self
            .json(
                self.request(
                    Method::GET,
                    &["apis", "kraudcloud.com", "v1", "pods"],
                    &[("status", "true")],
                ),
                "list pods",
            )
            .await?;
        let mut pods = list.items.unwrap_or_default();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(pods)
    }

    /// The pod of a namespace (with its status), if there is one.
    async fn find_pod(&self, ns: &str) -> Result<Option<Pod>, DriverError> {
        Ok(self
            .list_pods()
            .await?
            .into_iter()
            .find(|p| p.namespace.as_deref() == Some(ns)))
    }

    /// The deployment of a namespace, if there is one.
    async fn find_deployment(&self, ns: &str) -> Result<Option<Deployment>, DriverError> {
        let list: ItemList<Deployment> = self
            .json(
                self.request(
                    Method::GET,
                    &["apis", "kraudcloud.com", "v1", "deployments"],
                    &[],
                ),
                "list deployments",
            )
            .await?;
        Ok(list
            .items
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.namespace.as_deref() == Some(ns)))
    }

    /// Sets (`open`) or removes the pod's `kr.network.policy=open` label through the k8s-shaped
    /// pod patch (a JSON merge patch of `metadata.labels`).
    async fn set_address_open(&self, ns: &str, pod: &Pod, open: bool) -> Result<(), DriverError> {
        let name = pod
            .name
            .as_deref()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| DriverError::Provider {
                code: "invalid_response".into(),
                message: format!("the pod of namespace {ns} has no name"),
            })?;
        let body = serde_json::json!({
            "metadata": { "labels": { NETWORK_POLICY: if open { serde_json::json!("open") } else { serde_json::Value::Null } } }
        });
        let req = self
            .request(
                Method::PATCH,
                &["api", "v1", "namespaces", ns, "pods", name],
                &[],
            )
            .header(CONTENT_TYPE, "application/merge-patch+json")
            .body(body.to_string());
        self.call(req, "patch pod labels").await?;
        tracing::info!(namespace = %ns, open, "kraud pod address firewall set");
        Ok(())
    }

    async fn require_pod(&self, target: &CloudTarget) -> Result<(String, Pod), DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        match self.find_pod(&ns).await? {
            Some(pod) => Ok((ns, pod)),
            None => Err(DriverError::NotFound(format!("no pod in namespace {ns}"))),
        }
    }

    /// Launches the compose template into the namespace; returns the launch id.
    async fn launch(&self, ns: &str, files: &LaunchFiles) -> Result<String, DriverError> {
        let (content_type, body) = files.multipart();
        let req = self
            .request(
                Method::POST,
                &["apis", "kraudcloud.com", "v1", "launch"],
                &[("namespace", ns)],
            )
            .header(CONTENT_TYPE, content_type)
            .body(body);
        let resp = self.call(req, "launch").await?;
        let is_json = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"));
        let text = resp
            .text()
            .await
            .map_err(|e| transport_error("launch", e))?;
        let launch_failed = |message: &str| DriverError::Provider {
            code: "launch_failed".into(),
            message: truncate(message.trim()),
        };
        if is_json {
            let answer: LaunchAnswer =
                serde_json::from_str(&text).map_err(|e| DriverError::Provider {
                    code: "invalid_response".into(),
                    message: format!("launch: unexpected answer: {e}"),
                })?;
            if let Some(error) = answer.error.filter(|e| !e.trim().is_empty()) {
                return Err(launch_failed(&error));
            }
            return Ok(answer.launch_id.unwrap_or_default());
        }
        // A streamed text log (older API): a line with `Error: ` is a failure.
        if let Some(line) = text.lines().find(|l| l.contains("Error: ")) {
            let message = &line[line.find("Error: ").unwrap_or(0) + "Error: ".len()..];
            return Err(launch_failed(message));
        }
        Ok(String::new())
    }

    async fn docker_container_op(
        &self,
        pod: &Pod,
        op: &str,
        query: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<(), DriverError> {
        let id = pod.container_id().ok_or_else(|| DriverError::Provider {
            code: "invalid_response".into(),
            message: "the pod has neither AID nor ID".into(),
        })?;
        let req = self
            .request(Method::POST, &[DOCKER_API, "containers", id, op], query)
            .timeout(timeout);
        let what = format!("container {op}");
        let resp = self.send(req, &what).await?;
        // 304: already started / already stopped.
        if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
            Ok(())
        } else {
            Err(error_from_response(&what, resp).await)
        }
    }

    async fn wait_for_pod(&self, ns: &str) -> Result<Option<Pod>, DriverError> {
        let deadline = Instant::now() + self.launch_wait;
        loop {
            if let Some(pod) = self.find_pod(ns).await? {
                return Ok(Some(pod));
            }
            if Instant::now() + self.launch_poll > deadline {
                return Ok(None);
            }
            tokio::time::sleep(self.launch_poll).await;
        }
    }
}

#[async_trait]
impl CloudDriver for KraudDriver {
    fn kind(&self) -> DriverKind {
        DriverKind::Kraud
    }

    fn capabilities(&self) -> Capabilities {
        Self::static_capabilities()
    }

    async fn create(&self, spec: &VmSpec) -> Result<CloudVm, DriverError> {
        // Everything that can be refused locally is refused before the first call.
        let files = LaunchFiles::build(spec)?;
        let ns = Self::namespace_of(spec.vm_id);
        self.ensure_namespace(&ns).await?;
        if let Some(pod) = self.find_pod(&ns).await? {
            tracing::info!(vm = %spec.vm_id, namespace = %ns, "kraud pod exists already; not launching again");
            // An earlier attempt launched it, perhaps with other rules.
            self.set_address_open(&ns, &pod, address_open(&spec.rules)?)
                .await?;
            return Ok(view(&ns, &pod));
        }
        if self.find_deployment(&ns).await?.is_some() {
            tracing::info!(vm = %spec.vm_id, namespace = %ns, "kraud deployment exists already; waiting for its pod");
        } else {
            let launch_id = self.launch(&ns, &files).await?;
            tracing::info!(vm = %spec.vm_id, namespace = %ns, launch_id = %launch_id, "kraud launch accepted");
        }
        if let Some(pod) = self.wait_for_pod(&ns).await? {
            return Ok(view(&ns, &pod));
        }
        if spec.confidential.is_some() {
            // Without the pod there is nothing that reports the confidential technology; an
            // answer without it would read as a mismatch. Retry: the next create finds the
            // deployment and does not launch again.
            return Err(DriverError::Conflict(format!(
                "the launch into namespace {ns} is in progress; its pod is not visible yet"
            )));
        }
        Ok(CloudVm {
            provider_id: ns,
            state: CloudState::Provisioning,
            raw_state: "Launching".into(),
            public_ipv4: None,
            public_ipv6: None,
            private_ipv4: None,
            confidential: None,
        })
    }

    async fn get(&self, target: &CloudTarget) -> Result<Option<CloudVm>, DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        Ok(self.find_pod(&ns).await?.map(|pod| view(&ns, &pod)))
    }

    async fn start(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let (_, pod) = self.require_pod(target).await?;
        self.docker_container_op(&pod, "start", &[], REQUEST_TIMEOUT)
            .await
    }

    async fn stop(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let (_, pod) = self.require_pod(target).await?;
        let grace = STOP_GRACE_SECS.to_string();
        self.docker_container_op(
            &pod,
            "stop",
            &[("t", &grace)],
            REQUEST_TIMEOUT + Duration::from_secs(STOP_GRACE_SECS),
        )
        .await
    }

    async fn reboot(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        if let Some(deployment) = self.find_deployment(&ns).await? {
            if let Some(id) = deployment.id.as_deref().or(deployment.aid.as_deref()) {
                let req = self.request(
                    Method::POST,
                    &["apis", "kr", "v1", "deployments", "by-id", id, "restart"],
                    &[],
                );
                self.call(req, "restart deployment").await?;
                return Ok(());
            }
        }
        // No deployment listed: restart the pod through the Docker API.
        let (_, pod) = self.require_pod(target).await?;
        let grace = STOP_GRACE_SECS.to_string();
        self.docker_container_op(
            &pod,
            "restart",
            &[("t", &grace)],
            REQUEST_TIMEOUT + Duration::from_secs(STOP_GRACE_SECS),
        )
        .await
    }

    /// Opens the pod's address (label `kr.network.policy=open`) when the rules hold an
    /// inbound allow rule and no deny rule, else closes it (label removed).
    async fn apply_rules(
        &self,
        target: &CloudTarget,
        rules: &[SecurityRule],
    ) -> Result<(), DriverError> {
        let open = address_open(rules)?;
        let (ns, pod) = self.require_pod(target).await?;
        self.set_address_open(&ns, &pod, open).await
    }

    async fn delete(&self, target: &CloudTarget) -> Result<(), DriverError> {
        let ns = Self::namespace_of(target.vm_id);
        let req = self.request(
            Method::DELETE,
            &["api", "v1", "namespaces", &ns],
            &[("recursive", "true")],
        );
        match self.call(req, "delete namespace").await {
            Ok(_) | Err(DriverError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Namespaces are not zonal, so `region` selects nothing: every namespace named
    /// `vm-{vmId}` (`GET /api/v1/namespaces`) that is not being deleted (`status.phase`
    /// `Terminating` or a `metadata.deletionTimestamp`), with the requested region in its
    /// target, the namespace's `creationTimestamp` and, as raw state, its pod's
    /// `Status.Display` (the namespace's phase when it holds no pod).
    async fn list_managed(&self, region: &str) -> Result<Vec<ManagedResource>, DriverError> {
        let list: ItemList<Namespace> = self
            .json(
                self.request(Method::GET, &["api", "v1", "namespaces"], &[]),
                "list namespaces",
            )
            .await?;
        let mut ours: Vec<(VmId, String, Namespace)> = list
            .items
            .unwrap_or_default()
            .into_iter()
            .filter(|ns| !ns.is_terminating())
            .filter_map(|ns| {
                let name = ns.metadata.as_ref()?.name.clone()?;
                Some((Self::vm_of_namespace(&name)?, name, ns))
            })
            .collect();
        if ours.is_empty() {
            return Ok(Vec::new());
        }
        ours.sort_by(|a, b| a.1.cmp(&b.1));
        let pods = self.list_pods().await?;
        Ok(ours
            .into_iter()
            .map(|(vm_id, name, ns)| {
                let display = pods
                    .iter()
                    .find(|p| p.namespace.as_deref() == Some(name.as_str()))
                    .and_then(|p| p.status.as_ref()?.display.clone())
                    .filter(|d| !d.trim().is_empty());
                let phase = ns.status.as_ref().and_then(|s| s.phase.clone());
                let created_at = ns
                    .metadata
                    .as_ref()
                    .and_then(|m| m.creation_timestamp.as_deref())
                    .and_then(|t| Timestamp::parse(t.trim()).ok());
                ManagedResource {
                    kind: ManagedKind::Vm,
                    target: CloudTarget {
                        vm_id,
                        region: region.to_string(),
                        provider_id: Some(name),
                    },
                    created_at,
                    raw_state: display.or(phase).unwrap_or_default().trim().to_string(),
                    deployment: ns
                        .metadata
                        .as_ref()
                        .and_then(|m| m.labels.as_ref()?.get(DeploymentId::TAG).cloned()),
                }
            })
            .collect())
    }

    /// Labels the VM's namespace with this deployment (`PATCH /api/v1/namespaces/{ns}`, a JSON
    /// merge patch of `metadata.labels`).
    async fn adopt(&self, resource: &ManagedResource) -> Result<(), DriverError> {
        let ns = Self::namespace_of(resource.target.vm_id);
        let body = serde_json::json!({
            "metadata": { "labels": {
                MANAGED_BY.0: MANAGED_BY.1,
                DeploymentId::TAG: self.deployment.as_str(),
            } }
        });
        let req = self
            .request(Method::PATCH, &["api", "v1", "namespaces", &ns], &[])
            .header(CONTENT_TYPE, "application/merge-patch+json")
            .body(body.to_string());
        self.call(req, "patch namespace labels").await?;
        Ok(())
    }
}

// ----- Wire types ----------------------------------------------------------------------------

#[derive(Deserialize)]
struct ItemList<T> {
    /// Missing or `null` is an empty list.
    items: Option<Vec<T>>,
}

#[derive(Deserialize, Default)]
struct Pod {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "AID", default)]
    aid: Option<String>,
    #[serde(rename = "Name", default)]
    name: Option<String>,
    #[serde(rename = "Namespace", default)]
    namespace: Option<String>,
    #[serde(rename = "Res", default)]
    res: Option<BTreeMap<String, serde_json::Value>>,
    /// Not in the published schema; read if a later API adds it.
    #[serde(rename = "Labels", default)]
    labels: Option<serde_json::Value>,
    #[serde(rename = "Overlays", default)]
    overlays: Option<Vec<Overlay>>,
    #[serde(rename = "Status", default)]
    status: Option<PodStatus>,
}

impl Pod {
    /// The id the Docker API takes for the pod (the CLI uses the AID).
    fn container_id(&self) -> Option<&str> {
        self.aid
            .as_deref()
            .filter(|s| !s.is_empty())
            .or(self.id.as_deref().filter(|s| !s.is_empty()))
    }
}

#[derive(Deserialize, Default)]
struct Overlay {
    #[serde(rename = "IP4", default)]
    ip4: Option<String>,
    #[serde(rename = "IP6", default)]
    ip6: Option<String>,
}

#[derive(Deserialize, Default)]
struct PodStatus {
    #[serde(rename = "Display", default)]
    display: Option<String>,
}

#[derive(Deserialize)]
struct Deployment {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "AID", default)]
    aid: Option<String>,
    #[serde(rename = "Namespace", default)]
    namespace: Option<String>,
}

/// A namespace of the k8s-shaped emulation (`k8s.Namespace`).
#[derive(Deserialize)]
struct Namespace {
    #[serde(default)]
    metadata: Option<ObjectMeta>,
    #[serde(default)]
    status: Option<NamespaceStatus>,
}

impl Namespace {
    /// Whether its deletion has begun.
    fn is_terminating(&self) -> bool {
        self.metadata
            .as_ref()
            .and_then(|m| m.deletion_timestamp.as_deref())
            .is_some_and(|t| !t.trim().is_empty())
            || self
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p.eq_ignore_ascii_case("Terminating"))
    }
}

#[derive(Deserialize)]
struct ObjectMeta {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "creationTimestamp", default)]
    creation_timestamp: Option<String>,
    #[serde(rename = "deletionTimestamp", default)]
    deletion_timestamp: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct NamespaceStatus {
    #[serde(default)]
    phase: Option<String>,
}

#[derive(Deserialize)]
struct LaunchAnswer {
    #[serde(default)]
    launch_id: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
}

// ----- Mapping ------------------------------------------------------------------------------

/// What we know about a pod, as a [`CloudVm`] whose provider id is the namespace.
fn view(ns: &str, pod: &Pod) -> CloudVm {
    let display = pod
        .status
        .as_ref()
        .and_then(|s| s.display.as_deref())
        .unwrap_or("")
        .trim()
        .to_string();
    let (public_ipv4, private_ipv4, public_ipv6) =
        addresses(pod.overlays.as_deref().unwrap_or(&[]));
    CloudVm {
        provider_id: ns.to_string(),
        state: state_of(&display),
        raw_state: display,
        public_ipv4,
        public_ipv6,
        private_ipv4,
        confidential: reported_confidential(pod),
    }
}

/// Maps the first word of `Status.Display` (free text; the CLI shows its first word) to a
/// state. `Status.Healthy` does not change the mapping: an `Error`/`Failed` word is a failure
/// whatever it says, and a `Running` pod that is not healthy yet is still running.
pub fn state_of(display: &str) -> CloudState {
    let word: String = display
        .split_whitespace()
        .next()
        .unwrap_or("")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match word.as_str() {
        "running" | "up" => CloudState::Running,
        "starting" | "restarting" | "booting" => CloudState::Starting,
        "creating" | "created" | "pending" | "scheduling" | "scheduled" | "pulling"
        | "launching" | "preparing" | "queued" | "waiting" | "initializing" => {
            CloudState::Provisioning
        }
        "stopping" | "terminating" | "shutting" => CloudState::Stopping,
        "stopped" | "exited" | "terminated" | "completed" | "succeeded" | "dead" => {
            CloudState::Stopped
        }
        "deleting" | "removing" | "descheduling" => CloudState::Deleting,
        "deleted" | "removed" => CloudState::Deleted,
        "error" | "failed" | "failure" | "crashed" | "crashloop" | "crashloopbackoff" => {
            CloudState::Failed(display.trim().to_string())
        }
        _ => CloudState::Unknown,
    }
}

/// Public IPv4, private IPv4 and public IPv6 from the pod's overlays: every pod gets a public
/// IPv6; an IPv4 is public only outside the private, shared and link-local ranges.
fn addresses(overlays: &[Overlay]) -> (Option<String>, Option<String>, Option<String>) {
    let (mut public4, mut private4, mut public6) = (None, None, None);
    let candidates = overlays
        .iter()
        .flat_map(|o| [o.ip4.as_deref(), o.ip6.as_deref()]);
    for text in candidates.flatten() {
        let text = text.trim();
        // Some APIs report CIDR notation.
        let bare = text.split('/').next().unwrap_or(text);
        let Ok(ip) = bare.parse::<IpAddr>() else {
            continue;
        };
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                let shared = o[0] == 100 && (o[1] & 0xc0) == 64;
                if v4.is_unspecified() || v4.is_loopback() {
                    continue;
                }
                if v4.is_private() || shared || v4.is_link_local() {
                    private4.get_or_insert_with(|| bare.to_string());
                } else {
                    public4.get_or_insert_with(|| bare.to_string());
                }
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                let unique_local = (first & 0xfe00) == 0xfc00;
                let link_local = (first & 0xffc0) == 0xfe80;
                if v6.is_unspecified() || v6.is_loopback() || unique_local || link_local {
                    continue;
                }
                public6.get_or_insert_with(|| bare.to_string());
            }
        }
    }
    (public4, private4, public6)
}

/// SEV-SNP when the pod reports it: a `Res` entry `snp` (or `kr.res.snp`, `sev-snp`) with a
/// true value, or a `kr.res.snp` label if the pod carries labels.
fn reported_confidential(pod: &Pod) -> Option<ConfidentialTech> {
    const KEYS: &[&str] = &["snp", "kr.res.snp", "sev-snp", "sevsnp", "amd-sev-snp"];
    let truthy = |v: &serde_json::Value| match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        serde_json::Value::String(s) => {
            let s = s.trim().to_ascii_lowercase();
            !matches!(s.as_str(), "" | "0" | "false" | "no" | "off")
        }
        _ => false,
    };
    let in_res = pod.res.as_ref().is_some_and(|res| {
        res.iter()
            .any(|(k, v)| KEYS.contains(&k.to_ascii_lowercase().as_str()) && truthy(v))
    });
    let in_labels = match &pod.labels {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("kr.res.snp") && truthy(v)),
        Some(serde_json::Value::Array(list)) => list.iter().any(|l| {
            l.as_str()
                .and_then(|s| s.split_once('='))
                .is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("kr.res.snp")
                        && truthy(&serde_json::Value::String(v.to_string()))
                })
        }),
        _ => false,
    };
    (in_res || in_labels).then_some(ConfidentialTech::SevSnp)
}

/// Maps a transport failure. reqwest's own text ("error sending request") hides the cause in
/// its source chain (the connect, TLS or I/O error), so unreachable errors, which only the logs
/// show, carry the chain. An unreadable answer becomes the VM's status reason and keeps
/// reqwest's short text there; its cause is logged.
fn transport_error(what: &str, e: reqwest::Error) -> DriverError {
    let e = e.without_url();
    if e.is_timeout() {
        DriverError::Unreachable(format!("{what}: timed out ({})", ErrorChain(&e)))
    } else if e.is_decode() || e.is_body() {
        tracing::warn!(call = what, error = %ErrorChain(&e), "the Kraud API's answer could not be read");
        DriverError::Provider {
            code: "invalid_response".into(),
            message: format!("{what}: {e}"),
        }
    } else {
        DriverError::Unreachable(format!("{what}: {}", ErrorChain(&e)))
    }
}

/// Maps an answer above 299 (`{"message": "..."}` per the API) to a [`DriverError`].
async fn error_from_response(what: &str, resp: Response) -> DriverError {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = resp.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&body)
        .ok()
        .and_then(|b| b.message)
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| {
            if body.trim().is_empty() || body.trim_start().starts_with('<') {
                status.canonical_reason().unwrap_or("error").to_string()
            } else {
                body.trim().to_string()
            }
        });
    let message = format!("{what}: {}", truncate(&message));
    match status.as_u16() {
        401 | 403 => DriverError::Unauthorized(message),
        404 => DriverError::NotFound(message),
        409 => DriverError::Conflict(message),
        429 => DriverError::Throttled {
            retry_after: Duration::from_secs(retry_after.unwrap_or(5).clamp(1, 300)),
        },
        402 => DriverError::Quota(message),
        400 | 422 => DriverError::InvalidSpec(message),
        500..=599 => DriverError::Unreachable(format!("{message} (HTTP {})", status.as_u16())),
        code => DriverError::Provider {
            code: code.to_string(),
            message,
        },
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_MESSAGE {
        return s.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

// ----- The launch: compose template, .env, multipart body ------------------------------------

/// The pod label that opens the firewall of its public address (value `open`).
pub const NETWORK_POLICY: &str = "kr.network.policy";

/// Whether a rule set opens the VM's address: an inbound allow rule and no deny rule. Kraud
/// filters nothing finer, so any other rule (a port, a protocol, a source network, outbound)
/// is refused rather than approximated.
pub fn address_open(rules: &[SecurityRule]) -> Result<bool, DriverError> {
    if let Some(r) = rules.iter().find(|r| {
        r.direction != Direction::Inbound
            || r.protocol != Protocol::Any
            || !r.port_range.is_any()
            || !r.cidr_block.is_any()
            || r.cidr_block.is_v6()
    }) {
        return Err(DriverError::InvalidSpec(format!(
            "Kraud.Cloud can only open or close a VM's address; rule {} filters by direction, protocol, port or source",
            r.name
        )));
    }
    Ok(rules.iter().any(|r| r.access == RuleAccess::Allow)
        && !rules.iter().any(|r| r.access == RuleAccess::Deny))
}

/// The two files of a launch.
struct LaunchFiles {
    compose: String,
    env: String,
}

impl LaunchFiles {
    fn build(spec: &VmSpec) -> Result<Self, DriverError> {
        let image = spec.image.trim();
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c == '$') {
            return Err(DriverError::InvalidSpec(format!(
                "'{}' is not an OCI image reference",
                truncate(image)
            )));
        }
        if spec.memory_gb == 0 || spec.disk_gb == 0 {
            return Err(DriverError::InvalidSpec(
                "memory and disk must be at least 1 GB".into(),
            ));
        }
        let entrypoint = login_script(&spec.login)?;
        let mut labels = vec![
            "kr.res.mem=${MEM}".to_string(),
            "kr.zone=${ZONE}".to_string(),
        ];
        if address_open(&spec.rules)? {
            labels.push(format!("{NETWORK_POLICY}=open"));
        }
        match spec.confidential {
            None => {}
            Some(ConfidentialTech::SevSnp) => labels.push("kr.res.snp=1".into()),
            Some(other) => {
                return Err(DriverError::InvalidSpec(format!(
                    "Kraud.Cloud offers no {}",
                    other.name()
                )))
            }
        }
        let q = |s: &str| yaml_quote(&s.replace('$', "$$"));
        let mut y = String::new();
        y.push_str("version: \"3.9\"\n");
        y.push_str(&format!("name: {}\n", q(&Self::project(spec.vm_id))));
        y.push_str("volumes:\n");
        y.push_str("  root:\n");
        y.push_str("    driver: lv2\n");
        y.push_str("    driver_opts:\n");
        y.push_str("      size: \"${BOOT_SIZE}\"\n");
        y.push_str("      zone: \"${ZONE}\"\n");
        y.push_str("services:\n");
        y.push_str("  vm:\n");
        y.push_str("    restart: always\n");
        y.push_str(&format!("    image: {}\n", q(image)));
        if !spec.name.trim().is_empty() {
            y.push_str(&format!("    hostname: {}\n", q(spec.name.trim())));
        }
        y.push_str("    volumes:\n");
        y.push_str("      - \"root:/\"\n");
        y.push_str("    entrypoint:\n");
        y.push_str("      - \"/bin/sh\"\n");
        y.push_str("      - \"-c\"\n");
        y.push_str(&format!("      - {}\n", q(&entrypoint)));
        y.push_str("    labels:\n");
        for label in &labels {
            // Labels carry the ${…} placeholders of the .env on purpose: no `$$` escaping.
            y.push_str(&format!("      - {}\n", yaml_quote(label)));
        }
        let env = format!(
            "MEM={}\nZONE={}\nBOOT_SIZE={}G\n",
            memory(spec.memory_gb),
            zone_of(&spec.region),
            spec.disk_gb
        );
        Ok(LaunchFiles { compose: y, env })
    }

    fn project(vm: VmId) -> String {
        KraudDriver::namespace_of(vm)
    }

    /// The multipart/form-data body (fields `docker-compose.yml` and `.env`) and its
    /// content type.
    fn multipart(&self) -> (String, Vec<u8>) {
        let mut boundary = String::from("vmapi-kraud-launch-7f3a9c");
        while self.compose.contains(&boundary) || self.env.contains(&boundary) {
            boundary.push('x');
        }
        let mut body = String::new();
        for (name, content_type, content) in [
            ("docker-compose.yml", "application/x-yaml", &self.compose),
            (".env", "text/plain", &self.env),
        ] {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n{content}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        (
            format!("multipart/form-data; boundary={boundary}"),
            body.into_bytes(),
        )
    }
}

/// `kr.res.mem` value: `{n}G`, or `{n}T` for whole terabytes.
fn memory(gb: u32) -> String {
    if gb >= 1024 && gb.is_multiple_of(1024) {
        format!("{}T", gb / 1024)
    } else {
        format!("{gb}G")
    }
}

/// The Kraud zone of a region: a zone name itself, `berlin` for `uca`, else [`DEFAULT_ZONE`].
pub fn zone_of(region: &str) -> &'static str {
    let region = region.trim().to_ascii_lowercase();
    if let Some(zone) = KNOWN_ZONES.iter().find(|z| **z == region) {
        return zone;
    }
    match region.as_str() {
        "berlin" | "de-berlin" | "eu-berlin" => "uca",
        _ => {
            tracing::debug!(region = %region, zone = DEFAULT_ZONE, "region names no Kraud zone; using the default zone");
            DEFAULT_ZONE
        }
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yaml_quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The first-boot login script, run by `/bin/sh -c` before `exec /sbin/init`. All values are
/// base64 literals, so the script holds no `$` (compose interpolation) and no quoting. It runs
/// once (marker file on the root volume), so keys the user adds later survive reboots.
fn login_script(login: &LoginSpec) -> Result<String, DriverError> {
    let user = login.username.trim();
    let valid_user = !user.is_empty()
        && user.len() <= 32
        && user
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && user
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid_user {
        return Err(DriverError::InvalidSpec(format!(
            "'{}' is not a valid Linux user name",
            truncate(user)
        )));
    }
    let keys: Vec<&str> = login
        .public_keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect();
    if keys.iter().any(|k| k.contains('\n') || k.contains('\r')) {
        return Err(DriverError::InvalidSpec(
            "an SSH public key spans several lines".into(),
        ));
    }
    let hash = login
        .password_hash
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    if let Some(h) = hash {
        // A crypt(3) hash; anything else could be a plaintext password and must not be sent.
        if !h.starts_with('$') || h.contains(':') || h.chars().any(char::is_whitespace) {
            return Err(DriverError::InvalidSpec(
                "the password hash is not in crypt(3) format".into(),
            ));
        }
    }
    if keys.is_empty() && hash.is_none() {
        return Err(DriverError::InvalidSpec(
            "the login has neither a public key nor a password hash".into(),
        ));
    }
    let root = user == "root";
    let home = if root {
        "/root".to_string()
    } else {
        format!("/home/{user}")
    };
    let marker = "/var/lib/vmapi-login-installed";
    let mut s: Vec<String> = Vec::new();
    s.push(format!("if [ ! -e {marker} ]; then"));
    // The PVM images ship root:root; never leave that enabled.
    s.push("passwd -l root >/dev/null 2>&1".into());
    if !root {
        s.push(format!(
            "id -u {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}"
        ));
        s.push(format!(
            "usermod -aG sudo {user} >/dev/null 2>&1 || usermod -aG wheel {user} >/dev/null 2>&1"
        ));
        let sudoers = format!("{user} ALL=(ALL) NOPASSWD:ALL\n");
        s.push(format!(
            "[ -d /etc/sudoers.d ] && echo {} | base64 -d > /etc/sudoers.d/90-vmapi && chmod 440 /etc/sudoers.d/90-vmapi",
            base64(sudoers.as_bytes())
        ));
    }
    if !keys.is_empty() {
        let mut authorized = keys.join("\n");
        authorized.push('\n');
        s.push(format!("mkdir -p {home}/.ssh"));
        s.push(format!(
            "echo {} | base64 -d > {home}/.ssh/authorized_keys",
            base64(authorized.as_bytes())
        ));
        s.push(format!(
            "chmod 700 {home}/.ssh; chmod 600 {home}/.ssh/authorized_keys; chown -R {user}: {home}/.ssh"
        ));
    }
    let sshd = if let Some(h) = hash {
        s.push(format!(
            "echo {} | base64 -d | chpasswd -e",
            base64(format!("{user}:{h}\n").as_bytes())
        ));
        if root {
            "PermitRootLogin yes\nPasswordAuthentication yes\n"
        } else {
            "PasswordAuthentication yes\n"
        }
    } else {
        "PasswordAuthentication no\n"
    };
    s.push(format!(
        "mkdir -p /etc/ssh/sshd_config.d && echo {} | base64 -d > /etc/ssh/sshd_config.d/01-vmapi.conf",
        base64(sshd.as_bytes())
    ));
    s.push(format!("mkdir -p /var/lib && touch {marker}"));
    s.push("fi".into());
    s.push("exec /sbin/init".into());
    let script = s.join("\n");
    debug_assert!(!script.contains('$'));
    Ok(script)
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port nobody listens on.
    fn closed_port() -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    fn target() -> CloudTarget {
        CloudTarget {
            vm_id: VmId::new(),
            region: "r".into(),
            provider_id: None,
        }
    }

    #[tokio::test]
    async fn an_unreachable_api_names_the_connection_error() {
        let driver = KraudDriver::new(KraudConfig {
            token: Sensitive::new("kraud-token-value".into()),
            base_url: format!("http://{}", closed_port()),
            deployment: vmapi_models::DeploymentId::local(),
        })
        .unwrap();
        let e = driver.get(&target()).await.expect_err("nobody listens");
        let DriverError::Unreachable(m) = &e else {
            panic!("{e:?}")
        };
        // Not only reqwest's "error sending request": the cause below it.
        assert!(m.contains("error sending request"), "{m}");
        assert!(m.to_lowercase().contains("connection refused"), "{m}");
        assert!(!m.contains("kraud-token-value"), "{m}");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn display_words_map_to_states() {
        assert_eq!(state_of("Running"), CloudState::Running);
        assert_eq!(state_of("Running since 3m"), CloudState::Running);
        assert_eq!(state_of("Starting..."), CloudState::Starting);
        assert_eq!(state_of("Creating..."), CloudState::Provisioning);
        assert_eq!(state_of("Pending"), CloudState::Provisioning);
        assert_eq!(state_of("Scheduling"), CloudState::Provisioning);
        assert_eq!(state_of("Stopping"), CloudState::Stopping);
        assert_eq!(state_of("Stopped"), CloudState::Stopped);
        assert_eq!(state_of("Exited (0)"), CloudState::Stopped);
        assert_eq!(state_of("Terminated"), CloudState::Stopped);
        assert_eq!(
            state_of("Error: image pull failed"),
            CloudState::Failed("Error: image pull failed".into())
        );
        assert_eq!(state_of("Failed"), CloudState::Failed("Failed".into()));
        assert_eq!(state_of(""), CloudState::Unknown);
        assert_eq!(state_of("Hibernating"), CloudState::Unknown);
    }

    #[test]
    fn only_our_namespaces_name_a_vm() {
        let vm = VmId::new();
        let ns = KraudDriver::namespace_of(vm);
        assert_eq!(KraudDriver::vm_of_namespace(&ns), Some(vm));
        assert_eq!(KraudDriver::vm_of_namespace(&ns.to_ascii_uppercase()), None);
        assert_eq!(
            KraudDriver::vm_of_namespace(&format!("vm-{}", vm.to_string().to_ascii_uppercase())),
            None
        );
        assert_eq!(KraudDriver::vm_of_namespace(&format!("{ns}-x")), None);
        assert_eq!(KraudDriver::vm_of_namespace("vm-web"), None);
        assert_eq!(KraudDriver::vm_of_namespace("default"), None);
    }

    #[test]
    fn terminating_namespaces_are_recognized() {
        let parse = |v: serde_json::Value| serde_json::from_value::<Namespace>(v).unwrap();
        assert!(!parse(
            serde_json::json!({ "metadata": { "name": "a" }, "status": { "phase": "Active" } })
        )
        .is_terminating());
        assert!(!parse(
            serde_json::json!({ "metadata": { "name": "a", "deletionTimestamp": null } })
        )
        .is_terminating());
        assert!(parse(
            serde_json::json!({ "metadata": { "name": "a" }, "status": { "phase": "Terminating" } })
        )
        .is_terminating());
        assert!(parse(serde_json::json!({ "metadata": { "name": "a", "deletionTimestamp": "2024-01-02T03:04:05Z" } })).is_terminating());
    }

    #[test]
    fn regions_map_to_zones() {
        assert_eq!(zone_of("uca"), "uca");
        assert_eq!(zone_of("YCA"), "yca");
        assert_eq!(zone_of("lmu"), "lmu");
        assert_eq!(zone_of("berlin"), "uca");
        assert_eq!(zone_of("westeurope"), DEFAULT_ZONE);
    }

    #[test]
    fn memory_uses_kraud_units() {
        assert_eq!(memory(1), "1G");
        assert_eq!(memory(16), "16G");
        assert_eq!(memory(1024), "1T");
        assert_eq!(memory(1536), "1536G");
    }

    #[test]
    fn overlays_give_public_v6_and_private_v4() {
        let overlays = vec![
            Overlay {
                ip4: Some("10.1.2.3".into()),
                ip6: Some("fd00::1".into()),
            },
            Overlay {
                ip4: Some("198.51.100.7/32".into()),
                ip6: Some("2a0f:85c1::42".into()),
            },
        ];
        let (public4, private4, public6) = addresses(&overlays);
        assert_eq!(public4.as_deref(), Some("198.51.100.7"));
        assert_eq!(private4.as_deref(), Some("10.1.2.3"));
        assert_eq!(public6.as_deref(), Some("2a0f:85c1::42"));
    }

    #[test]
    fn login_script_refuses_what_is_not_a_hash() {
        let login = LoginSpec {
            username: "root".into(),
            public_keys: vec![],
            password_hash: Some("hunter2".into()),
            password: None,
        };
        assert!(matches!(
            login_script(&login),
            Err(DriverError::InvalidSpec(_))
        ));
        let login = LoginSpec {
            username: "root; rm -rf /".into(),
            public_keys: vec!["ssh-ed25519 AAAA x".into()],
            password_hash: None,
            password: None,
        };
        assert!(matches!(
            login_script(&login),
            Err(DriverError::InvalidSpec(_))
        ));
    }
}
